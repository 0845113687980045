package bucketremote_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/backend/dump"
	"github.com/dotmesh-io/dotmesh/bucket/repo"
	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/transport/bucketremote"
)

// notInProcess hides that a Remote runs in the node's process, so that
// a push to it goes as to a remote node: the stream alone, no chunks
// offered beside it.
type notInProcess struct{ dotmesh.Transport }

// bucketBytes is the stored size of all blobs a bucket holds.
func bucketBytes(t *testing.T, r *bucketremote.Remote) int64 {
	t.Helper()
	var n int64
	require.NoError(t, r.Repo().ListBlobs(context.Background(), func(_ repo.ID, size int64) error {
		n += size
		return nil
	}))
	return n
}

// A push from a files-backend node takes the chunks its store holds
// (dotmesh.OfferChunk, OfferFile): each file's chunks as the store cut
// them, stored from the store's own zstd frames, so the bucket neither
// cuts, hashes nor compresses them again. The store here compresses at
// level 19, which the bucket never does: its frames taken as they are
// take less room than the same tree pushed as to a remote node (cut and
// compressed by the bucket). Both clone back to the same tree, verify
// reads every blob, and a 1% change goes as a delta the same way.
func TestPushTakesStoredChunks(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := bboltstore.Open(filepath.Join(dir, "registry.db"), bboltstore.Options{})
	require.NoError(t, err)
	be, err := dump.Open(filepath.Join(dir, "dump"), dump.Options{CompressionLevel: 19})
	require.NoError(t, err)
	nd, err := dotmesh.NewNode(ctx, dotmesh.Options{Store: st, Backends: []dotmesh.StorageBackend{be}})
	require.NoError(t, err)
	t.Cleanup(func() { nd.Close() })
	a := &node{t: t, node: nd}
	a.create(app)
	text := func(i, size int) []byte {
		var sb strings.Builder
		for j := 0; sb.Len() < size; j++ {
			fmt.Fprintf(&sb, "%d,customer %d,order %d,%s\n", j, j*31%977, i*j%10007, strings.Repeat("x", j%13))
		}
		return []byte(sb.String())
	}
	for i := range 12 {
		a.write(app, fmt.Sprintf("t/f%02d.csv", i), text(i, 64<<10*(1+i%3)))
	}
	a.write(app, "t/big.csv", text(99, 3<<20)) // several chunks
	a.write(app, "random.bin", randomBytes(5, 1<<20))
	a.commit(app, "one")

	offered, plain := newBucket(t), newBucket(t)
	ro, rp := offered.remote(), plain.remote()
	_, err = a.node.Push(ctx, app, "", ro, dotmesh.TransferOptions{})
	require.NoError(t, err)
	_, err = a.node.Push(ctx, app, "", notInProcess{rp}, dotmesh.TransferOptions{})
	require.NoError(t, err)
	so, sp := bucketBytes(t, ro), bucketBytes(t, rp)
	t.Logf("blobs stored: %d bytes from the store's frames, %d cut and compressed by the bucket", so, sp)
	require.Less(t, so, sp*9/10, "the store's level-19 frames, taken as they are, are smaller than the bucket's own")

	requireSameTree(t, treeOf(t, a.root(app, "")), treeOf(t, cloneRoot(t, offered.remote(), app)))
	requireSameTree(t, treeOf(t, a.root(app, "")), treeOf(t, cloneRoot(t, plain.remote(), app)))
	for _, r := range []*bucketremote.Remote{ro, rp} {
		res, err := r.Verify(ctx, bucketremote.VerifyOptions{ReadData: true})
		require.NoError(t, err)
		require.NoError(t, res.Err())
	}

	// A 1%-ish change goes as a delta; its changed file is taken too.
	a.write(app, "t/f03.csv", text(1003, 70<<10))
	a.commit(app, "two")
	before := offered.store.put.Load()
	_, err = a.node.Push(ctx, app, "", ro, dotmesh.TransferOptions{})
	require.NoError(t, err)
	added := offered.store.put.Load() - before
	t.Logf("the change stored %d bytes", added)
	require.Less(t, added, int64(64<<10), "the changed file's chunk (70 KiB of text at level 19) and the records")
	requireSameTree(t, treeOf(t, a.root(app, "")), treeOf(t, cloneRoot(t, offered.remote(), app)))
	res, err := ro.Verify(ctx, bucketremote.VerifyOptions{ReadData: true})
	require.NoError(t, err)
	require.NoError(t, res.Err())
}
