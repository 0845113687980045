package bucketremote_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/backend/dump"
	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/transport/bucketremote"
)

// commitLog keeps the "committed" records of a dump backend's log.
type commitLog struct {
	mu   sync.Mutex
	recs []map[string]string
}

func (l *commitLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *commitLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *commitLog) WithGroup(string) slog.Handler            { return l }
func (l *commitLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "committed" {
		return nil
	}
	m := map[string]string{}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
	l.mu.Lock()
	l.recs = append(l.recs, m)
	l.mu.Unlock()
	return nil
}

// A clone from a bucket stores the chunks as the bucket holds them, their
// compressed frames as they are (dotmesh.ChunkStager): the commit of the
// received tree reads no file and compresses only its manifest, and the
// store verifies.
func TestCloneStagesBucketChunks(t *testing.T) {
	ctx := context.Background()
	a := newNode(t)
	a.create(app)
	var total int
	for i := range 24 {
		var sb strings.Builder
		for j := 0; sb.Len() < 96<<10*(1+i%4); j++ {
			fmt.Fprintf(&sb, "row %d of file %d: %s\n", j, i, strconv.Itoa(j*7919%100003))
		}
		a.write(app, fmt.Sprintf("d%d/f%02d.txt", i%3, i), []byte(sb.String()))
		total += sb.Len()
	}
	a.write(app, "random.bin", randomBytes(3, 3<<20)) // stored raw in the bucket: compressed here
	total += 3 << 20
	a.commit(app, "text")
	b := newBucket(t)
	_, err := a.node.Push(ctx, app, "", b.remote(), dotmesh.TransferOptions{})
	require.NoError(t, err)

	dir := t.TempDir()
	st, err := bboltstore.Open(filepath.Join(dir, "registry.db"), bboltstore.Options{})
	require.NoError(t, err)
	logs := &commitLog{}
	be, err := dump.Open(filepath.Join(dir, "dump"), dump.Options{Logger: slog.New(logs)})
	require.NoError(t, err)
	c, err := dotmesh.NewNode(ctx, dotmesh.Options{Store: st, Backends: []dotmesh.StorageBackend{be}})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	_, err = c.Clone(ctx, app, "", b.remote(), dotmesh.TransferOptions{})
	require.NoError(t, err)

	got, err := c.SubdotPath(ctx, dotmesh.VolumeName{Dot: app, Subdot: dotmesh.RootSubdot})
	require.NoError(t, err)
	requireSameTree(t, treeOf(t, a.root(app, "")), treeOf(t, got))
	logs.mu.Lock()
	require.Len(t, logs.recs, 1, "the clone's commit")
	rec := logs.recs[0]
	logs.mu.Unlock()
	// It read no file and compressed only its manifest.
	require.Equal(t, "0", rec["read"], "file bytes the clone's commit read (%d received)", total)
	newBytes, err := strconv.Atoi(rec["new_bytes_stored"])
	require.NoError(t, err, "committed log record %v", rec)
	require.Less(t, newBytes, 16<<10, "bytes the clone's commit compressed and stored (%d received)", total)
	rep, err := be.Verify(ctx)
	require.NoError(t, err)
	require.Empty(t, rep.Damaged)
	require.Empty(t, rep.Problems)
	require.Greater(t, rep.Objects, int64(24), "objects verified")
}

// cutFetch cuts every commit stream it sends after limit bytes.
type cutFetch struct {
	*bucketremote.Remote
	limit int64
}

func (c *cutFetch) FetchCommit(ctx context.Context, dot dotmesh.DotName, id dotmesh.CommitID, base *dotmesh.CommitID, format string) (io.ReadCloser, error) {
	rc, err := c.Remote.FetchCommit(ctx, dot, id, base, format)
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(rc, c.limit), rc}, nil
}

// A clone cut mid-stream leaves no dot, keeps the chunks it staged (in
// the store, for a re-run), and a re-run completes it.
func TestCloneCutKeepsStagedChunks(t *testing.T) {
	ctx := context.Background()
	a := newNode(t)
	a.create(app)
	for i := range 8 {
		a.write(app, fmt.Sprintf("f%d", i), randomBytes(int64(10+i), 3<<20))
	}
	a.commit(app, "data")
	b := newBucket(t)
	_, err := a.node.Push(ctx, app, "", b.remote(), dotmesh.TransferOptions{})
	require.NoError(t, err)

	dir := t.TempDir()
	st, err := bboltstore.Open(filepath.Join(dir, "registry.db"), bboltstore.Options{})
	require.NoError(t, err)
	be, err := dump.Open(filepath.Join(dir, "dump"), dump.Options{})
	require.NoError(t, err)
	c, err := dotmesh.NewNode(ctx, dotmesh.Options{Store: st, Backends: []dotmesh.StorageBackend{be}})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })

	_, err = c.Clone(ctx, app, "", &cutFetch{Remote: b.remote(), limit: 18 << 20}, dotmesh.TransferOptions{})
	require.Error(t, err)
	_, err = c.Dot(ctx, app)
	require.ErrorIs(t, err, dotmesh.ErrNotFound, "a cut clone leaves no dot")
	stats, err := be.StoreStats(ctx)
	require.NoError(t, err)
	require.Positive(t, stats.Objects, "chunks staged before the cut are kept for a re-run")

	_, err = c.Clone(ctx, app, "", b.remote(), dotmesh.TransferOptions{})
	require.NoError(t, err)
	got, err := c.SubdotPath(ctx, dotmesh.VolumeName{Dot: app, Subdot: dotmesh.RootSubdot})
	require.NoError(t, err)
	requireSameTree(t, treeOf(t, a.root(app, "")), treeOf(t, got))
	rep, err := be.Verify(ctx)
	require.NoError(t, err)
	require.Empty(t, rep.Damaged)
	require.Empty(t, rep.Problems)
}
