package zfs

import (
	"context"
	"fmt"
	"io"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

var _ dotmesh.ChangeCommitter = (*Backend)(nil)

// CommitIfChanged implements dotmesh.ChangeCommitter: the snapshot of the
// commit, then the incremental stream from head to it, which says whether
// anything changed (as Dirty does, without a snapshot of its own). An
// unchanged commit is destroyed again.
func (b *Backend) CommitIfChanged(ctx context.Context, c dotmesh.CommitRef, head dotmesh.CommitRef) (map[string]string, bool, error) {
	info, err := b.Commit(ctx, c)
	if err != nil {
		return nil, false, err
	}
	inv, err := b.inventory(ctx, c.Dot)
	if err != nil {
		return nil, false, b.undoCommit(ctx, c, err)
	}
	cs, hs := inv.snaps[string(c.ID)], inv.snaps[string(head.ID)]
	if cs == nil || hs == nil || !hs.isCommit() || !(hs.fs == cs.fs || cs.fs.origin == hs) {
		// Not an increment of head: changed, as Dirty says then.
		return info, true, nil
	}
	from := hs.snap()
	var dirty bool
	err = b.z.send(ctx, &from, cs.snap(), func(r io.Reader) error {
		var ierr error
		dirty, _, ierr = inspectIncremental(r)
		return ierr
	})
	if err != nil {
		return nil, false, b.undoCommit(ctx, c, fmt.Errorf("comparing commit %s with %s: %w", c.ID, head.ID, err))
	}
	if !dirty {
		if err := b.DeleteCommit(context.WithoutCancel(ctx), c); err != nil {
			return nil, false, fmt.Errorf("removing the unchanged commit %s: %w", c, err)
		}
		return nil, false, nil
	}
	return info, true, nil
}

// undoCommit removes commit c after a later step failed with err.
func (b *Backend) undoCommit(ctx context.Context, c dotmesh.CommitRef, err error) error {
	if derr := b.DeleteCommit(context.WithoutCancel(ctx), c); derr != nil {
		b.log.WarnContext(ctx, "removing a commit whose check failed (reconcile retries)", "commit", c.String(), "err", derr)
	}
	return err
}
