package dump

import (
	"context"
	"errors"

	"github.com/dotmesh-io/dotmesh/backend/dump/cas"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// StoreStats implements dotmesh.StoreStatter: the objects and their
// stored bytes from the store's in-memory index, and the file bytes of
// every commit from the commit records (one small file each). A commit
// removed meanwhile is skipped; nothing is written.
func (b *Backend) StoreStats(ctx context.Context) (dotmesh.StoreStats, error) {
	var st dotmesh.StoreStats
	defer b.useStore()()
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
