package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/client"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/server/servertest"
)

func newClient(t *testing.T, n *servertest.Node) *client.Client {
	t.Helper()
	c, err := client.New(n.URL, "", n.Key, client.WithTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// must returns v or stops the test by panicking with err: Go cannot pass
// a call's two results next to t, and the trace shows the failing line.
func must[T any](v T, err error) T {
	if err != nil {
		panic(fmt.Sprintf("unexpected error: %v", err))
	}
	return v
}

func TestClientAgainstServer(t *testing.T) {
	ctx := context.Background()
	n := servertest.Start(t)
	c := newClient(t, n)
	web := dotmesh.DotName{Name: "web"} // namespace defaults to admin

	p := must(c.Ping(ctx))
	if p.User != api.AdminUser || p.Version != "test" {
		t.Errorf("ping = %+v", p)
	}
	d := must(c.CreateDot(ctx, web, "files"))
	if d.Namespace != "admin" || d.Backend != "dump" {
		t.Errorf("created %+v", d)
	}
	team := dotmesh.DotName{Namespace: "team", Name: "db"}
	must(c.CreateDot(ctx, team, ""))
	if dots := must(c.ListDots(ctx)); len(dots) != 2 {
		t.Fatalf("listed %d dots", len(dots))
	}

	path := must(c.Path(ctx, "web.data"))
	if err := os.WriteFile(filepath.Join(path, "f"), []byte("v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if st := must(c.Status(ctx, web)); !st.Usage.Dirty || st.Branch.Name != "master" {
		t.Errorf("status = %+v", st)
	}
	c1 := must(c.Commit(ctx, web, "", "first", map[string]string{"k": "v"}))
	if c1.Author != api.AdminUser || c1.Metadata["k"] != "v" {
		t.Errorf("commit = %+v", c1)
	}
	os.WriteFile(filepath.Join(path, "f"), []byte("v2"), 0o644)
	c2 := must(c.Commit(ctx, web, "master", "second", nil))
	if log := must(c.Log(ctx, web, "", 0)); len(log) != 2 || log[0].ID != c2.ID {
		t.Errorf("log = %+v", log)
	}
	if log := must(c.Log(ctx, web, "master", 1)); len(log) != 1 {
		t.Errorf("log limit 1 = %d commits", len(log))
	}
	if got := must(c.ResolveRef(ctx, web, "", "HEAD^")); got.ID != c1.ID {
		t.Errorf("HEAD^ = %s", got.ID)
	}
	if got := must(c.ResolveRef(ctx, web, "master", "HEAD~1")); got.ID != c1.ID {
		t.Errorf("HEAD~1 = %s", got.ID)
	}
	if subs := must(c.Subdots(ctx, web, "")); len(subs) != 1 || subs[0] != "data" {
		t.Errorf("subdots = %v", subs)
	}

	if b := must(c.CreateBranch(ctx, web, "dev", string(c1.ID[:6]))); b.Head != c1.ID {
		t.Errorf("branch = %+v", b)
	}
	if d := must(c.Checkout(ctx, web, "feature", true)); d.Current != "feature" {
		t.Errorf("checkout -b = %+v", d)
	}
	if bs := must(c.Branches(ctx, web)); len(bs) != 3 {
		t.Errorf("branches = %+v", bs)
	}
	must(c.Checkout(ctx, web, "master", false))
	if err := c.DeleteBranch(ctx, web, "feature"); err != nil {
		t.Fatal(err)
	}
	if got := must(c.Reset(ctx, web, "", "HEAD^", true)); got.ID != c1.ID {
		t.Errorf("reset to %s", got.ID)
	}
	if b, _ := os.ReadFile(filepath.Join(path, "f")); string(b) != "v1" {
		t.Errorf("after reset: %q", b)
	}
	if err := c.DeleteDot(ctx, web); err != nil {
		t.Fatal(err)
	}
	_, err := c.Status(ctx, web)
	var re *api.RemoteError
	if !errors.Is(err, dotmesh.ErrNotFound) || !errors.As(err, &re) || re.Status != 404 {
		t.Errorf("status of a deleted dot: %v", err)
	}
	if strings.HasPrefix(err.Error(), "not found: not found") {
		t.Errorf("message repeats the sentinel: %v", err)
	}
}

func TestClientErrors(t *testing.T) {
	ctx := context.Background()
	n := servertest.Start(t)
	c := newClient(t, n)
	web := dotmesh.DotName{Name: "web"}
	must(c.CreateDot(ctx, web, ""))

	for name, err := range map[string]error{
		"exists":    second(c.CreateDot(ctx, web, "")),
		"no branch": second(c.Checkout(ctx, web, "nope", false)),
	} {
		if name == "exists" && !errors.Is(err, dotmesh.ErrAlreadyExists) || name == "no branch" && !errors.Is(err, dotmesh.ErrNotFound) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Typed errors come back as their types, with their data.
	var nf *dotmesh.NotFoundError
	err := second(c.Checkout(ctx, web, "nope", false))
	if !errors.As(err, &nf) || *nf != (dotmesh.NotFoundError{Kind: dotmesh.KindBranch, Name: "nope", Dot: dotmesh.DotName{Namespace: dotmesh.DefaultNamespace, Name: "web"}}) || err.Error() != nf.Error() {
		t.Errorf("checkout of a missing branch: %#v", err)
	}
	var nc *dotmesh.NoCommitsError
	if err := second(c.ResolveRef(ctx, web, "", "HEAD")); !errors.As(err, &nc) || nc.Branch != "master" || nc.Dot.Name != "web" {
		t.Errorf("HEAD without commits: %#v", err)
	}
	// Bad names fail before any request, with the library's message.
	if _, err := c.Status(ctx, dotmesh.DotName{Name: "a/b"}); !errors.Is(err, dotmesh.ErrInvalidName) {
		t.Errorf("bad dot name: %v", err)
	}
	if _, err := c.ResolveRef(ctx, web, "", "HEAD?"); !errors.Is(err, dotmesh.ErrInvalidName) {
		t.Errorf("bad ref: %v", err)
	}
	if _, err := c.Path(ctx, "web.__x"); !errors.Is(err, dotmesh.ErrInvalidName) {
		t.Errorf("bad volume: %v", err)
	}
	// A wrong key is ErrUnauthorized.
	bad, _ := client.New(n.URL, "admin", "wrong")
	if _, err := bad.ListDots(ctx); !errors.Is(err, dotmesh.ErrUnauthorized) {
		t.Errorf("wrong key: %v", err)
	}
	// Bearer-style: the user is admin when none is given.
	if _, err := client.New(n.URL, "", ""); !errors.Is(err, dotmesh.ErrUnauthorized) {
		t.Errorf("no key: %v", err)
	}
}

func second[T any](_ T, err error) error { return err }

func TestClientNoServer(t *testing.T) {
	// A port that was just free: nothing listens there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close()
	c, err := client.New(url, "", "key")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Ping(context.Background())
	if !errors.Is(err, dotmesh.ErrUnavailable) || !strings.Contains(err.Error(), "no dotmesh node answers at "+url) || !strings.Contains(err.Error(), "dm serve") {
		t.Errorf("no server: %v", err)
	}
}

func TestClientNotDotmesh(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream down\nmore", http.StatusBadGateway)
	}))
	defer srv.Close()
	c, _ := client.New(srv.URL, "", "key")
	_, err := c.ListDots(context.Background())
	if !errors.Is(err, dotmesh.ErrUnavailable) || strings.Contains(err.Error(), "more") || !strings.Contains(err.Error(), "upstream down") {
		t.Errorf("proxy error: %v", err)
	}
}

func TestClientEscapesPaths(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.URL.EscapedPath() + "?" + r.URL.RawQuery
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	c, _ := client.New(srv.URL+"/base/", "", "key")
	if _, err := c.ResolveRef(context.Background(), dotmesh.DotName{Namespace: "n", Name: "d"}, "b-1", "HEAD~2^"); err != nil {
		t.Fatal(err)
	}
	if want := "/base/v1/dots/n/d/refs/HEAD~2%5E?branch=b-1"; got != want {
		t.Errorf("request path %q, want %q", got, want)
	}
}

func TestNewValidatesURL(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:32607", "ftp://x", "http://", "http://u:p@host", "http://h/?q=1"} {
		if _, err := client.New(u, "", "k"); !errors.Is(err, dotmesh.ErrInvalidArgument) {
			t.Errorf("New(%q): %v", u, err)
		}
	}
}
