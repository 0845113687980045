package zfs

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Commit implements dotmesh.StorageBackend: one `zfs snapshot` of the
// branch's filesystem, which holds every subdot, so all subdots are
// captured atomically. The snapshot is tagged with the branch in the same
// command, and is durable when zfs returns (it waits for the txg sync).
func (b *Backend) Commit(ctx context.Context, c dotmesh.CommitRef) (map[string]string, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if err := b.checkOpen(); err != nil {
		return nil, err
	}
	defer b.lockDot(c.Dot)()
	inv, err := b.inventory(ctx, c.Dot)
	if err != nil {
		return nil, err
	}
	cur := inv.live(c.Branch)
	if cur == nil {
		return nil, fmt.Errorf("%w: branch %s has no working state", dotmesh.ErrNotFound, c.BranchRef)
	}
	if inv.snaps[string(c.ID)] != nil {
		return nil, fmt.Errorf("%w: commit %s exists already", dotmesh.ErrAlreadyExists, c)
	}
	s, err := cur.ds.Snapshot(string(c.ID))
	if err != nil {
		return nil, err
	}
	if err := b.z.snapshot(ctx, s, mustProp(userBranchProp, c.Branch)); err != nil {
		return nil, fmt.Errorf("committing %s: %w", c, err)
	}
	return nil, nil
}

// Commits implements dotmesh.StorageBackend: the snapshots tagged with
// the branch, wherever promote has moved them, except deleted ones that
// ZFS keeps only until their clones go. ErrNotFound when the branch has
// no working state.
func (b *Backend) Commits(ctx context.Context, ref dotmesh.BranchRef) ([]dotmesh.CommitID, error) {
	if err := ref.Validate(); err != nil {
		return nil, err
	}
	if err := b.checkOpen(); err != nil {
		return nil, err
	}
	defer b.lockDot(ref.Dot)()
	inv, err := b.inventory(ctx, ref.Dot)
	if err != nil {
		return nil, err
	}
	if inv.live(ref.Branch) == nil {
		return nil, fmt.Errorf("%w: branch %s has no working state", dotmesh.ErrNotFound, ref)
	}
	out := []dotmesh.CommitID{}
	for _, s := range inv.commitsOf(ref.Branch) {
		out = append(out, dotmesh.CommitID(s.name))
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// DeleteCommit implements dotmesh.StorageBackend with `zfs destroy -d`:
// immediate unless a branch was cloned from the snapshot, in which case
// ZFS destroys it when the last such clone goes (and Commits stops listing
// it at once). Missing is not an error.
func (b *Backend) DeleteCommit(ctx context.Context, c dotmesh.CommitRef) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if err := b.checkOpen(); err != nil {
		return err
	}
	defer b.lockDot(c.Dot)()
	inv, err := b.inventory(ctx, c.Dot)
	if err != nil {
		return err
	}
	s := inv.commit(c.ID)
	if s == nil {
		return nil
	}
	if err := b.z.destroySnapshot(ctx, s.snap(), true); err != nil && !errors.Is(err, ErrNoDataset) {
		return fmt.Errorf("deleting commit %s: %w", c, err)
	}
	return b.prune(ctx, c.Dot)
}

// Rollback implements dotmesh.StorageBackend without destroying any
// snapshot:
//
//   - when c is the latest snapshot of the live filesystem, a plain
//     `zfs rollback` (atomic);
//   - otherwise c is cloned to the next generation, which replaces the
//     live filesystem (see swap); the old one is kept as an unmounted
//     holder while it has snapshots, so later commits and every branch
//     cloned from them stay intact. When c is of this branch's own lineage
//     the new filesystem is promoted (see promoteLineage), and the holder
//     keeps only the later snapshots; it disappears once the Node deletes
//     those.
func (b *Backend) Rollback(ctx context.Context, ref dotmesh.BranchRef, c dotmesh.CommitRef) error {
	if err := ref.Validate(); err != nil {
		return err
	}
	if err := c.Validate(); err != nil {
		return err
	}
	if err := b.checkOpen(); err != nil {
		return err
	}
	defer b.lockDot(ref.Dot)()
	inv, err := b.inventory(ctx, ref.Dot)
	if err != nil {
		return err
	}
	cur := inv.live(ref.Branch)
	if cur == nil {
		return fmt.Errorf("%w: branch %s has no working state", dotmesh.ErrNotFound, ref)
	}
	s := inv.commit(c.ID)
	if s == nil || c.Dot != ref.Dot {
		return fmt.Errorf("%w: commit %s has no data in dot %s on this node", dotmesh.ErrNotFound, c, ref.Dot)
	}
	if s.fs == cur && cur.last() == s {
		if err := busyRetry(ctx, func() error { return b.z.rollback(ctx, s.snap()) }); err != nil {
			return fmt.Errorf("rolling %s back to %s: %w", ref, c.ID, err)
		}
		return nil
	}
	next := b.genDataset(ref, inv.nextGen(ref.Branch))
	err = b.z.clone(ctx, s.snap(), next, mustProp(stateProp, stateStaged), mustProp("mountpoint", "none"))
	if err != nil {
		return fmt.Errorf("rolling %s back to %s: %w", ref, c.ID, err)
	}
	err = b.swap(ctx, ref, cur, func() (dataset, error) {
		return next, b.setState(ctx, next, stateLive)
	})
	if err != nil {
		if derr := b.dissolve(ctx, next); derr != nil {
			b.log.Warn("removing a staged rollback (Open retries)", "dataset", next, "err", derr)
		}
		return fmt.Errorf("rolling %s back to %s: %w", ref, c.ID, err)
	}
	b.promoteLineage(ctx, ref)
	return b.prune(ctx, ref.Dot)
}
