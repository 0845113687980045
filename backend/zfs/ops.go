package zfs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// busyRetry retries op while ZFS answers "busy". zfs-fuse reports a
// dataset busy for a moment after an unmount (and the first destroy of a
// mounted dataset fails that way), so a short retry is part of the
// protocol; a mount that a process really uses stays busy and fails.
func busyRetry(ctx context.Context, op func() error) error {
	delay := 20 * time.Millisecond
	deadline := time.Now().Add(3 * time.Second)
	for {
		err := op()
		if !errors.Is(err, ErrBusy) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
		delay = min(delay*2, 500*time.Millisecond)
	}
}

func (b *Backend) umount(ctx context.Context, d dataset) error {
	b.forgetWatch(d) // a queued event of the watcher holds a file open
	err := busyRetry(ctx, func() error { return b.z.umount(ctx, d) })
	if errors.Is(err, ErrNoDataset) {
		return nil
	}
	return err
}

// destroyEmpty destroys a filesystem without snapshots: nothing can depend
// on it, so this never takes another branch's data along.
func (b *Backend) destroyEmpty(ctx context.Context, d dataset) error {
	if err := b.umount(ctx, d); err != nil {
		return err
	}
	err := busyRetry(ctx, func() error { return b.z.destroyFS(ctx, d) })
	if errors.Is(err, ErrNoDataset) {
		return nil
	}
	return err
}

// renameFresh renames a filesystem that has no clones (zfs-fuse refuses to
// rename one while a clone is mounted), unmounting it first as zfs-fuse
// requires.
func (b *Backend) renameFresh(ctx context.Context, from, to dataset) error {
	if err := b.umount(ctx, from); err != nil {
		return err
	}
	return busyRetry(ctx, func() error { return b.z.rename(ctx, from, to) })
}

func (b *Backend) setState(ctx context.Context, d dataset, state string) error {
	return b.z.set(ctx, d.name, mustProp(stateProp, state))
}

// activateFS mounts ref's live filesystem f at the branch's path, first
// removing the mark that says it was never mounted (a crash between the
// two leaves it unmarked and unmounted: mounted again by Open, or on
// first use while its mountpoint is still none).
func (b *Backend) activateFS(ctx context.Context, ref dotmesh.BranchRef, f *fsInfo) error {
	if f.pristine != "" {
		if err := b.z.inherit(ctx, f.ds.name, pristineProp); err != nil {
			return err
		}
	}
	return b.activate(ctx, ref, f.ds)
}

// activate mounts ref's live filesystem d at the branch's path. d must
// not carry pristineProp (use activateFS).
func (b *Backend) activate(ctx context.Context, ref dotmesh.BranchRef, d dataset) error {
	mp, err := newProp("mountpoint", b.livePath(ref))
	if err != nil {
		return err
	}
	if err := b.z.set(ctx, d.name, mp); err != nil {
		return err
	}
	return busyRetry(ctx, func() error { return b.z.mount(ctx, d) })
}

// retire takes an unmounted, no longer live filesystem out of service:
// destroyed when it has no snapshots, else kept as an unmounted holder
// (state old) that exists only for its snapshots.
func (b *Backend) retire(ctx context.Context, f *fsInfo) error {
	if len(f.snaps) == 0 {
		return b.destroyEmpty(ctx, f.ds)
	}
	return b.retireHolder(ctx, f)
}

// retireUnmounted is retire of a filesystem the caller has just unmounted
// (or found unmounted), without asking zfs to unmount it again.
func (b *Backend) retireUnmounted(ctx context.Context, f *fsInfo) error {
	if len(f.snaps) == 0 {
		err := busyRetry(ctx, func() error { return b.z.destroyFS(ctx, f.ds) })
		if errors.Is(err, ErrNoDataset) {
			return nil
		}
		return err
	}
	return b.retireHolder(ctx, f)
}

func (b *Backend) retireHolder(ctx context.Context, f *fsInfo) error {
	if err := b.z.set(ctx, f.ds.name, mustProp("mountpoint", "none")); err != nil {
		return err
	}
	if err := b.setState(ctx, f.ds, stateOld); err != nil {
		return err
	}
	b.dropWorkingData(ctx, f)
	return nil
}

