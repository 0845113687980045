package zfs

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

var _ dotmesh.ChangeCommitter = (*Backend)(nil)

// CommitIfChanged implements dotmesh.ChangeCommitter: the snapshot of the
// commit (the one changing command, which zfs-fuse serialises), then
// whether anything changed since head. While the snapshot is taken, head's
// `used` is read beside it when head is the working state's latest
// snapshot (headUsed; a read, which zfs-fuse does not hold behind the
// snapshot): space of its own says changed. Otherwise, or when that
// cannot tell, the incremental stream from head to the new snapshot says
// it, as Dirty does without a snapshot of its own. An unchanged commit is
// destroyed again.
func (b *Backend) CommitIfChanged(ctx context.Context, c dotmesh.CommitRef, head dotmesh.CommitRef) (map[string]string, bool, error) {
	var used chan bool
	if inv, err := b.inventory(ctx, c.Dot); err == nil {
		if cur, hs := inv.live(c.Branch), inv.snaps[string(head.ID)]; cur != nil && hs != nil && hs.isCommit() && cur.last() == hs {
			used = make(chan bool, 1)
			go func() {
				u, err := b.headUsed(ctx, hs.snap())
				if err != nil {
					b.log.DebugContext(ctx, "reading the space of head; comparing streams", "commit", c.String(), "err", err)
				}
				used <- u
			}()
		}
	}
	info, err := b.Commit(ctx, c)
	if used != nil && <-used && err == nil {
		return info, true, nil
	}
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

// headUsed reports whether head's snapshot hs, the working state's latest,
// holds space of its own: blocks only hs holds were freed from the working
// state since, so its tree changed, and any snapshot taken after this
// read holds that change (the space is counted once the change's
// transaction group has synced). No space does not tell: a change still
// in an open transaction group, or one that only adds blocks, frees none
// whose space hs alone holds when hs shares them with the snapshot before
// it. One `zfs get`, which changes nothing.
func (b *Backend) headUsed(ctx context.Context, hs snapshot) (bool, error) {
	rows, err := b.z.get(ctx, false, []string{"used"}, dataset{hs.String()})
	if err != nil {
		return false, err
	}
	v := propValue(rows, hs.String(), "used")
	used, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return false, fmt.Errorf("used of %s: %q", hs, v)
	}
	return used > 0, nil
}

// undoCommit removes commit c after a later step failed with err.
func (b *Backend) undoCommit(ctx context.Context, c dotmesh.CommitRef, err error) error {
	if derr := b.DeleteCommit(context.WithoutCancel(ctx), c); derr != nil {
		b.log.WarnContext(ctx, "removing a commit whose check failed (reconcile retries)", "commit", c.String(), "err", derr)
	}
	return err
}
