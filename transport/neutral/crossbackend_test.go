package neutral_test

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/backend/btrfs"
	"github.com/dotmesh-io/dotmesh/backend/dump"
	"github.com/dotmesh-io/dotmesh/backend/zfs"
	"github.com/dotmesh-io/dotmesh/backend/zfs/zfstest"
	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Cross-backend pushes between real backends: a 2-byte change of a
// 2 MiB file travels as a patch of about those bytes, and the receiver's
// file is the sender's. These loop-mount an image or make a zfs pool:
// run them under `flock -o /tmp/dm-heavy-tests.lock`.

var app = dotmesh.DotName{Namespace: dotmesh.DefaultNamespace, Name: "app"}

func newNode(t *testing.T, be dotmesh.StorageBackend) *dotmesh.Node {
	t.Helper()
	dir := t.TempDir()
	st, err := bboltstore.Open(filepath.Join(dir, "registry.db"), bboltstore.Options{})
	require.NoError(t, err)
	if be == nil {
		be, err = dump.Open(filepath.Join(dir, "dump"), dump.Options{})
		require.NoError(t, err)
	}
	n, err := dotmesh.NewNode(context.Background(), dotmesh.Options{Store: st, Backends: []dotmesh.StorageBackend{be}})
	require.NoError(t, err)
	t.Cleanup(func() { n.Close() })
	return n
}

// counter counts the bytes of the commits it is sent, and their formats.
type counter struct {
	dotmesh.Transport
	bytes   int64
	formats []string
}

func (c *counter) SendCommit(ctx context.Context, dot dotmesh.DotName, branch string, cm dotmesh.Commit, base *dotmesh.CommitID, format string, data io.Reader) error {
	b, err := io.ReadAll(data)
	if err != nil {
		return err
	}
	c.bytes += int64(len(b))
	c.formats = append(c.formats, format)
	return c.Transport.SendCommit(ctx, dot, branch, cm, base, format, bytes.NewReader(b))
}

func rootDir(t *testing.T, n *dotmesh.Node) string {
	p, err := n.SubdotPath(context.Background(), dotmesh.VolumeName{Dot: app, Subdot: dotmesh.RootSubdot})
	require.NoError(t, err)
	return p
}

// pushPatch pushes a tree from a to b, changes 2 bytes of its big file,
// and pushes again.
func pushPatch(t *testing.T, a, b *dotmesh.Node) {
	ctx := context.Background()
	_, err := a.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	data := make([]byte, 2<<20)
	r := rand.New(rand.NewPCG(22, 22))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	big := filepath.Join(rootDir(t, a), "big")
	require.NoError(t, os.WriteFile(big, data, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(rootDir(t, a), "small"), []byte("small"), 0o644))
	_, err = a.Commit(ctx, app, "", dotmesh.CommitOptions{Message: "one"})
	require.NoError(t, err)
	to := &counter{Transport: dotmesh.LocalTransport(b)}
	_, err = a.Push(ctx, app, "", to, dotmesh.TransferOptions{})
	require.NoError(t, err)

	data[1<<20] ^= 0xff
	data[1<<20+1] ^= 0x0f
	require.NoError(t, os.WriteFile(big, data, 0o644))
	_, err = a.Commit(ctx, app, "", dotmesh.CommitOptions{Message: "two"})
	require.NoError(t, err)
	to.bytes, to.formats = 0, nil
	res, err := a.Push(ctx, app, "", to, dotmesh.TransferOptions{})
	require.NoError(t, err)
	require.Equal(t, dotmesh.FormatNeutral, res.Format)
	require.Equal(t, []string{dotmesh.FormatNeutralPatch}, to.formats)
	require.Less(t, to.bytes, int64(300), "a 2-byte change of a 2 MiB file")
	got, err := os.ReadFile(filepath.Join(rootDir(t, b), "big"))
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got), "the receiver's file is the sender's")
}

func btrfsBackend(t *testing.T) dotmesh.StorageBackend {
	for _, n := range []string{"btrfs", "mkfs.btrfs", "losetup", "mount", "umount"} {
		if _, err := exec.LookPath(n); err != nil {
			t.Fatalf("%s not found: these tests need real btrfs (apt-get install btrfs-progs util-linux mount)", n)
		}
	}
	be, err := btrfs.Open(context.Background(), btrfs.Options{DataDir: filepath.Join(t.TempDir(), "btrfs"), PoolSize: 1 << 30})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, be.Close()) })
	return be
}

func TestPatchBtrfsToFiles(t *testing.T) {
	pushPatch(t, newNode(t, btrfsBackend(t)), newNode(t, nil))
}

// The other way, the patch is applied in place on btrfs's working state.
func TestPatchFilesToBtrfs(t *testing.T) {
	pushPatch(t, newNode(t, nil), newNode(t, btrfsBackend(t)))
}

func TestPatchZFSToFiles(t *testing.T) {
	zfstest.Require(t)
	pool, dir := zfstest.Pool(t)
	be, err := zfs.Open(context.Background(), zfs.Options{Pool: pool, DataDir: dir, PoolSize: 1 << 30})
	require.NoError(t, err)
	t.Cleanup(func() { be.Close() }) // before the pool goes
	pushPatch(t, newNode(t, be), newNode(t, nil))
}
