package client_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/server/servertest"
)

func TestClientRefs(t *testing.T) {
	ctx := context.Background()
	n := servertest.Start(t)
	c := newClient(t, n)
	web := dotmesh.DotName{Name: "web"}
	must(c.CreateDot(ctx, web, ""))
	write := func(content string) {
		p := must(c.Path(ctx, "web.data"))
		if err := os.WriteFile(filepath.Join(p, "f"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("1")
	c1 := must(c.Commit(ctx, web, "", "one", nil))
	write("2")
	c2 := must(c.Commit(ctx, web, "", "two", nil))

	tag := must(c.CreateTag(ctx, web, api.TagRequest{Name: "v1", Ref: "master^", Message: "first"}))
	if tag.Commit != c1.ID || tag.Author != api.AdminUser || tag.Message != "first" {
		t.Errorf("tag = %+v", tag)
	}
	if _, err := c.CreateTag(ctx, web, api.TagRequest{Name: "v1"}); !errors.Is(err, dotmesh.ErrAlreadyExists) {
		t.Errorf("a second v1: %v, want ErrAlreadyExists", err)
	}
	if _, err := c.CreateTag(ctx, web, api.TagRequest{Name: "-x"}); !errors.Is(err, dotmesh.ErrInvalidName) {
		t.Errorf("tag -x: %v", err)
	}
	if got := must(c.ResolveRef(ctx, web, "", "v1")); got.ID != c1.ID {
		t.Errorf("v1 resolved to %s", got.ID)
	}
	if got := must(c.Tags(ctx, web)); len(got) != 1 || got[0].Name != "v1" {
		t.Errorf("tags = %+v", got)
	}

	page := must(c.History(ctx, web, "", "", 0, 0))
	if len(page.Commits) != 2 || page.Commits[0].ID != c2.ID || page.More {
		t.Fatalf("history = %+v", page)
	}
	if d := page.Refs[c2.ID]; len(d) != 1 || d[0] != "master" {
		t.Errorf("decorations of head: %v", d)
	}
	if page.Current != "master" {
		t.Errorf("history page names current branch %q, want master (dm log marks it HEAD ->)", page.Current)
	}
	if d := page.Refs[c1.ID]; len(d) != 1 || d[0] != "tag: v1" {
		t.Errorf("decorations of v1: %v", d)
	}
	page = must(c.History(ctx, web, "", "v1", 0, 1))
	if len(page.Commits) != 1 || page.Commits[0].ID != c1.ID {
		t.Errorf("history of v1 = %+v", page)
	}
	page = must(c.History(ctx, web, "", "HEAD", 0, 1))
	if !page.More {
		t.Errorf("a page of 1 of 2 commits says no more follow")
	}
	if _, err := c.History(ctx, web, "", "nosuch", 0, 0); !errors.Is(err, dotmesh.ErrNotFound) {
		t.Errorf("history of nosuch: %v", err)
	}

	b := must(c.RenameBranch(ctx, web, "master", "main"))
	if b.Name != "main" || b.Head != c2.ID {
		t.Errorf("renamed = %+v", b)
	}
	if st := must(c.Status(ctx, web)); st.Dot.Current != "main" {
		t.Errorf("current after rename = %s", st.Dot.Current)
	}
	if _, err := c.RenameBranch(ctx, web, "main", "v1"); !errors.Is(err, dotmesh.ErrAlreadyExists) {
		t.Errorf("rename onto a tag: %v", err)
	}
	if err := c.DeleteTag(ctx, web, "v1"); err != nil {
		t.Fatal(err)
	}
	var nf *dotmesh.NotFoundError
	if err := c.DeleteTag(ctx, web, "v1"); !errors.As(err, &nf) || nf.Kind != dotmesh.KindTag {
		t.Errorf("deleting v1 again: %v", err)
	}
}

// HistoryEach hands over the commits History returns, in order, each with
// the page's refs and current branch already read (the node sends them
// first), and returns each's error as it is.
func TestHistoryEach(t *testing.T) {
	ctx := context.Background()
	n := servertest.Start(t)
	c := newClient(t, n)
	web := dotmesh.DotName{Name: "web"}
	must(c.CreateDot(ctx, web, ""))
	for _, m := range []string{"one", "two", "three"} {
		must(c.CommitWith(ctx, web, api.CommitRequest{Message: m, AllowEmpty: true}))
	}
	want := must(c.History(ctx, web, "", "", 0, 0))
	var got []dotmesh.Commit
	page, err := c.HistoryEach(ctx, web, "", "", 0, 0, func(k string) bool { return k == dotmesh.InfoConsistency },
		func(p *api.HistoryPage, cm *dotmesh.Commit) error {
			if p.Current != "master" || len(p.Refs[want.Commits[0].ID]) != 1 {
				t.Errorf("commit %s handed over before the page's current (%q) and refs (%v)", cm.ID, p.Current, p.Refs)
			}
			got = append(got, *cm)
			return nil
		})
	if err != nil || page.Current != "master" || len(page.Commits) != 0 {
		t.Fatalf("HistoryEach = %+v, %v", page, err)
	}
	if len(got) != len(want.Commits) {
		t.Fatalf("HistoryEach handed %d commits, History has %d", len(got), len(want.Commits))
	}
	for i := range got {
		w := want.Commits[i]
		if got[i].ID != w.ID || got[i].Message != w.Message || !got[i].Time.Equal(w.Time) || got[i].Parent != w.Parent {
			t.Errorf("commit %d: %+v, History has %+v", i, got[i], w)
		}
		if len(got[i].Info) != 1 || got[i].Info[dotmesh.InfoConsistency] != w.Info[dotmesh.InfoConsistency] {
			t.Errorf("commit %d kept info %v of %v", i, got[i].Info, w.Info)
		}
	}
	stop := errors.New("stop")
	calls := 0
	if _, err := c.HistoryEach(ctx, web, "", "", 0, 0, nil, func(*api.HistoryPage, *dotmesh.Commit) error { calls++; return stop }); err != stop || calls != 1 {
		t.Errorf("HistoryEach with each failing: %v after %d calls, want stop after 1", err, calls)
	}
}
