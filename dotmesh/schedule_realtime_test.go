package dotmesh_test

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/backend/dump"
	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// gcLog is commitLog that also sums what the collections removed.
type gcLog struct {
	commitLog
	gcs, removed int
	freed        int64
}

func (l *gcLog) Done(ev dotmesh.OpEvent) {
	l.commitLog.Done(ev)
	if ev.Op == dotmesh.OpGC && ev.Err == nil && ev.GC != nil {
		l.mu.Lock()
		l.gcs++
		l.removed += len(ev.GC.Removed)
		l.freed += ev.GC.Stats.BytesRemoved
		l.mu.Unlock()
	}
}

// TestScheduleRealTime: the node's scheduler (Policies.Run, as the daemon
// runs it) on the real clock, a 1 s period for 25 s while a file changes
// every 300 ms, pruning by last=3,hourly=2. The commits that survive are
// exactly what the grid keeps of every scheduled commit made; the history
// is one chain; what was removed freed bytes; Run stops when asked.
func TestScheduleRealTime(t *testing.T) {
	const (
		run  = 25 * time.Second
		grid = "last=3,hourly=2"
	)
	ctx := context.Background()
	dir := t.TempDir()
	st, err := bboltstore.Open(filepath.Join(dir, "registry.db"), bboltstore.Options{})
	require.NoError(t, err)
	be, err := dump.Open(filepath.Join(dir, "dump"), dump.Options{})
	require.NoError(t, err)
	obs := &gcLog{}
	n, err := dotmesh.NewNode(ctx, dotmesh.Options{Store: st, Backends: []dotmesh.StorageBackend{be}, Observer: obs})
	require.NoError(t, err)
	t.Cleanup(func() { n.Close() })
	_, err = n.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	p, err := n.SubdotPath(ctx, dotmesh.VolumeName{Dot: app})
	require.NoError(t, err)
	write := func() {
		require.NoError(t, os.WriteFile(filepath.Join(p, "f"), []byte(randomBytes(t, 64<<10)), 0o644))
	}
	write()
	g, err := dotmesh.ParseKeepGrid(grid)
	require.NoError(t, err)
	_, err = n.Policies().Set(ctx, dotmesh.Policy{Dot: &app, Every: every(t, "1s"), Keep: g})
	require.NoError(t, err)

	rctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); n.Policies().Run(rctx) }()
	for end := time.Now().Add(run); time.Now().Before(end); time.Sleep(300 * time.Millisecond) {
		write()
	}
	stopped := time.Now()
	stop()
	wg.Wait()
	require.Less(t, time.Since(stopped), 5*time.Second, "Run stops when its context ends")

	all := obs.scheduled()
	require.GreaterOrEqual(t, len(all), int(run/time.Second)*2/3, "about one commit a second")
	for i := 1; i < len(all); i++ {
		// Due a period after the previous run started; a commit's time
		// lags its run's start by however long the commit took to start.
		require.GreaterOrEqual(t, all[i-1].Time.Sub(all[i].Time), 500*time.Millisecond, "commits a period apart")
	}
	times := make([]time.Time, len(all))
	for i, c := range all {
		times[i] = c.Time
	}
	var want []dotmesh.CommitID
	var reasons [][]string
	for i, why := range g.Keep(times) {
		if len(why) > 0 {
			want = append(want, all[i].ID)
			reasons = append(reasons, why)
		}
	}
	log, err := n.Log(ctx, app, "", 0)
	require.NoError(t, err)
	var got []dotmesh.CommitID
	for i, c := range log {
		got = append(got, c.ID)
		if i+1 < len(log) {
			require.Equal(t, log[i+1].ID, c.Parent, "one chain")
		}
	}
	require.True(t, slices.Equal(want, got), "surviving %v, the grid keeps %v", got, want)
	require.Equal(t, len(all)-len(got), obs.removed)
	require.Greater(t, obs.freed, int64(obs.removed)*32<<10, "each removed commit's own 64 KiB is freed")
	t.Logf("retention figures: %s at 1s, keep %s: %d scheduled commits, %d kept %v, %d removed in %d prunes, %d bytes freed",
		run, grid, len(all), len(got), reasons, obs.removed, obs.gcs, obs.freed)

	_, err = n.Reset(ctx, app, "", string(log[len(log)-1].ID), dotmesh.ResetOptions{Hard: true})
	require.NoError(t, err)
	vr, err := n.Verify(ctx, nil)
	require.NoError(t, err)
	require.True(t, vr.OK())
}

func randomBytes(t *testing.T, n int) string {
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return string(b)
}
