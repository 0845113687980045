package dump

import (
	"context"
	"sync"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/dump/source"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// One instant across databases. A commit of a branch with several
// sources fixes every source's state together before it streams any
// dump: first every fingerprint is read (concurrently), then every
// source's consistent read starts at once (source.Snapshotter: an
// exported PostgreSQL snapshot held open, mysqldump's transaction,
// Redis's fork, SQLite's backup) and is held until its dump has
// streamed. Each source's instant is recorded as
// source.<subdot>.snapshot_time, and how far apart they lie as
// sources.snapshot_spread_ms.

// spreadKey is the commit fact holding the spread of the sources'
// instants (dotmesh.SnapshotSpread).
const spreadKey = dotmesh.InfoSourcesSpread

// sourceSnap is one source's state as fixed by takeSnapshots.
type sourceSnap struct {
	fp        string          // the fingerprint read before the snapshot
	unchanged *sourceState    // set when the fingerprint vouches for the tree's dump
	size      int64           // that dump's size
	at        time.Time       // the instant (unchanged: the fingerprint's)
	snap      source.Snapshot // nil: unchanged, or the driver dumps at once
	scratch   scratch
	err       error
}

// release lets go of what holds the source's state.
func (s *sourceSnap) release() {
	if s.snap != nil {
		s.snap.Close()
		s.snap = nil
	}
	s.scratch.remove()
}

// takeSnapshots reads every source's fingerprint, then, for those it
// does not vouch for, fixes their states, each wave concurrently. On an
// error the caller finds it in the source's err and releases them all.
func (b *Backend) takeSnapshots(ctx context.Context, br dotmesh.BranchRef, srcs []sourceConfig, drvs []source.Driver, known map[string]sourceState, inTree func(string) *Entry) []sourceSnap {
	snaps := make([]sourceSnap, len(srcs))
	each := func(f func(i int, s *sourceSnap)) {
		var wg sync.WaitGroup
		for i := range snaps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				f(i, &snaps[i])
			}()
		}
		wg.Wait()
	}
	each(func(i int, sn *sourceSnap) {
		s := &srcs[i]
		sn.fp = b.fingerprint(ctx, drvs[i]) // before the snapshot: see Fingerprinter
		sn.at = time.Now().UTC()
		// A database whose fingerprint is the one it had when it dumped to
		// what the tree holds needs no dump: the tree's file is its dump.
		if st, ok := known[s.Subdot]; ok && sn.fp != "" && st.Fingerprint == sn.fp && st.Key == stateKey(s) && st.Tool != "" {
			if old := inTree(s.Subdot + "/" + drvs[i].FileName()); old != nil && chunkDigest(old.Chunks) == st.Content {
				sn.unchanged, sn.size = &st, old.Size
			}
		}
	})
	n := 0
	for i := range snaps {
		if _, ok := drvs[i].(source.Snapshotter); ok && snaps[i].unchanged == nil {
			n++
		}
	}
	bar := newBarrier(n)
	each(func(i int, sn *sourceSnap) {
		ss, ok := drvs[i].(source.Snapshotter)
		if sn.unchanged != nil || !ok {
			return
		}
		var arrived sync.Once
		ready := func() { arrived.Do(bar.arrive) }
		defer ready() // a source that failed before it was ready holds up no other
		sn.scratch = scratch{parent: b.branchDir(br)}
		dir := sn.scratch.ScratchDir()
		if sn.snap, sn.err = ss.Snapshot(ctx, dir, ready); sn.err == nil {
			sn.at = sn.snap.Time()
		}
	})
	return snaps
}

// barrier lets n goroutines go on together: arrive returns once all have
// arrived.
type barrier struct {
	mu   sync.Mutex
	left int
	all  chan struct{}
}

func newBarrier(n int) *barrier {
	b := &barrier{left: n, all: make(chan struct{})}
	if n == 0 {
		close(b.all)
	}
	return b
}

func (b *barrier) arrive() {
	b.mu.Lock()
	if b.left--; b.left == 0 {
		close(b.all)
	}
	b.mu.Unlock()
	<-b.all
}
