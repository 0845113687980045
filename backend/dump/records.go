package dump

import (
	"context"
	"path/filepath"

	"github.com/dotmesh-io/dotmesh/backend/internal/recordfiles"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

var _ dotmesh.RecordKeeper = (*Backend)(nil)

// records keeps the registry's records beside the data, outside every
// working tree: DIR/records/<dot>/<key> (see package recordfiles).
func (b *Backend) records() *recordfiles.Dir {
	return recordfiles.New(filepath.Join(b.dir, "records"))
}

// KeepRecords implements dotmesh.RecordKeeper.
func (b *Backend) KeepRecords(ctx context.Context, dot dotmesh.DotID, recs map[string][]byte) error {
	return b.records().KeepRecords(ctx, dot, recs)
}

// Records implements dotmesh.RecordKeeper.
func (b *Backend) Records(ctx context.Context) (map[dotmesh.DotID]map[string][]byte, error) {
	return b.records().Records(ctx)
}
