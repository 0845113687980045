package zfs

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

var _ dotmesh.ChangeCommitter = (*Backend)(nil)

// CommitIfChanged implements dotmesh.ChangeCommitter. When the change
// watcher saw a write into the mounted working state since head's
// snapshot (watch.go), the commit is its snapshot alone. Otherwise: the
// snapshot of the commit, then the incremental stream from head to it,
// which says whether anything changed (as Dirty does, without a snapshot
// of its own); an unchanged commit is destroyed again.
func (b *Backend) CommitIfChanged(ctx context.Context, c dotmesh.CommitRef, head dotmesh.CommitRef) (info map[string]string, changed bool, err error) {
	var w watching
	if d, ok := b.settledAt(c.BranchRef); ok {
		// The dataset settled at the branch's path: a proven commit
		// needs no listing.
		w = b.watchBefore(ctx, c.BranchRef, d, head.ID)
		if w.proven {
			info, err := b.snapshotCommit(ctx, c, d)
			if err == nil {
				b.watchAfter(c.BranchRef, w, c.ID)
				return info, true, nil
			}
			b.watchAfter(c.BranchRef, w, "")
			if !errors.Is(err, ErrNoDataset) {
				return nil, false, err
			}
			w = watching{} // replaced behind the watcher: list, as below
		}
	}
	inv, cur, err := b.commitTarget(ctx, c)
	if err == nil && w.on && w.ds != cur.ds {
		b.watchAfter(c.BranchRef, w, "")
		w = watching{}
	}
	if err != nil {
		b.watchAfter(c.BranchRef, w, "")
		return nil, false, err
	}
	if !w.on && b.mountedAtPath(c.BranchRef, cur) {
		w = b.watchBefore(ctx, c.BranchRef, cur.ds, head.ID)
	}
	// Settled at what the working state held at the snapshot.
	defer func() {
		var point dotmesh.CommitID
		switch {
		case err == nil && changed:
			point = c.ID
		case err == nil:
			point = head.ID
		}
		b.watchAfter(c.BranchRef, w, point)
	}()
	info, err = b.snapshotCommit(ctx, c, cur.ds)
	if err != nil || w.proven {
		return info, err == nil, err
	}
	inv, err = b.inventory(ctx, c.Dot)
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
