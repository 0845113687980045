//go:build !dmlight

// Not in the light build: the test node (servertest) is compiled with the
// same tag, and a dmlight engine has no text diff (dotmesh/light.go).

package client_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/server/servertest"
)

// TestDiffAndStatusOverTheAPI: what Changes answers, through a real
// server: the same diff, status and typed errors, and the refusal of an
// empty commit.
func TestDiffAndStatusOverTheAPI(t *testing.T) {
	ctx := context.Background()
	n := servertest.Start(t)
	c := newClient(t, n)
	web := dotmesh.DotName{Name: "web"}
	must(c.CreateDot(ctx, web, "files"))
	path := must(c.Path(ctx, "web.data"))
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(path, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("f", "one\n")
	c1 := must(c.Commit(ctx, web, "", "first", nil))

	_, err := c.Commit(ctx, web, "", "again", nil)
	var nt *dotmesh.NothingToCommitError
	if !errors.As(err, &nt) || nt.Head != c1.ID || nt.Branch != "master" {
		t.Fatalf("an unchanged commit: %v", err)
	}
	empty := must(c.CommitWith(ctx, web, api.CommitRequest{Message: "empty", AllowEmpty: true}))
	if empty.Parent != c1.ID {
		t.Fatalf("allowed empty commit %+v", empty)
	}

	write("f", "two\n")
	write("g", "gee\n")
	st := must(c.WorkingStatus(ctx, web, dotmesh.StatusOptions{}))
	if st.Clean || st.Head != empty.ID || len(st.Subdots) != 1 || st.Subdots[0].Subdot != "data" || len(st.Subdots[0].Files) != 2 {
		t.Fatalf("status %+v", st)
	}
	d := must(c.Diff(ctx, web, dotmesh.DiffOptions{Content: true, Context: 1, Paths: []string{"data/f"}}))
	if d.From.Commit != empty.ID || d.To.Branch != "master" || len(d.Files) != 1 || d.Stat.Modified != 1 {
		t.Fatalf("diff %+v", d)
	}
	if want := "--- a/data/f\n+++ b/data/f\n@@ -1 +1 @@\n-one\n+two\n"; d.Files[0].Patch != want {
		t.Fatalf("patch %q, want %q", d.Files[0].Patch, want)
	}
	must(c.Commit(ctx, web, "", "second", nil))
	d = must(c.Diff(ctx, web, dotmesh.DiffOptions{From: string(c1.ID), To: "HEAD", MaxFiles: 1}))
	if len(d.Files) != 1 || !d.FilesTruncated || d.Stat.Added+d.Stat.Modified != 2 {
		t.Fatalf("diff of commits %+v", d)
	}
	if st := must(c.WorkingStatus(ctx, web, dotmesh.StatusOptions{Branch: "master"})); !st.Clean {
		t.Fatalf("status after the commit %+v", st)
	}

	_, err = c.Diff(ctx, web, dotmesh.DiffOptions{Paths: []string{"data/nope"}})
	if !errors.Is(err, dotmesh.ErrNotFound) || !strings.Contains(err.Error(), "data/nope") {
		t.Fatalf("a path that matches nothing: %v", err)
	}
	_, err = c.Diff(ctx, web, dotmesh.DiffOptions{Context: -2})
	if !errors.Is(err, dotmesh.ErrInvalidArgument) {
		t.Fatalf("negative context: %v", err)
	}
	_, err = c.WorkingStatus(ctx, dotmesh.DotName{Name: "nope"}, dotmesh.StatusOptions{})
	if !errors.Is(err, dotmesh.ErrNotFound) {
		t.Fatalf("status of a missing dot: %v", err)
	}
}
