package zfs

import (
	"context"
	"fmt"
	"strconv"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

var (
	_ dotmesh.CapacityReporter = (*Backend)(nil)
	_ dotmesh.VolumeSizer      = (*Backend)(nil)
)

// Capacity implements dotmesh.CapacityReporter: the root dataset's
// available bytes (the pool's free space, less what reservations and
// quotas above the root keep from it), and its used plus available bytes
// as the total.
func (b *Backend) Capacity(ctx context.Context) (dotmesh.Capacity, error) {
	avail, err := b.z.getInt(ctx, b.root.name, "available")
	if err != nil {
		return dotmesh.Capacity{}, fmt.Errorf("reading the free space of %s: %w", b.root, err)
	}
	used, err := b.z.getInt(ctx, b.root.name, "used")
	if err != nil {
		return dotmesh.Capacity{}, fmt.Errorf("reading the used space of %s: %w", b.root, err)
	}
	return dotmesh.Capacity{AvailableBytes: avail, TotalBytes: used + avail}, nil
}

// SetSize implements dotmesh.VolumeSizer with the refquota of the
// branch's working state: it bounds the data the working state refers
// to, not its snapshots (commits). A rollback that switches to a clone
// gives the clone the same refquota (switchToClone). The guard holds the
// dot's lock, so no switch runs meanwhile.
func (b *Backend) SetSize(ctx context.Context, ref dotmesh.BranchRef, bytes int64) error {
	cur, err := b.liveFS(ctx, ref)
	if err != nil {
		return err
	}
	v := "none"
	if bytes > 0 {
		v = strconv.FormatInt(bytes, 10)
	}
	if err := b.z.set(ctx, cur.ds.name, mustProp("refquota", v)); err != nil {
		return fmt.Errorf("bounding the size of %s: %w", ref, err)
	}
	return nil
}

// Size implements dotmesh.VolumeSizer: the working state's refquota.
func (b *Backend) Size(ctx context.Context, ref dotmesh.BranchRef) (int64, error) {
	cur, err := b.liveFS(ctx, ref)
	if err != nil {
		return 0, err
	}
	return cur.refquota, nil
}

func (b *Backend) liveFS(ctx context.Context, ref dotmesh.BranchRef) (*fsInfo, error) {
	inv, err := b.inventory(ctx, ref.Dot)
	if err != nil {
		return nil, err
	}
	cur := inv.live(ref.Branch)
	if cur == nil {
		return nil, fmt.Errorf("%w: branch %s has no working state", dotmesh.ErrNotFound, ref)
	}
	return cur, nil
}