// dropWorkingData rolls a holder back to its latest snapshot, freeing the
// discarded uncommitted data it still carried. Best effort.
func (b *Backend) dropWorkingData(ctx context.Context, f *fsInfo) {
	if last := f.last(); last != nil {
		if err := b.z.rollback(ctx, last.snap()); err != nil {
			b.log.DebugContext(ctx, "dropping the discarded data of a holder", "holder", f.ds, "err", err)
		}
	}
}

// swap replaces ref's working state cur (nil when there is none) with a
// prepared filesystem. Steps, each one atomic ZFS command, and what a
// crash after each leaves for Open (see recover):
//
//  1. unmount cur - refused while in use: nothing changed, the caller
//     dissolves what it prepared.
//  2. switch(): the prepared filesystem becomes live (a state change or a
//     rename). Before it, Open dissolves the prepared one (the old state
//     stays); after it, two are live and the newer generation wins: Open
//     retires cur.
//  3. retire cur (holder or destroyed).
//
// The new working state is mounted at the branch's path when cur was
// mounted; otherwise it stays unmounted (mountpoint none) until first use
// (SubdotPath, Usage): a branch that only receives, like the hidden one
// transfers receive into, is never mounted.
func (b *Backend) swap(ctx context.Context, ref dotmesh.BranchRef, cur *fsInfo, switchTo func() (dataset, error)) error {
	mounted := false
	if cur != nil {
		p := b.livePath(ref)
		mounted = cur.mounted || (cur.mountpoint == p && isMountpoint(p))
	}
	if mounted {
		if err := b.umount(ctx, cur.ds); err != nil {
			if errors.Is(err, ErrBusy) {
				return fmt.Errorf("%w: the working state of %s is in use (mounted by a running process?); stop its users first: %v", dotmesh.ErrInUse, ref, err)
			}
			return err
		}
	}
	next, err := switchTo()
	if err != nil {
		if mounted {
			_ = b.z.mount(context.WithoutCancel(ctx), cur.ds)
		}
		return err
	}
	ctx = context.WithoutCancel(ctx) // the switch is made: finish it
	if cur != nil {
		if err := b.retireUnmounted(ctx, cur); err != nil {
			b.log.WarnContext(ctx, "retiring a replaced working state (Open finishes it)", "dataset", cur.ds, "err", err)
		}
	}
	if mounted {
		if err := b.activate(ctx, ref, next); err != nil {
			// SubdotPath and Open mount lazily.
			b.log.WarnContext(ctx, "mounting a new working state", "branch", ref.String(), "err", err)
		}
	}
	return nil
}

// tagBeforeMove tags f's untagged commit snapshots with f's owner, as
// `zfs promote` is about to move them to another filesystem. An untagged
// commit snapshot (Receive leaves them so, and a crash can) counts as its
// filesystem owner's (snapInfo.branch), so every promote tags first: a
// snapshot never changes hands by moving.
func (b *Backend) tagBeforeMove(ctx context.Context, f *fsInfo) error {
	for _, s := range f.snaps {
		if s.isCommit() && s.tag == "" {
			if err := b.z.set(ctx, s.snap().String(), mustProp(userBranchProp, f.branch)); err != nil {
				return fmt.Errorf("tagging %s: %w", s.snap(), err)
			}
			s.tag = f.branch
		}
	}
	return nil
}

// promoteLineage promotes the live filesystem while its origin is on a
// holder of the same branch. That moves the branch's own history - the
// origin and the snapshots before it - onto the live filesystem, so that
// a later rollback to the latest commit is a plain zfs rollback, any older
// commit is an incremental send source, and holders keep only the
// snapshots after the point the branch went back to (which the Node then
// deletes, emptying them). Snapshots of other branches are never pulled
// in. Best effort: failing leaves the history in the holder, which is
// correct, only less tidy.
func (b *Backend) promoteLineage(ctx context.Context, ref dotmesh.BranchRef) {
	for range 100 {
		inv, err := b.inventory(ctx, ref.Dot)
		if err != nil {
			return
		}
		cur := inv.live(ref.Branch)
		if cur == nil || cur.origin == nil || cur.origin.fs.branch != ref.Branch || cur.origin.fs.state != stateOld {
			return
		}
		err = b.tagBeforeMove(ctx, cur.origin.fs)
		if err == nil {
			err = b.z.promote(ctx, cur.ds)
		}
		if err != nil {
			b.log.WarnContext(ctx, "promoting a working state", "dataset", cur.ds, "err", err)
			return
		}
	}
}

