//go:build linux && cgo

package btrfs

import (
	"context"
	"path/filepath"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/internal/recordfiles"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

var _ dotmesh.RecordKeeper = (*Backend)(nil)

// recordsSyncDelay is how long after the last record of a burst the
// records are synced (recordfiles.NewSyncBehind, which also writes them
// behind the caller: creating and renaming the files cost a fifth of the
// node's time for a commit): three fsyncs of the records of each commit
// cost more than its snapshot, and the next snapshot's transaction
// commit makes them durable anyway.
const recordsSyncDelay = 200 * time.Millisecond

// records keeps the registry's records as sidecar files in the btrfs
// filesystem, outside every subvolume: ROOT/records/<dot>/<key>, written
// and synced behind the caller.
func (b *Backend) records() *recordfiles.Dir {
	b.recsOnce.Do(func() {
		b.recs = recordfiles.NewSyncBehind(filepath.Join(b.root, "records"), recordsSyncDelay, b.log)
	})
	return b.recs
}

// KeepRecords implements dotmesh.RecordKeeper.
func (b *Backend) KeepRecords(ctx context.Context, dot dotmesh.DotID, recs map[string][]byte) error {
	return b.records().KeepRecords(ctx, dot, recs)
}

// Records implements dotmesh.RecordKeeper.
func (b *Backend) Records(ctx context.Context) (map[dotmesh.DotID]map[string][]byte, error) {
	return b.records().Records(ctx)
}
