package bucketremote_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/backend/btrfs"
	"github.com/dotmesh-io/dotmesh/backend/zfs"
	"github.com/dotmesh-io/dotmesh/backend/zfs/zfstest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// A btrfs or zfs dot goes to the bucket as chunks and comes back onto
// a node that runs the files (dump) backend only; its second commit
// uploads only what changed. These loop-mount an image or make a zfs
// pool: run them under `flock -o /tmp/dm-heavy-tests.lock`.
func TestCrossBackendBtrfs(t *testing.T) {
	for _, n := range []string{"btrfs", "mkfs.btrfs", "losetup", "mount", "umount"} {
		if _, err := exec.LookPath(n); err != nil {
			t.Fatalf("%s not found: these tests need real btrfs (apt-get install btrfs-progs util-linux mount)", n)
		}
	}
	be, err := btrfs.Open(context.Background(), btrfs.Options{DataDir: filepath.Join(t.TempDir(), "btrfs"), PoolSize: 1 << 30})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, be.Close()) })
	testCrossBackend(t, be)
}

func TestCrossBackendZFS(t *testing.T) {
	zfstest.Require(t)
	pool, dir := zfstest.Pool(t)
	be, err := zfs.Open(context.Background(), zfs.Options{Pool: pool, DataDir: dir, PoolSize: 1 << 30})
	require.NoError(t, err)
	t.Cleanup(func() { be.Close() }) // before the pool goes
	testCrossBackend(t, be)
}

func testCrossBackend(t *testing.T, be dotmesh.StorageBackend) {
	ctx := context.Background()
	a := newNodeWith(t, be)
	a.create(app)
	d, err := a.node.Dot(ctx, app)
	require.NoError(t, err)
	require.Equal(t, be.Name(), d.Backend)
	fillTree(t, a.root(app, ""), randomBytes(50, 6<<20))
	a.commit(app, "on btrfs")

	b := newBucket(t)
	res, err := a.node.Push(ctx, app, "", b.remote(), dotmesh.TransferOptions{})
	require.NoError(t, err)
	require.Equal(t, dotmesh.FormatNeutral, res.Format)
	first := b.store.put.Load()

	a.write(app, "db/base/small", []byte("changed"))
	a.commit(app, "second")
	_, err = a.node.Push(ctx, app, "", b.remote(), dotmesh.TransferOptions{})
	require.NoError(t, err)
	second := b.store.put.Load() - first
	t.Logf("%s dot: first push %d bytes, a small change %d bytes", be.Name(), first, second)
	require.Less(t, second, int64(64<<10), "the unchanged chunks are not uploaded again")

	c := newNode(t)
	_, err = c.node.Clone(ctx, app, "", b.remote(), dotmesh.TransferOptions{})
	require.NoError(t, err)
	d, err = c.node.Dot(ctx, app)
	require.NoError(t, err)
	require.Equal(t, "dump", d.Backend)
	requireSameTree(t, treeOf(t, a.root(app, "")), treeOf(t, c.root(app, "")))
	require.Equal(t, a.log(app, "master")[0].ID, c.log(app, "master")[0].ID)
	requireClean(t, c, app)

	// Random changes pushed as deltas from this backend (its tree
	// comparison: inode proofs, mtimes exact): the node's deltas give
	// its commits' trees, and a clone after them is the same tree.
	rem := &streamCounter{Remote: b.remote()}
	r := rand.New(rand.NewPCG(7, 8))
	commits := []*dotmesh.Commit{a.log(app, "master")[0]}
	for i := range 6 {
		mutateTree(t, r, a.root(app, ""))
		commits = append(commits, a.commit(app, fmt.Sprint("random ", i)))
		_, err := a.node.Push(ctx, app, "", rem, dotmesh.TransferOptions{})
		require.NoError(t, err)
	}
	require.Equal(t, int64(6), rem.deltas.Load(), "pushes of a known base go as deltas")
	checkDeltas(t, dotmesh.LocalTransport(a.node), commits)
	requireSameTree(t, treeOf(t, a.root(app, "")), treeOf(t, cloneRoot(t, b.remote(), app)))

	// This backend's node receives deltas from a files node: each
	// applied to the base it holds gives the sender's tree.
	other := dotmesh.DotName{Namespace: dotmesh.DefaultNamespace, Name: "other"}
	src := newNode(t)
	src.create(other)
	to := &deltaTaker{Transport: dotmesh.LocalTransport(a.node)}
	for i := range 6 {
		mutateTree(t, r, src.root(other, ""))
		src.commit(other, fmt.Sprint("random ", i))
		_, err := src.node.Push(ctx, other, "", to, dotmesh.TransferOptions{})
		require.NoError(t, err)
		want, got := treeOf(t, src.root(other, "")), treeOf(t, a.root(other, ""))
		if be.Name() == "zfs" {
			// zfs-fuse keeps times to the second (whole streams
			// too): compare them at that precision.
			secondTimes(want)
			secondTimes(got)
		}
		requireSameTree(t, want, got)
	}
	d, err = a.node.Dot(ctx, other)
	require.NoError(t, err)
	require.Equal(t, be.Name(), d.Backend)
	require.Equal(t, 5, to.deltas, "pushes of a known base go as deltas")

	// A files dot cloned from the bucket onto this backend: the same
	// tree, and the working state is the commit (clean).
	third := dotmesh.DotName{Namespace: dotmesh.DefaultNamespace, Name: "third"}
	src.create(third)
	fillTree(t, src.root(third, ""), randomBytes(51, 2<<20))
	src.commit(third, "one")
	_, err = src.node.Push(ctx, third, "", b.remote(), dotmesh.TransferOptions{})
	require.NoError(t, err)
	_, err = a.node.Clone(ctx, third, "", b.remote(), dotmesh.TransferOptions{})
	require.NoError(t, err)
	d, err = a.node.Dot(ctx, third)
	require.NoError(t, err)
	require.Equal(t, be.Name(), d.Backend)
	want, got := treeOf(t, src.root(third, "")), treeOf(t, a.root(third, ""))
	if be.Name() == "zfs" {
		secondTimes(want)
		secondTimes(got)
	}
	requireSameTree(t, want, got)
	requireClean(t, a, third)
}

// requireClean fails unless dot's current branch on n has no change
// against its head (what `dm status` calls clean).
func requireClean(t *testing.T, n *node, dot dotmesh.DotName) {
	t.Helper()
	st, err := n.node.Status(context.Background(), dot)
	require.NoError(t, err)
	require.False(t, st.Usage.Dirty, "%s is clean after its clone: %+v", dot, st.Usage)
}

func secondTimes(tree map[string]fileState) {
	for p, f := range tree {
		f.MTime = f.MTime.Truncate(time.Second)
		tree[p] = f
	}
}

// deltaTaker is a node's transport counting the neutral deltas it is
// sent.
type deltaTaker struct {
	dotmesh.Transport
	deltas int
}

func (d *deltaTaker) SendCommit(ctx context.Context, dot dotmesh.DotName, branch string, c dotmesh.Commit, base *dotmesh.CommitID, format string, data io.Reader) error {
	if base != nil {
		d.deltas++
	}
	return d.Transport.SendCommit(ctx, dot, branch, c, base, format, data)
}