// prune destroys holders that keep no snapshot any more (ZFS destroys
// deferred snapshots by itself once their last clone is gone, which can
// empty a holder) and the dot's container when nothing is left in it.
func (b *Backend) prune(ctx context.Context, dot dotmesh.DotID) error {
	for range 100 {
		inv, err := b.inventory(ctx, dot)
		if err != nil {
			return err
		}
		changed := false
		for _, f := range inv.fss {
			if f.state == stateOld && len(f.snaps) == 0 {
				if err := b.destroyEmpty(ctx, f.ds); err != nil {
					return fmt.Errorf("removing empty holder %s: %w", f.ds, err)
				}
				changed = true
			}
		}
		if !changed {
			if inv.exists && len(inv.fss) == 0 {
				err := b.z.destroyFS(ctx, b.container(dot))
				if err != nil && !errors.Is(err, ErrNoDataset) && !errors.Is(err, ErrDependents) {
					return fmt.Errorf("removing the empty container of dot %s: %w", dot, err)
				}
				if err == nil {
					return b.dropRecordsFS(ctx, b.recordsFS(dot))
				}
			}
			return nil
		}
	}
	return nil
}

// dropRecordsFS removes the records filesystem of a dot without storage
// (after its container, so that a crash in between leaves one that Open
// removes, not a dot without records).
func (b *Backend) dropRecordsFS(ctx context.Context, fs dataset) error {
	if err := b.z.destroyFS(ctx, fs); err != nil && !errors.Is(err, ErrNoDataset) {
		return fmt.Errorf("removing the records of a removed dot (%s): %w", fs, err)
	}
	return nil
}

// dissolve removes a prepared (staged or receiving) filesystem without
// touching any commit: snapshots that zfs promote moved into it are
// handed back by promoting a clone of its newest snapshot that has clones;
// snapshots after that one came from the abandoned receive and are
// destroyed.
func (b *Backend) dissolve(ctx context.Context, st dataset) error {
	ctx = context.WithoutCancel(ctx)
	for range 100 {
		inv, err := b.inventory(ctx, dotOf(b, st))
		if err != nil {
			return err
		}
		f := inv.fs(st)
		if f == nil {
			return nil
		}
		cut := -1
		for i, s := range f.snaps {
			if len(s.clones) > 0 {
				cut = i
			}
		}
		for _, s := range f.snaps[cut+1:] {
			if err := b.z.destroySnapshot(ctx, s.snap(), false); err != nil && !errors.Is(err, ErrNoDataset) {
				return fmt.Errorf("removing %s: %w", s.snap(), err)
			}
		}
		if cut < 0 {
			return b.destroyEmpty(ctx, st)
		}
		if err := b.tagBeforeMove(ctx, f); err != nil {
			return fmt.Errorf("handing the snapshots of %s back: %w", st, err)
		}
		if err := b.z.promote(ctx, f.snaps[cut].clones[0].ds); err != nil {
			return fmt.Errorf("handing the snapshots of %s back: %w", st, err)
		}
	}
	return fmt.Errorf("%w: could not dissolve %s", dotmesh.ErrConflict, st)
}

func dotOf(b *Backend, d dataset) dotmesh.DotID {
	rest := d.name[len(b.root.name)+1:]
	for i := 0; i < len(rest); i++ {
		if rest[i] == '/' {
			return dotmesh.DotID(rest[:i])
		}
	}
	return dotmesh.DotID(rest)
}

// ensureContainer creates the dot's container dataset.
func (b *Backend) ensureContainer(ctx context.Context, dot dotmesh.DotID) error {
	err := b.z.create(ctx, b.container(dot), mustProp("canmount", "off"))
	if err != nil && !errors.Is(err, ErrExists) {
		return fmt.Errorf("creating the container of dot %s: %w", dot, err)
	}
	return nil
}
