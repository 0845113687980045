//go:build linux && cgo

package btrfs

import (
	"context"
	"errors"
	"os"
	"slices"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// TestRollbackLeavesOtherBranches resets a branch to an old commit, as
// Node.Reset does (Rollback, then DeleteCommit of what nothing reaches),
// and checks a branch made from a newer commit keeps its data and commits.
func TestRollbackLeavesOtherBranches(t *testing.T) {
	ctx := context.Background()
	b := openShared(t)
	dot := dotmesh.NewDotID()
	master := newBranch(dot, "master")
	must(t, b.CreateBranch(ctx, master, nil))
	mp := subdot(t, b, master, dotmesh.DefaultSubdot)
	writeFile(t, mp+"/a", "1")
	c1 := commit(t, b, master)
	writeFile(t, mp+"/a", "2")
	c2 := commit(t, b, master)
	writeFile(t, mp+"/a", "3")
	c3 := commit(t, b, master)

	feature := newBranch(dot, "feature")
	must(t, b.CreateBranch(ctx, feature, &c2))
	fp := subdot(t, b, feature, dotmesh.DefaultSubdot)
	if got := readFile(t, fp+"/a"); got != "2" {
		t.Fatalf("feature from c2 has %q", got)
	}
	writeFile(t, fp+"/b", "feature work")
	f1 := commit(t, b, feature)
	writeFile(t, fp+"/c", "uncommitted feature work")

	// Reset master hard to c1: c3 is unreachable, c2 is feature's origin.
	writeFile(t, mp+"/dirty", "x")
	must(t, b.Rollback(ctx, master, c1))
	must(t, b.DeleteCommit(ctx, c3))
	if got := readFile(t, mp+"/a"); got != "1" {
		t.Fatalf("master after reset has %q", got)
	}
	if _, err := os.Stat(mp + "/dirty"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("uncommitted file survived the reset: %v", err)
	}
	for p, want := range map[string]string{fp + "/a": "2", fp + "/b": "feature work", fp + "/c": "uncommitted feature work"} {
		if got := readFile(t, p); got != want {
			t.Fatalf("reset of master changed %s: %q", p, got)
		}
	}
	ids, err := b.Commits(ctx, master)
	must(t, err)
	if !slices.Equal(ids, sorted(c1.ID, c2.ID)) {
		t.Fatalf("master commits %v, want c1 c2", ids)
	}
	fids, err := b.Commits(ctx, feature)
	must(t, err)
	if !slices.Equal(fids, []dotmesh.CommitID{f1.ID}) {
		t.Fatalf("feature commits %v", fids)
	}

	// Feature can still be reset to its origin stored on master, and that
	// touches nothing on master.
	must(t, b.Rollback(ctx, feature, c2))
	if got := readFile(t, fp+"/a"); got != "2" {
		t.Fatalf("feature after reset to c2 has %q", got)
	}
	if _, err := os.Stat(fp + "/b"); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("feature kept b after reset to c2")
	}
	if got := readFile(t, mp+"/a"); got != "1" {
		t.Fatalf("master changed by feature's reset: %q", got)
	}
	// Deleting the origin commit leaves the branch made from it intact.
	must(t, b.Rollback(ctx, feature, f1))
	must(t, b.DeleteCommit(ctx, c2))
	if got := readFile(t, fp+"/b"); got != "feature work" {
		t.Fatalf("feature lost data with its origin: %q", got)
	}
	if err := b.Rollback(ctx, master, c3); !errors.Is(err, dotmesh.ErrNotFound) {
		t.Fatalf("rollback to a deleted commit: %v, want ErrNotFound", err)
	}
	if ents, _ := os.ReadDir(b.b.trashDir()); len(ents) != 0 {
		t.Fatalf("trash not emptied: %v", ents)
	}
	if ok, _ := exists(b.b.rollbackPath(master)); ok {
		t.Fatal("rollback temp left behind")
	}
}

func sorted(ids ...dotmesh.CommitID) []dotmesh.CommitID {
	slices.Sort(ids)
	return ids
}

// TestRecoverLeftovers fakes what a crash in each operation leaves and
// checks Open cleans it up and the branch works.
func TestRecoverLeftovers(t *testing.T) {
	ctx := context.Background()
	dir := sharedRoot(t)
	b, err := Open(ctx, Options{DataDir: dir})
	must(t, err)
	br := newBranch(dotmesh.NewDotID(), "master")
	must(t, b.CreateBranch(ctx, br, nil))
	p := subdot(t, b, br, dotmesh.RootSubdot)
	writeFile(t, p+"/a", "kept")
	c1 := commit(t, b, br)

	// Rollback died after its snapshot (or after the exchange).
	must(t, subvolSnapshot(b.b.rollbackPath(br), b.b.snapPath(c1), false))
	// Commit died between mkdir and snapshot.
	half := commitRef(br)
	must(t, os.MkdirAll(b.b.commitDir(half), 0o755))
	// Receive died midway: a writable subvolume in a staging dir.
	staging := b.b.commitsDir(br) + "/.recv-123"
	must(t, os.MkdirAll(staging, 0o755))
	must(t, subvolCreate(staging+"/snap"))
	// Delete died after moving into the trash.
	must(t, subvolCreate(b.b.trashDir()+"/old"))
	must(t, b.Close())

	b = openAt(t, dir)
	for _, p := range []string{b.b.rollbackPath(br), b.b.commitDir(half), staging, b.b.trashDir() + "/old"} {
		if ok, _ := exists(p); ok {
			t.Errorf("leftover %s not removed", p)
		}
	}
	ids, err := b.Commits(ctx, br)
	must(t, err)
	if !slices.Equal(ids, []dotmesh.CommitID{c1.ID}) {
		t.Fatalf("commits %v", ids)
	}
	if got := readFile(t, b.b.livePath(br)+"/a"); got != "kept" {
		t.Fatalf("live: %q", got)
	}
	if _, err := b.Commit(ctx, half); err != nil {
		t.Fatalf("commit with the id of a half-made one: %v", err)
	}
}
