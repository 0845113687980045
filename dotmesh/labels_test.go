package dotmesh_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Labels live in the dot's record: set, overwritten only when asked,
// removed, kept across a reopen, and a bad one changes nothing.
func TestLabels(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)

	d, err := e.node.Label(ctx, app, dotmesh.LabelChange{Set: map[string]string{"tier": "db", "example.com/team": "core"}})
	require.NoError(t, err)
	require.Equal(t, map[string]string{"tier": "db", "example.com/team": "core"}, d.Labels)

	_, err = e.node.Label(ctx, app, dotmesh.LabelChange{Set: map[string]string{"tier": "web"}})
	require.ErrorIs(t, err, dotmesh.ErrAlreadyExists)
	require.Contains(t, err.Error(), "tier=db")
	_, err = e.node.Label(ctx, app, dotmesh.LabelChange{Set: map[string]string{"ok": "1", "-bad": "x"}})
	require.ErrorIs(t, err, dotmesh.ErrInvalidArgument)
	d, err = e.node.Dot(ctx, app)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"tier": "db", "example.com/team": "core"}, d.Labels, "a refused change changes nothing")

	_, err = e.node.Label(ctx, app, dotmesh.LabelChange{Set: map[string]string{"tier": "web"}, Remove: []string{"example.com/team", "absent"}, Overwrite: true})
	require.NoError(t, err)
	e.reopen()
	d, err = e.node.Dot(ctx, app)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"tier": "web"}, d.Labels)

	// A checkout rewrites the dot's record: the labels stay.
	e.write("app", "f", "x")
	e.commit("one")
	_, err = e.node.CreateBranch(ctx, app, "feature", "")
	if err == nil {
		_, err = e.node.Checkout(ctx, app, "feature", dotmesh.CheckoutOptions{})
	}
	require.NoError(t, err)
	d, err = e.node.Dot(ctx, app)
	require.NoError(t, err)
	require.Equal(t, "feature", d.Current)
	require.Equal(t, map[string]string{"tier": "web"}, d.Labels)

	d, err = e.node.Label(ctx, app, dotmesh.LabelChange{Remove: []string{"tier"}})
	require.NoError(t, err)
	require.Nil(t, d.Labels)

	_, err = e.node.Label(ctx, dotmesh.DotName{Namespace: "admin", Name: "nope"}, dotmesh.LabelChange{Set: map[string]string{"a": "b"}})
	require.ErrorIs(t, err, dotmesh.ErrNotFound)
}

func TestSelectDots(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	mk := func(ns, name string, labels map[string]string) {
		n := dotmesh.DotName{Namespace: ns, Name: name}
		_, err := e.node.CreateDot(ctx, n, dotmesh.CreateDotOptions{})
		require.NoError(t, err)
		if labels != nil {
			_, err = e.node.Label(ctx, n, dotmesh.LabelChange{Set: labels})
			require.NoError(t, err)
		}
	}
	mk("admin", "db", map[string]string{"app": "shop", "tier": "db"})
	mk("admin", "web", map[string]string{"app": "shop", "tier": "web"})
	mk("admin", "other", nil)
	mk("team", "db", map[string]string{"app": "shop", "tier": "db"})
	sel := func(ns string, ls ...string) []string {
		s, err := dotmesh.ParseSelector(ns, ls)
		require.NoError(t, err)
		names, err := e.node.SelectDots(ctx, s)
		require.NoError(t, err)
		out := []string{}
		for _, n := range names {
			out = append(out, n.String()) // the default namespace is left out
		}
		return out
	}
	require.Equal(t, []string{"db", "other", "web", "team/db"}, sel(""))
	require.Equal(t, []string{"db", "other", "web"}, sel("admin"))
	require.Equal(t, []string{"db", "web", "team/db"}, sel("", "app=shop"))
	require.Equal(t, []string{"db"}, sel("admin", "app=shop", "tier==db"))
	require.Equal(t, []string{"other", "web"}, sel("admin", "tier!=db"))
	require.Equal(t, []string{"db", "web", "team/db"}, sel("", "tier"))
	require.Equal(t, []string{"other"}, sel("", "!tier"))
}

