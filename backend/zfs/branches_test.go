package zfs_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	bt "github.com/dotmesh-io/dotmesh/backend/backendtest"
	"github.com/dotmesh-io/dotmesh/backend/zfs"
	"github.com/dotmesh-io/dotmesh/backend/zfs/zfstest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// h wraps a backend with helpers that fail the test on errors.
type h struct {
	t   *testing.T
	ctx context.Context
	b   *zfs.Guarded
}

func newH(t *testing.T) *h {
	b, _ := openBackend(t)
	return &h{t: t, ctx: context.Background(), b: b}
}

func (x *h) must(err error, what string) {
	x.t.Helper()
	if err != nil {
		x.t.Fatalf("%s: %v", what, err)
	}
}

func (x *h) root(ref dotmesh.BranchRef) string {
	x.t.Helper()
	p, err := x.b.SubdotPath(x.ctx, ref, dotmesh.RootSubdot)
	x.must(err, "SubdotPath")
	return p
}

func (x *h) write(ref dotmesh.BranchRef, tree bt.Tree) {
	x.t.Helper()
	bt.WriteTree(x.t, x.root(ref), tree)
}
func (x *h) assertTree(ref dotmesh.BranchRef, tree bt.Tree) {
	x.t.Helper()
	bt.AssertTree(x.t, x.root(ref), tree)
}

func (x *h) commit(ref dotmesh.BranchRef) dotmesh.CommitRef {
	x.t.Helper()
	c := dotmesh.CommitRef{BranchRef: ref, ID: dotmesh.NewCommitID()}
	_, err := x.b.Commit(x.ctx, c)
	x.must(err, "Commit")
	return c
}

func (x *h) commits(ref dotmesh.BranchRef, want ...dotmesh.CommitRef) {
	x.t.Helper()
	got, err := x.b.Commits(x.ctx, ref)
	x.must(err, "Commits")
	var ids []dotmesh.CommitID
	for _, c := range want {
		ids = append(ids, c.ID)
	}
	slices.Sort(ids)
	slices.Sort(got)
	if !slices.Equal(got, ids) {
		x.t.Errorf("Commits(%s) = %v, want %v", ref, got, ids)
	}
}

// datasets lists what ZFS holds below the backend's root.
func (x *h) datasets() []string {
	x.t.Helper()
	out := zfstest.ZFS(x.t, "list", "-H", "-t", "filesystem,snapshot", "-o", "name", "-r", x.b.Root())
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l != x.b.Root() && l != "" {
			names = append(names, strings.TrimPrefix(l, x.b.Root()+"/"))
		}
	}
	return names
}

