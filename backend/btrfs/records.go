//go:build linux && cgo

package btrfs

import (
	"context"
	"path/filepath"

	"github.com/dotmesh-io/dotmesh/backend/internal/recordfiles"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

var _ dotmesh.RecordKeeper = (*Backend)(nil)

// records keeps the registry's records as sidecar files in the btrfs
// filesystem, outside every subvolume: ROOT/records/<dot>/<key>.
func (b *Backend) records() *recordfiles.Dir {
	return recordfiles.New(filepath.Join(b.root, "records"))
}

// KeepRecords implements dotmesh.RecordKeeper.
func (b *Backend) KeepRecords(ctx context.Context, dot dotmesh.DotID, recs map[string][]byte) error {
	return b.records().KeepRecords(ctx, dot, recs)
}

// Records implements dotmesh.RecordKeeper.
func (b *Backend) Records(ctx context.Context) (map[dotmesh.DotID]map[string][]byte, error) {
	return b.records().Records(ctx)
}