func TestLabelParsers(t *testing.T) {
	ch, err := dotmesh.ParseLabelChange([]string{"a=1", "b=", "c-", "example.com/x=y"})
	require.NoError(t, err)
	require.Equal(t, map[string]string{"a": "1", "b": "", "example.com/x": "y"}, ch.Set)
	require.Equal(t, []string{"c"}, ch.Remove)
	for _, bad := range [][]string{
		nil, {"a"}, {"a=1", "a=2"}, {"a=1", "a-"}, {"-a=1"}, {"a.=1"}, {"a=-x"},
		{strings.Repeat("k", 64) + "=v"}, {"k=" + strings.Repeat("v", 64)}, {"Example.com/x=y"},
		{"/x=y"}, {"a/=y"}, {"a b=c"}, {"x/y/z=1"}, {strings.Repeat("p", 254) + "/x=1"},
	} {
		_, err := dotmesh.ParseLabelChange(bad)
		require.ErrorIs(t, err, dotmesh.ErrInvalidArgument, "%q", bad)
		require.NotContains(t, err.Error(), "\n")
	}
	require.NoError(t, dotmesh.ValidateLabelKey(strings.Repeat("k", 63)))
	require.NoError(t, dotmesh.ValidateLabelKey(strings.Repeat("p", 63)+"."+strings.Repeat("q", 63)+"/"+strings.Repeat("k", 63)))
	for _, s := range []string{"", "=", "!", "!=b", "a=b=c", "!a=b", "a/b/c"} {
		_, err := dotmesh.ParseLabelRequirement(s)
		require.Error(t, err, "%q", s)
	}
	r, err := dotmesh.ParseLabelRequirement("a!=")
	if err == nil {
		require.Equal(t, "a!=", r.String())
	}
}

// FuzzParseLabelChange: any argument list parses to a change that
// validates, or is refused with one line.
func FuzzParseLabelChange(f *testing.F) {
	for _, s := range []string{"a=1", "b-", "example.com/x=y", "a=b=c", "-", "=", "a.b_c-d=E.f"} {
		f.Add(s, "z=1")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ch, err := dotmesh.ParseLabelChange([]string{a, b})
		if err != nil {
			if !errors.Is(err, dotmesh.ErrInvalidArgument) && !errors.Is(err, dotmesh.ErrInvalidName) {
				t.Fatalf("%q %q: %v is not an invalid-argument error", a, b, err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("%q %q: error has a newline: %q", a, b, err)
			}
			return
		}
		if err := ch.Validate(); err != nil {
			t.Fatalf("%q %q parsed but does not validate: %v", a, b, err)
		}
		for k, v := range ch.Set {
			if len(v) > dotmesh.MaxLabelNameLength || strings.ContainsAny(k+v, " =\n\x00") {
				t.Fatalf("%q %q: bad label %q=%q accepted", a, b, k, v)
			}
		}
	})
}

// FuzzParseLabelRequirement: a requirement that parses writes back as
// itself (after == is read as =) and parses again the same.
func FuzzParseLabelRequirement(f *testing.F) {
	for _, s := range []string{"a=1", "a==1", "a!=1", "a", "!a", "example.com/x=y", "a=", "!=", "a=b=c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := dotmesh.ParseLabelRequirement(s)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("%q: error has a newline: %q", s, err)
			}
			return
		}
		again, err := dotmesh.ParseLabelRequirement(r.String())
		if err != nil || again != r {
			t.Fatalf("%q parsed as %+v, written %q, which parses as %+v, %v", s, r, r.String(), again, err)
		}
		d := &dotmesh.Dot{Labels: map[string]string{r.Key: r.Value}}
		want := r.Op == "=" || r.Op == "exists"
		if got := (dotmesh.Selector{Labels: []dotmesh.LabelRequirement{r}}).Matches(d); got != want {
			t.Fatalf("%q on a dot labelled %s=%s: matches %v, want %v", s, r.Key, r.Value, got, want)
		}
	})
}
