package dotmesh_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/backend/dump"
	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// clock is a settable time for a node.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// pinnedNode is a node whose time the test sets, with the given pin time.
func pinnedNode(t *testing.T, pin time.Duration, clk *clock) (*dotmesh.Node, string) {
	dir := t.TempDir()
	st, err := bboltstore.Open(filepath.Join(dir, "registry.db"), bboltstore.Options{})
	require.NoError(t, err)
	be, err := dump.Open(filepath.Join(dir, "dump"), dump.Options{PinTTL: pin})
	require.NoError(t, err)
	n, err := dotmesh.NewNode(context.Background(), dotmesh.Options{Store: st, Backends: []dotmesh.StorageBackend{be}, TransferPin: pin, Now: clk.now})
	require.NoError(t, err)
	t.Cleanup(func() { n.Close() })
	return n, filepath.Join(dir, "dump")
}

// stream returns the native stream of a fresh commit of 8 MiB on a.
func bigCommitStream(t *testing.T) (*dotmesh.Commit, []byte) {
	ctx := context.Background()
	a := newEnv(t)
	_, err := a.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	data := make([]byte, 8<<20)
	r := rand.NewChaCha8([32]byte{7})
	_, _ = r.Read(data)
	a.write("app", "big", string(data))
	c := a.commit("big")
	var buf bytes.Buffer
	require.NoError(t, a.node.TransferPeer().Send(ctx, app, c.ID, nil, dotmesh.FormatNative+"dump", &buf))
	return c, buf.Bytes()
}

// TestIncomingNotExpiredWhileReceiving: a receive that is getting bytes is
// never expired, however long it runs; cut off, it shows as incoming and
// expires only a pin time after its last byte, and gc then removes the
// staged dot, its commit data and its branch directory.
func TestIncomingNotExpiredWhileReceiving(t *testing.T) {
	ctx := context.Background()
	c, stream := bigCommitStream(t)
	clk := &clock{t: time.Now()}
	const pin = time.Hour
	b, dumpDir := pinnedNode(t, pin, clk)

	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- b.TransferPeer().Receive(ctx, app, "master", *c, nil, dotmesh.FormatNative+"dump", pr) }()
	half := len(stream) / 2
	_, err := pw.Write(stream[:half/2])
	require.NoError(t, err)
	ts, err := b.TransferPeer().Incoming(ctx)
	require.NoError(t, err)
	require.Len(t, ts, 1)
	require.True(t, ts[0].Active)
	require.True(t, ts[0].New)

	// Long after the pin time, still receiving: gc would leave it alone
	// (a real gc waits for the receive to end before it sweeps), and the
	// bytes that keep arriving refresh its record.
	clk.add(2 * pin)
	res, err := b.GC(ctx, dotmesh.GCOptions{DryRun: true})
	require.NoError(t, err)
	require.Empty(t, res.Expired)
	_, err = pw.Write(stream[half/2 : half])
	require.NoError(t, err)
	ts, err = b.TransferPeer().Incoming(ctx)
	require.NoError(t, err)
	require.Len(t, ts, 1)
	require.True(t, clk.now().Equal(ts[0].Updated), "the arriving bytes did not refresh the record (updated %s, now %s)", ts[0].Updated, clk.now())

	pw.CloseWithError(errors.New("sender went away"))
	require.Error(t, <-done)
	ts, err = b.TransferPeer().Incoming(ctx)
	require.NoError(t, err)
	require.Len(t, ts, 1)
	require.False(t, ts[0].Active)
	require.GreaterOrEqual(t, ts[0].Bytes, int64(half))
	res, err = b.GC(ctx, dotmesh.GCOptions{})
	require.NoError(t, err)
	require.Empty(t, res.Expired, "expired within the pin time")
	require.Zero(t, res.Stats.BytesRemoved, "gc freed a cut-off transfer's data within the pin time")

	clk.add(pin + time.Minute)
	res, err = b.GC(ctx, dotmesh.GCOptions{DryRun: true})
	require.NoError(t, err)
	require.Len(t, res.Expired, 1)
	res, err = b.GC(ctx, dotmesh.GCOptions{})
	require.NoError(t, err)
	require.Len(t, res.Expired, 1)
	require.Positive(t, res.Stats.BytesRemoved)
	ts, err = b.TransferPeer().Incoming(ctx)
	require.NoError(t, err)
	require.Empty(t, ts)
	ents, err := os.ReadDir(filepath.Join(dumpDir, "branches"))
	require.NoError(t, err)
	require.Empty(t, ents, "the staged dot's branch directories remain")

	// A transfer after that starts afresh and finishes.
	require.NoError(t, b.TransferPeer().Receive(ctx, app, "master", *c, nil, dotmesh.FormatNative+"dump", bytes.NewReader(stream)))
	_, err = b.TransferPeer().Finish(ctx, app, "master", dotmesh.FinishRequest{Head: c.ID})
	require.NoError(t, err)
	ts, err = b.TransferPeer().Incoming(ctx)
	require.NoError(t, err)
	require.Empty(t, ts)
}

// TestAbortIncomingCancelsReceive: aborting a transfer that is receiving
// stops it; the commits the dot had stay.
func TestAbortIncomingCancelsReceive(t *testing.T) {
	ctx := context.Background()
	c, stream := bigCommitStream(t)
	clk := &clock{t: time.Now()}
	b, _ := pinnedNode(t, time.Hour, clk)

	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- b.TransferPeer().Receive(ctx, app, "master", *c, nil, dotmesh.FormatNative+"dump", pr) }()
	_, err := pw.Write(stream[:len(stream)/4])
	require.NoError(t, err)
	// The sender goes on writing; the abort cuts the receive off.
	go func() { _, _ = pw.Write(stream[len(stream)/4:]); pw.Close() }()
	res, err := b.TransferPeer().Abort(ctx, app, "")
	require.NoError(t, err)
	require.Len(t, res.Aborted, 1)
	err = <-done
	require.ErrorIs(t, err, dotmesh.ErrConflict)
	require.Contains(t, err.Error(), "the incoming transfer of app@master was aborted on the receiving node (dm transfers abort)")
	pr.Close()
	ts, err := b.TransferPeer().Incoming(ctx)
	require.NoError(t, err)
	require.Empty(t, ts)
	_, err = b.TransferPeer().Abort(ctx, app, "")
	require.ErrorIs(t, err, dotmesh.ErrNotFound)
	_, err = b.TransferPeer().Finish(ctx, app, "master", dotmesh.FinishRequest{Head: c.ID})
	require.ErrorIs(t, err, dotmesh.ErrNotFound)
}
