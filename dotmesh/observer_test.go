package dotmesh_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/backend/dump"
	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// opRecorder is an Observer that keeps what it is told.
type opRecorder struct {
	mu      sync.Mutex
	running map[string]int
	done    []dotmesh.OpEvent
	moved   map[dotmesh.Direction]int64
}

func (r *opRecorder) Started(op string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.running[op]++
}

func (r *opRecorder) Done(ev dotmesh.OpEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.running[ev.Op]--
	r.done = append(r.done, ev)
}

func (r *opRecorder) Moved(dir dotmesh.Direction, n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.moved[dir] += n
}

// ops counts the finished operations, as "op ok" and "op error".
func (r *opRecorder) ops() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for _, ev := range r.done {
		k := ev.Op + " ok"
		if ev.Err != nil {
			k = ev.Op + " error"
		}
		out[k]++
	}
	return out
}

func observedNode(t *testing.T) (*dotmesh.Node, *opRecorder) {
	t.Helper()
	dir := t.TempDir()
	st, err := bboltstore.Open(filepath.Join(dir, "registry.db"), bboltstore.Options{})
	require.NoError(t, err)
	be, err := dump.Open(filepath.Join(dir, "dump"), dump.Options{})
	require.NoError(t, err)
	rec := &opRecorder{running: map[string]int{}, moved: map[dotmesh.Direction]int64{}}
	n, err := dotmesh.NewNode(context.Background(), dotmesh.Options{Store: st, Backends: []dotmesh.StorageBackend{be}, Observer: rec})
	require.NoError(t, err)
	t.Cleanup(func() { n.Close() })
	return n, rec
}

// The Observer hears of every verb once, started and done, failed ones
// too, with what they made; and of the stream bytes each side moved.
func TestObserver(t *testing.T) {
	ctx := context.Background()
	a, ra := observedNode(t)
	b, rb := observedNode(t)
	_, err := a.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	dir, err := a.SubdotPath(ctx, dotmesh.VolumeName{Dot: app})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "f"), []byte("hello"), 0o644))
	c, err := a.Commit(ctx, app, "", dotmesh.CommitOptions{Message: "one"})
	require.NoError(t, err)
	_, err = a.Commit(ctx, app, "", dotmesh.CommitOptions{Message: "nothing"})
	require.Error(t, err)
	_, err = a.Reset(ctx, app, "", "HEAD", dotmesh.ResetOptions{})
	require.NoError(t, err)
	_, err = a.Checkout(ctx, app, "missing", dotmesh.CheckoutOptions{})
	require.Error(t, err)
	res, err := a.Push(ctx, app, "", dotmesh.LocalTransport(b), dotmesh.TransferOptions{})
	require.NoError(t, err)
	_, err = a.Pull(ctx, dotmesh.DotName{Namespace: app.Namespace, Name: "nope"}, "", dotmesh.LocalTransport(b), dotmesh.TransferOptions{})
	require.Error(t, err)
	_, err = a.GC(ctx, dotmesh.GCOptions{})
	require.NoError(t, err)
	_, err = a.Verify(ctx, nil)
	require.NoError(t, err)

	require.Equal(t, map[string]int{"commit ok": 1, "commit error": 1, "reset ok": 1, "checkout error": 1, "push ok": 1,
		"pull error": 1, "gc ok": 1, "verify ok": 1}, ra.ops())
	require.Equal(t, map[string]int{"receive ok": 1}, rb.ops())
	for op, n := range ra.running {
		require.Zero(t, n, "%s still running", op)
	}
	for _, ev := range ra.done {
		require.Positive(t, ev.Duration, ev.Op)
		switch {
		case ev.Op == dotmesh.OpCommit && ev.Err == nil, ev.Op == dotmesh.OpReset:
			require.Equal(t, c.ID, ev.Commit.ID, ev.Op)
			require.NotEmpty(t, ev.Commit.Info, "the commit's backend facts")
		case ev.Op == dotmesh.OpPush:
			require.Equal(t, res, ev.Transfer)
		case ev.Op == dotmesh.OpGC:
			require.NotNil(t, ev.GC)
		}
	}
	require.Positive(t, res.Bytes)
	require.Equal(t, map[dotmesh.Direction]int64{dotmesh.DirSent: res.Bytes}, ra.moved)
	require.Equal(t, map[dotmesh.Direction]int64{dotmesh.DirReceived: res.Bytes}, rb.moved)
}
