//go:build linux && cgo

package btrfs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func TestSubdotPathStaysInside(t *testing.T) {
	ctx := context.Background()
	b := openShared(t)
	br := newBranch(dotmesh.NewDotID(), "master")
	must(t, b.CreateBranch(ctx, br, nil))
	live := b.b.livePath(br)
	for _, s := range []string{"", "..", "../x", "a/b", "/etc", "_hidden", "a.b", strings.Repeat("a", 65)} {
		if p, err := b.SubdotPath(ctx, br, s); !errors.Is(err, dotmesh.ErrInvalidName) {
			t.Errorf("SubdotPath(%q) = %q, %v; want ErrInvalidName", s, p, err)
		}
	}
	for _, bad := range []dotmesh.BranchRef{{Dot: "..", Branch: "master"}, {Dot: br.Dot, Branch: "../x"}, {Dot: br.Dot, Branch: ""}} {
		if _, err := b.SubdotPath(ctx, bad, "x"); !errors.Is(err, dotmesh.ErrInvalidName) {
			t.Errorf("SubdotPath on %+v: %v; want ErrInvalidName", bad, err)
		}
	}
	if p := subdot(t, b, br, dotmesh.RootSubdot); p != live {
		t.Fatalf("root subdot %s, want %s", p, live)
	}
	for _, s := range []string{dotmesh.DefaultSubdot, "db", "web-1"} {
		p := subdot(t, b, br, s)
		if filepath.Dir(p) != live {
			t.Fatalf("subdot %s at %s, outside %s", s, p, live)
		}
	}
	must(t, os.Symlink("/etc", filepath.Join(live, "evil")))
	if p, err := b.SubdotPath(ctx, br, "evil"); !errors.Is(err, dotmesh.ErrConflict) {
		t.Fatalf("SubdotPath through a symlink = %q, %v; want ErrConflict", p, err)
	}
	got, err := b.Subdots(ctx, br)
	must(t, err)
	if !slices.Equal(got, []string{dotmesh.DefaultSubdot, "db", "web-1"}) {
		t.Fatalf("Subdots = %v", got)
	}
	if _, err := b.SubdotPath(ctx, newBranch(br.Dot, "nope"), "db"); !errors.Is(err, dotmesh.ErrNotFound) {
		t.Fatalf("SubdotPath of a missing branch: %v", err)
	}
}

// TestNestedSubvolumes: a user may make subvolumes inside a working state;
// they are not in snapshots, and rollback and delete still work.
func TestNestedSubvolumes(t *testing.T) {
	ctx := context.Background()
	b := openShared(t)
	br := newBranch(dotmesh.NewDotID(), "master")
	must(t, b.CreateBranch(ctx, br, nil))
	live := b.b.livePath(br)
	writeFile(t, live+"/a", "a")
	must(t, subvolCreate(live+"/nested"))
	writeFile(t, live+"/nested/x", "x")
	c1 := commit(t, b, br)
	must(t, subvolCreate(live+"/nested2"))
	must(t, b.Rollback(ctx, br, c1))
	if readFile(t, live+"/a") != "a" {
		t.Fatal("rollback lost a")
	}
	must(t, subvolCreate(live+"/nested3"))
	must(t, b.DeleteBranch(ctx, br))
	if ok, _ := exists(b.b.branchDir(br)); ok {
		t.Fatal("branch directory survived DeleteBranch")
	}
	if ents, _ := os.ReadDir(b.b.trashDir()); len(ents) != 0 {
		t.Fatalf("trash not emptied: %v", ents)
	}
	brs, err := b.Branches(ctx)
	must(t, err)
	if len(brs) != 0 {
		t.Fatalf("branches after delete: %v", brs)
	}
}

func TestCreateBranchErrors(t *testing.T) {
	ctx := context.Background()
	b := openShared(t)
	br := newBranch(dotmesh.NewDotID(), "master")
	must(t, b.CreateBranch(ctx, br, nil))
	if err := b.CreateBranch(ctx, br, nil); !errors.Is(err, dotmesh.ErrAlreadyExists) {
		t.Fatalf("creating twice: %v", err)
	}
	missing := commitRef(br)
	if err := b.CreateBranch(ctx, newBranch(br.Dot, "x"), &missing); !errors.Is(err, dotmesh.ErrNotFound) {
		t.Fatalf("from a missing commit: %v", err)
	}
	c := commit(t, b, br)
	if _, err := b.Commit(ctx, c); !errors.Is(err, dotmesh.ErrAlreadyExists) {
		t.Fatalf("committing an id twice: %v", err)
	}
	must(t, b.DeleteCommit(ctx, missing)) // missing is fine
	must(t, b.DeleteBranch(ctx, newBranch(br.Dot, "never")))
	must(t, b.Close())
	if err := b.CreateBranch(ctx, newBranch(br.Dot, "late"), nil); !errors.Is(err, dotmesh.ErrUnavailable) {
		t.Fatalf("after Close: %v", err)
	}
}
