package dump

import (
	"context"
	"errors"
	"fmt"

	"github.com/dotmesh-io/dotmesh/backend/dump/cas"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// StoreStats implements dotmesh.StoreStatter: the objects and their
// stored bytes from the store's in-memory index, and the file bytes of
// every commit from the commit records (one small file each). A commit
// removed meanwhile is skipped; nothing is written. While a garbage
// collection runs it answers ErrInUse at once rather than wait for it
// (a scrape would time out).
func (b *Backend) StoreStats(ctx context.Context) (dotmesh.StoreStats, error) {
	var st dotmesh.StoreStats
	if !b.gcMu.TryRLock() {
		return st, fmt.Errorf("%w: a garbage collection is running in %s; its store is counted after it", dotmesh.ErrInUse, b.dir)
	}
	defer b.gcMu.RUnlock()
	if err := b.store.List(func(_ cas.Hash, size int64) error {
		st.Objects++
		st.StoredBytes += size
		return nil
	}); err != nil {
		return st, err
	}
	brs, err := b.Branches(ctx)
	if err != nil {
		return st, err
	}
	for _, br := range brs {
		ids, err := b.Commits(ctx, br)
		if errors.Is(err, dotmesh.ErrNotFound) {
			continue
		}
		if err != nil {
			return st, err
		}
		for _, id := range ids {
			if err := ctx.Err(); err != nil {
				return st, err
			}
			rec, _, err := b.readRecord(dotmesh.CommitRef{BranchRef: br, ID: id})
			if errors.Is(err, dotmesh.ErrNotFound) {
				continue
			}
			if err != nil {
				return st, err
			}
			st.LogicalBytes += rec.Bytes
		}
	}
	return st, nil
}
