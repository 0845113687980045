package zfs

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/zfs/zfstest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// TestCommitsThroughFuseSocket: with zfs-fuse, a commit's snapshot goes
// through its command socket, tagged with the branch as the command tags
// it, and its failures are the command's kinds; with NoFuseSocket the
// command takes it.
func TestCommitsThroughFuseSocket(t *testing.T) {
	ctx := context.Background()
	opts := testPoolOptions(t)
	g := openTest(t, opts)
	if g.b.z.sock.Load() == nil {
		t.Fatalf("zfs-fuse runs (%s), but the backend takes no snapshot through its socket", DefaultFuseSocket)
	}
	ref := newTestBranch(t, g)
	before := socketSnapshots.Load()
	c := dotmesh.CommitRef{BranchRef: ref, ID: dotmesh.NewCommitID()}
	if _, err := g.Commit(ctx, c); err != nil {
		t.Fatal(err)
	}
	if n := socketSnapshots.Load() - before; n != 1 {
		t.Fatalf("the commit took %d snapshots through the socket, want 1", n)
	}
	inv, err := g.b.inventory(ctx, ref.Dot)
	if err != nil {
		t.Fatal(err)
	}
	s := inv.commit(c.ID)
	if s == nil {
		t.Fatalf("commit %s has no snapshot in the listing", c.ID)
	}
	if got := strings.TrimSpace(zfstest.ZFS(t, "get", "-H", "-o", "value", userBranchProp, s.snap().String())); got != "master" {
		t.Fatalf("%s of the commit's snapshot = %q, want master", userBranchProp, got)
	}
	err = g.b.z.snapshot(ctx, s.snap(), mustProp(userBranchProp, "master"))
	var ce *CmdError
	if !errors.Is(err, ErrExists) || !errors.Is(err, dotmesh.ErrAlreadyExists) || !errors.As(err, &ce) || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("a snapshot taken twice: %v, want ErrExists in a CmdError", err)
	}
	gone := snapshot{fs: dataset{opts.Pool + "/nothing"}, name: "x"}
	if err := g.b.z.snapshot(ctx, gone); !errors.Is(err, ErrNoDataset) {
		t.Fatalf("a snapshot of a missing file system: %v, want ErrNoDataset", err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}

	opts.FuseSocket = NoFuseSocket
	g = openTest(t, opts)
	before = socketSnapshots.Load()
	c = dotmesh.CommitRef{BranchRef: ref, ID: dotmesh.NewCommitID()}
	if _, err := g.Commit(ctx, c); err != nil {
		t.Fatal(err)
	}
	if n := socketSnapshots.Load() - before; n != 0 || g.b.z.sock.Load() != nil {
		t.Fatalf("with NoFuseSocket %d snapshots went through the socket", n)
	}
}