// TestResetKeepsOtherBranches: a branch grown from C2 survives its origin
// branch being reset to C1, C2 being deleted and the origin branch being
// deleted; afterwards nothing is left behind.
func TestResetKeepsOtherBranches(t *testing.T) {
	x := newH(t)
	master := dotmesh.BranchRef{Dot: dotmesh.NewDotID(), Branch: "master"}
	x.must(x.b.CreateBranch(x.ctx, master, nil), "CreateBranch")
	v1 := bt.Tree{"db": bt.Dir(0o755), "db/f": bt.File(0o644, "one")}
	x.write(master, v1)
	c1 := x.commit(master)
	v2 := v1.Clone().Merge(bt.Tree{"db/f": bt.File(0o644, "two"), "db/g": bt.File(0o644, "g")})
	x.write(master, v2)
	c2 := x.commit(master)

	feature := dotmesh.BranchRef{Dot: master.Dot, Branch: "feature"}
	x.must(x.b.CreateBranch(x.ctx, feature, &c2), "CreateBranch from C2")
	vf := v2.Clone().Merge(bt.Tree{"db/h": bt.File(0o644, "feature")})
	x.write(feature, vf)
	c3 := x.commit(feature)
	featurePath := x.root(feature)

	x.write(master, bt.Tree{"db/uncommitted": bt.File(0o644, "u")})
	x.must(x.b.Rollback(x.ctx, master, c1), "reset master to C1")
	x.assertTree(master, v1)
	x.assertTree(feature, vf)
	x.commits(master, c1, c2)
	x.commits(feature, c3)
	if p := x.root(feature); p != featurePath {
		t.Errorf("feature moved from %s to %s", featurePath, p)
	}

	// C2 is the origin of feature: deleting it must not break feature.
	x.must(x.b.DeleteCommit(x.ctx, c2), "DeleteCommit C2")
	x.commits(master, c1)
	x.assertTree(feature, vf)
	x.write(feature, bt.Tree{"db/h": bt.File(0o644, "changed")})
	x.must(x.b.Rollback(x.ctx, feature, c3), "rollback feature to C3")
	x.assertTree(feature, vf)

	// Delete the origin branch: the clone survives, and can still be
	// committed, branched, rolled back and sent.
	x.must(x.b.DeleteBranch(x.ctx, master), "DeleteBranch master")
	x.assertTree(feature, vf)
	x.commits(feature, c3)
	c4 := x.commit(feature)
	x.must(x.b.Rollback(x.ctx, feature, c3), "rollback feature to C3 after deleting master")
	x.assertTree(feature, vf)
	var buf bytes.Buffer
	x.must(x.b.Send(x.ctx, c4, nil, &buf), "Send C4")
	x.must(x.b.Send(x.ctx, c4, &c3, &buf), "Send C4 from C3")
	again := dotmesh.BranchRef{Dot: master.Dot, Branch: "again"}
	x.must(x.b.CreateBranch(x.ctx, again, &c3), "CreateBranch from C3")
	x.assertTree(again, vf)

	// Once everything is gone, so is every dataset (deferred snapshots and
	// holders included).
	for _, ref := range []dotmesh.BranchRef{again, feature} {
		x.must(x.b.DeleteBranch(x.ctx, ref), "DeleteBranch")
	}
	if ds := x.datasets(); len(ds) != 0 {
		t.Errorf("datasets left after deleting every branch: %q", ds)
	}
}

// TestRollbackHistory: resets back and forth keep every commit reachable
// and sendable incrementally from its parent, and holders go away when the
// commits they kept are deleted.
func TestRollbackHistory(t *testing.T) {
	x := newH(t)
	b := dotmesh.BranchRef{Dot: dotmesh.NewDotID(), Branch: "master"}
	x.must(x.b.CreateBranch(x.ctx, b, nil), "CreateBranch")
	var cs []dotmesh.CommitRef
	var trees []bt.Tree
	tree := bt.Tree{}
	for i := range 4 {
		tree = tree.Clone().Merge(bt.Tree{"f" + string(rune('0'+i)): bt.File(0o644, strings.Repeat("x", i+1))})
		x.write(b, tree)
		cs = append(cs, x.commit(b))
		trees = append(trees, tree)
	}
	x.must(x.b.Rollback(x.ctx, b, cs[1]), "reset to C1")
	x.assertTree(b, trees[1])
	// As the Node does: drop the orphans, newest first.
	for _, c := range []dotmesh.CommitRef{cs[3], cs[2]} {
		x.must(x.b.DeleteCommit(x.ctx, c), "DeleteCommit")
	}
	x.commits(b, cs[0], cs[1])
	c4 := x.commit(b)
	x.must(x.b.Rollback(x.ctx, b, cs[0]), "reset to C0")
	x.assertTree(b, trees[0])
	x.must(x.b.Rollback(x.ctx, b, c4), "forward to C4 (not deleted yet)")
	x.assertTree(b, trees[1])
	for _, pair := range [][2]dotmesh.CommitRef{{cs[1], cs[0]}, {c4, cs[1]}} {
		var buf bytes.Buffer
		x.must(x.b.Send(x.ctx, pair[0], &pair[1], &buf), "incremental Send")
	}
	x.must(x.b.DeleteCommit(x.ctx, c4), "DeleteCommit C4")
	x.must(x.b.Rollback(x.ctx, b, cs[1]), "reset to C1")
	x.commits(b, cs[0], cs[1])
	// Only the live filesystem and the two commits remain.
	if ds := x.datasets(); len(ds) != 4 { // container, fs, 2 snapshots
		t.Errorf("datasets after deleting the later commits: %q", ds)
	}
}
