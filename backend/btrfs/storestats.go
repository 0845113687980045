//go:build linux && cgo

package btrfs

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/dotmesh-io/dotmesh/backend/internal/durable"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

var _ dotmesh.StoreStatter = (*Backend)(nil)

// StoreStats implements dotmesh.StoreStatter. Objects counts the commits'
// read-only snapshots and LogicalBytes sums their sizes, the du-like walk
// Usage makes (allocated blocks, hard links once), cached per subvolume
// generation: a snapshot never changes, so each is walked once in the
// node's life. StoredBytes is what the file system holding the backend
// uses after a sync (statfs), with the extents snapshots share counted once;
// exact per subvolume only with qgroups, which slow every commit down. It
// includes btrfs metadata and, when the data directory is on a btrfs
// shared with other data, that data too.
func (b *Backend) StoreStats(ctx context.Context) (dotmesh.StoreStats, error) {
	var st dotmesh.StoreStats
	brs, err := b.listBranchDirs()
	if err != nil {
		return st, err
	}
	for _, br := range brs {
		ids, err := b.Commits(ctx, br)
		if errors.Is(err, dotmesh.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return st, err
		}
		for _, id := range ids {
			if err := ctx.Err(); err != nil {
				return st, err
			}
			snap := b.snapPath(dotmesh.CommitRef{BranchRef: br, ID: id})
			info, err := getSubvolInfo(snap)
			if err != nil {
				continue // removed meanwhile
			}
			e, err := b.treeSize(snap, info)
			if err != nil {
				return st, fmt.Errorf("store stats: size of commit %s of %s: %w", id, br, err)
			}
			st.Objects++
			st.LogicalBytes += e.size
		}
	}
	if err := durable.SyncFS(b.root); err != nil {
		return st, err
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(b.root, &fs); err != nil {
		return st, fmt.Errorf("store stats: statfs %s: %w", b.root, err)
	}
	st.StoredBytes = int64(fs.Blocks-fs.Bfree) * fs.Bsize
	return st, nil
}
