package zfs

import (
	"context"
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/zfs/zfstest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// TestCreateBranchKeepsListing: a branch made from a commit (the end of
// the first push into a dot) leaves the dot's cached listing current,
// patched with the clone exactly as zfs lists it, so the next transfer's
// State reads no listing; and it runs no `zfs create` for a container
// that exists.
func TestCreateBranchKeepsListing(t *testing.T) {
	ctx := context.Background()
	g := openTest(t, testPoolOptions(t))
	b := g.b
	ref := newTestBranch(t, g)
	head := dotmesh.CommitRef{BranchRef: ref, ID: dotmesh.NewCommitID()}
	if _, err := g.Commit(ctx, head); err != nil {
		t.Fatal(err)
	}
	if _, err := b.inventory(ctx, ref.Dot); err != nil { // cached
		t.Fatal(err)
	}
	before := zfsChanges.Load()
	other := dotmesh.BranchRef{Dot: ref.Dot, Branch: "other"}
	if err := g.CreateBranch(ctx, other, &head); err != nil {
		t.Fatal(err)
	}
	if n := zfsChanges.Load() - before; n != 1 {
		t.Fatalf("CreateBranch from a commit ran %d changing zfs commands; want 1 (the clone)", n)
	}
	b.invs.mu.Lock()
	c, ok := b.invs.m[ref.Dot]
	b.invs.mu.Unlock()
	if !ok || c.seq != zfsChanges.Load() {
		t.Fatalf("the dot's listing was dropped by CreateBranch (cached %v, seq %d, changes %d)", ok, c.seq, zfsChanges.Load())
	}
	patched, err := parseInventory(ref.Dot, b.container(ref.Dot), c.rows)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := b.z.get(ctx, true, invProps, b.container(ref.Dot))
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := parseInventory(ref.Dot, b.container(ref.Dot), rows)
	if err != nil {
		t.Fatal(err)
	}
	pf, ff := patched.live("other"), fresh.live("other")
	if pf == nil || ff == nil {
		t.Fatalf("branch other's working state: patched listing %v, fresh listing %v", pf, ff)
	}
	if pf.ds != ff.ds || pf.state != ff.state || pf.mounted != ff.mounted || pf.mountpoint != ff.mountpoint ||
		pf.pristine != ff.pristine || pf.refquota != ff.refquota || pf.originName != ff.originName || pf.origin == nil {
		t.Fatalf("patched listing of the clone %+v differs from zfs's %+v", *pf, *ff)
	}
	if !pf.pristineAt(head.ID) {
		t.Fatalf("the patched clone is not pristine at %s: %+v", head.ID, *pf)
	}
}

// testPoolOptions is Options for a pool of the test's own (zfstest.Pool).
func testPoolOptions(t *testing.T) Options {
	pool, dir := zfstest.Pool(t)
	return Options{Pool: pool, DataDir: dir, PoolSize: 1 << 30}
}

// openTest opens the backend with o, closed at the test's end.
func openTest(t *testing.T, o Options) *Guarded {
	t.Helper()
	g, err := Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// newTestBranch creates branch master of a new dot.
func newTestBranch(t *testing.T, g *Guarded) dotmesh.BranchRef {
	t.Helper()
	ref := dotmesh.BranchRef{Dot: dotmesh.NewDotID(), Branch: "master"}
	if err := g.CreateBranch(context.Background(), ref, nil); err != nil {
		t.Fatal(err)
	}
	return ref
}
