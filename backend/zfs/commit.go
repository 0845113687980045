package zfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Commit implements dotmesh.StorageBackend: one `zfs snapshot` of the
// branch's filesystem, which holds every subdot, so all subdots are
// captured atomically. The snapshot is tagged with the branch in the same
// command, and is durable when zfs returns (it waits for the txg sync).
func (b *Backend) Commit(ctx context.Context, c dotmesh.CommitRef) (map[string]string, error) {
	_, cur, err := b.commitTarget(ctx, c)
	if err != nil {
		return nil, err
	}
	var w watching
	if b.mountedAtPath(c.BranchRef, cur) {
		w = b.watchBefore(ctx, c.BranchRef, cur.ds, "")
	}
	info, err := b.snapshotCommit(ctx, c, cur.ds)
	point := c.ID
	if err != nil {
		point = ""
	}
	b.watchAfter(c.BranchRef, w, point)
	return info, err
}

// mountedAtPath says whether the listing shows cur mounted at ref's path.
func (b *Backend) mountedAtPath(ref dotmesh.BranchRef, cur *fsInfo) bool {
	return cur.mounted && cur.mountpoint == b.livePath(ref)
}

// commitTarget reads the dot's listing and the working state commit c is
// made of, refusing a commit id in use.
func (b *Backend) commitTarget(ctx context.Context, c dotmesh.CommitRef) (*dotInv, *fsInfo, error) {
	inv, err := b.inventory(ctx, c.Dot)
	if err != nil {
		return nil, nil, err
	}
	cur := inv.live(c.Branch)
	if cur == nil {
		return nil, nil, fmt.Errorf("%w: branch %s has no working state", dotmesh.ErrNotFound, c.BranchRef)
	}
	if inv.snaps[string(c.ID)] != nil {
		return nil, nil, fmt.Errorf("%w: commit %s exists already", dotmesh.ErrAlreadyExists, c)
	}
	return inv, cur, nil
}

// snapshotCommit takes commit c's snapshot of the working state d.
func (b *Backend) snapshotCommit(ctx context.Context, c dotmesh.CommitRef, d dataset) (map[string]string, error) {
	s, err := d.Snapshot(string(c.ID))
	if err != nil {
		return nil, err
	}
	seq := invSeq()
	if err := b.z.snapshot(ctx, s, mustProp(userBranchProp, c.Branch)); err != nil {
		return nil, fmt.Errorf("committing %s: %w", c, err)
	}
	// A push usually follows: its send finds the snapshot without a listing.
	b.patchInventory(c.Dot, seq, 1, func(rows []propRow) []propRow {
		return append(rows, snapshotRows(s, c.Branch)...)
	})
	return map[string]string{dotmesh.InfoConsistency: dotmesh.ConsistencyCrash}, nil
}

// Commits implements dotmesh.StorageBackend: the snapshots tagged with
// the branch, wherever promote has moved them, except deleted ones that
// ZFS keeps only until their clones go. ErrNotFound when the branch has
// no working state.
func (b *Backend) Commits(ctx context.Context, ref dotmesh.BranchRef) ([]dotmesh.CommitID, error) {
	defer b.lockDot(ref.Dot)() // the guard does not lock listings; a promote moves snapshots
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
	return b.withSwitchLock(ctx, ref, c, func(inv *dotInv, unlock *func()) error {
		cur := inv.live(ref.Branch)
		if cur == nil {
			return fmt.Errorf("%w: branch %s has no working state", dotmesh.ErrNotFound, ref)
		}
		s := inv.commit(c.ID)
		if s == nil || c.Dot != ref.Dot {
			return fmt.Errorf("%w: commit %s has no data in dot %s on this node", dotmesh.ErrNotFound, c, ref.Dot)
		}
		if s.fs == cur && cur.last() == s {
			if cur.pristineAt(c.ID) {
				return nil // holds c's data already
			}
			if cur.pristine != "" { // its data is about to change (see pristineAt)
				if err := b.z.inherit(ctx, cur.ds.name, pristineProp); err != nil {
					return fmt.Errorf("rolling %s back to %s: %w", ref, c.ID, err)
				}
			}
			b.forgetWatch(cur.ds) // writes seen so far are undone
			if err := busyRetry(ctx, func() error { return b.z.rollback(ctx, s.snap()) }); err != nil {
				return fmt.Errorf("rolling %s back to %s: %w", ref, c.ID, err)
			}
			return nil
		}
		next := b.genDataset(ref, inv.nextGen(ref.Branch))
		if err := b.switchToClone(ctx, ref, inv, cur, s, next, unlock); err != nil {
			return fmt.Errorf("rolling %s back to %s: %w", ref, c.ID, err)
		}
		return nil
	})
}

// withSwitchLock locks the dot (the guard leaves Rollback and FollowHead
// to it) and reads its listing for fn, which may hand the lock over (see
// switchToClone).
func (b *Backend) withSwitchLock(ctx context.Context, ref dotmesh.BranchRef, c dotmesh.CommitRef, fn func(inv *dotInv, unlock *func()) error) error {
	unlock := b.lockDot(ref.Dot)
	defer func() {
		if unlock != nil {
			unlock()
		}
	}()
	inv, err := b.inventory(ctx, ref.Dot)
	if err != nil {
		return err
	}
	return fn(inv, &unlock)
}

var _ dotmesh.HeadFollower = (*Backend)(nil)

// FollowHead implements dotmesh.HeadFollower. A working state made from a
// commit unmounted and never mounted since (marked pristine) holds
// nothing uncommitted; when that commit is not head - a crash came
// between a switch and the Node recording the new head, one way or the
// other - it is switched to head, like a rollback.
func (b *Backend) FollowHead(ctx context.Context, ref dotmesh.BranchRef, head dotmesh.CommitRef) error {
	return b.withSwitchLock(ctx, ref, head, func(inv *dotInv, unlock *func()) error {
		cur := inv.live(ref.Branch)
		if cur == nil || !cur.unseen() || cur.pristine == string(head.ID) {
			return nil
		}
		s := inv.commit(head.ID)
		if s == nil || head.Dot != ref.Dot {
			return nil // not here (yet)
		}
		b.log.WarnContext(ctx, "moving an untouched working state to its branch's head", "branch", ref.String(), "from", cur.pristine, "head", head.ID)
		if s.fs == cur && cur.last() == s {
			if err := b.z.inherit(ctx, cur.ds.name, pristineProp); err != nil {
				return err
			}
			b.forgetWatch(cur.ds)
			return busyRetry(ctx, func() error { return b.z.rollback(ctx, s.snap()) })
		}
		return b.switchToClone(ctx, ref, inv, cur, s, b.genDataset(ref, inv.nextGen(ref.Branch)), unlock)
	})
}

// switchToClone makes a clone of s, as filesystem next, ref's working
// state in place of cur. Steps, each one atomic ZFS command, and what a
// crash after each leaves for Open (see recover):
//
//  1. unmount cur, when mounted - refused while in use: nothing changed.
//     After it cur is still the live one, at the branch's path but
//     unmounted: Open mounts it again (the old state), so that a
//     restore the Node rolls forward sees it mounted and mounts next.
//  2. clone s as next, live - the switch. After it two are live and the
//     newer generation wins: Open retires cur. The new state is complete.
//     When cur was mounted, next is mounted at the branch's path by the
//     clone itself; otherwise it is left unmounted (mountpoint none) and
//     marked pristine at s.
//  3. retire cur (destroyed, or a holder while it has snapshots).
//
// When cur is unmounted and has no snapshots, nobody can see the switch
// but the next operation on the dot: with a journal (pending.go), steps 2
// and 3 run after switchToClone returns, else step 3 alone does; either
// way still holding the dot's lock, which *unlock hands over (set to nil),
// so the next operation on the dot starts after them as before.
//
// A working state nobody had mounted stays so: it is mounted on first use
// (SubdotPath, Usage), and until then needs no dirty check
// (fsInfo.pristineAt); a branch that only receives is never mounted. inv is the dot's
// listing taken under the lock; what it shows decides whether the
// lineage promotion and the pruning of holders have anything to do.
func (b *Backend) switchToClone(ctx context.Context, ref dotmesh.BranchRef, inv *dotInv, cur *fsInfo, s *snapInfo, next dataset, unlock *func()) error {
	p := b.livePath(ref)
	mounted := cur.mounted || (cur.mountpoint == p && isMountpoint(p))
	// Destroying cur makes ZFS destroy its origin when that was deleted
	// (deferred), which can empty a holder; promote moves snapshots out
	// of holders. Otherwise no holder can have become empty.
	prune := cur.origin != nil && cur.origin.deferred
	for _, f := range inv.fss {
		if f.state == stateOld && len(f.snaps) == 0 {
			prune = true
		}
	}
	// promoteLineage acts when next's origin is on a holder of ref's
	// branch; cur is one after the switch if it keeps snapshots.
	promote := s.fs.branch == ref.Branch && (s.fs.state == stateOld || s.fs == cur)
	// A size bound travels to the new working state as a property of its
	// clone, which only the immediate path below sets.
	simple := !mounted && len(cur.snaps) == 0 && !prune && !promote && cur.refquota == 0 && unlock != nil && *unlock != nil
	if simple && b.pendingDir() != "" {
		// Nothing is mounted, so nobody but the next operation on the
		// dot can see the switch: record it and let it run after return,
		// under the lock (see pending.go). A working state still marked
		// pristine needs no record: FollowHead, which the Node calls for
		// every branch when it starts, moves it to the head the Node
		// recorded, this switch's target or the commit it had.
		ps := pendingSwitch{snap: s.snap(), next: next}
		recorded := !cur.unseen()
		var err error
		if recorded {
			err = b.recordSwitch(ref, ps)
		}
		if err != nil {
			b.log.WarnContext(ctx, "recording a switch of working state; switching now", "branch", ref.String(), "err", err)
		} else {
			b.finishInBackground(ref, unlock, func(ctx context.Context) {
				seq := invSeq()
				if err := b.doSwitch(ctx, ps); err != nil {
					b.log.ErrorContext(ctx, "switching a working state (the next operation on the dot retries)", "branch", ref.String(), "commit", s.name, "err", err)
					b.pendingMu.Lock()
					if b.failed == nil {
						b.failed = map[dotmesh.DotID]map[dotmesh.BranchRef]pendingSwitch{}
					}
					if b.failed[ref.Dot] == nil {
						b.failed[ref.Dot] = map[dotmesh.BranchRef]pendingSwitch{}
					}
					b.failed[ref.Dot][ref] = ps
					b.pendingMu.Unlock()
					return
				}
				b.finishSwitch(ctx, ref, cur, s, next, "", seq, 0)
				if !recorded {
					return
				}
				if err := os.Remove(b.pendingFile(ref)); err != nil {
					b.log.WarnContext(ctx, "removing the record of a switch (Open does)", "branch", ref.String(), "err", err)
				}
			})
			return nil
		}
	}
	seq := invSeq()
	if mounted {
		if err := b.umount(ctx, cur.ds); err != nil {
			if errors.Is(err, ErrBusy) {
				return fmt.Errorf("%w: the working state of %s is in use (mounted by a running process?); stop its users first: %v", dotmesh.ErrInUse, ref, err)
			}
			return err
		}
	}
	props := []prop{mustProp(stateProp, stateLive), mustProp("mountpoint", "none"), mustProp(pristineProp, s.name)}
	if mounted {
		// In use at its path (by a shell, or by whoever asked for the path
		// earlier): the new one is mounted there at once.
		mp, err := newProp("mountpoint", p)
		if err != nil {
			return err
		}
		props = []prop{mustProp(stateProp, stateLive), mp}
	}
	if cur.refquota > 0 {
		props = append(props, mustProp("refquota", strconv.FormatInt(cur.refquota, 10)))
	}
	err := b.z.clone(ctx, s.snap(), next, props...)
	if err != nil {
		if mounted {
			_ = b.z.mount(context.WithoutCancel(ctx), cur.ds)
		}
		return err
	}
	// The switch is made (the clone is live, and mounted at the branch's
	// path when cur was). When nothing but cur's retirement is left, it
	// runs after return, still under the dot's lock: a working state that
	// a transfer's Finish rolls forward on a node that shows the dot
	// (mounted at its stable path) does not wait for the old one's
	// destroy and a listing. A crash before it leaves two live
	// generations, and Open retires the older.
	if simple || (mounted && len(cur.snaps) == 0 && !prune && !promote && unlock != nil && *unlock != nil) {
		var mp string
		if mounted {
			mp = p
		}
		umounted := uint64(0)
		if mounted {
			umounted = 1
		}
		b.finishInBackground(ref, unlock, func(ctx context.Context) {
			b.finishSwitch(ctx, ref, cur, s, next, mp, seq, umounted)
		})
		return nil
	}
	ctx = context.WithoutCancel(ctx) // the switch is made: finish it
	if err := b.retireUnmounted(ctx, cur); err != nil {
		b.log.WarnContext(ctx, "retiring a replaced working state (Open finishes it)", "dataset", cur.ds, "err", err)
	}
	if promote {
		b.promoteLineage(ctx, ref)
	}
	return b.prune(ctx, ref.Dot)
}

// finishInBackground runs f after the caller returns, holding the dot's
// lock, which *unlock hands over (and is set to nil).
//
// Before f, still holding the lock, it waits for a quiet moment
// (switchQuiet without a foreground command in this process; zfs-fuse
// only) or for somebody to want the dot, whichever comes first; Close
// cuts the wait short. f's commands, a clone and a destroy of 50-150 ms each on
// zfs-fuse, are txg syncs: started at once, they ran beside the rest of
// the operation's answer (a transfer's Finish writing the registry, the
// answer passing through both nodes to the client), which waited for the
// disk and the daemon behind them. They run behind (not counted as
// foreground), so that the kept records' quiet second is not put off.
func (b *Backend) finishInBackground(ref dotmesh.BranchRef, unlock *func(), f func(context.Context)) {
	release := *unlock
	*unlock = nil
	b.bg.Add(1)
	wanted := b.locks.Wanted(dotmesh.BranchRef{Dot: ref.Dot})
	go func() {
		defer b.bg.Done()
		defer release()
		b.z.lock.waitQuiet(b.closing, switchQuiet, time.Now().Add(quietMax), nil, wanted)
		f(behind(context.Background()))
	}()
}

// finishSwitch retires cur, a working state without snapshots, after the
// switch to next (a clone of s made when the change counter was seq, after
// extra commands that unmounted cur), and keeps the dot's listing current
// for the next dirty check. mountpoint is where next is mounted; empty
// when it is not (then it is marked pristine at s).
func (b *Backend) finishSwitch(ctx context.Context, ref dotmesh.BranchRef, cur *fsInfo, s *snapInfo, next dataset, mountpoint string, seq, extra uint64) {
	if err := b.retireUnmounted(ctx, cur); err != nil {
		b.log.WarnContext(ctx, "retiring a replaced working state (Open finishes it)", "dataset", cur.ds, "err", err)
		return
	}
	mounted, pristine := "yes", "-"
	if mountpoint == "" {
		mounted, mountpoint, pristine = "no", "none", s.name
	}
	refquota := "0"
	if cur.refquota > 0 {
		refquota = strconv.FormatInt(cur.refquota, 10)
	}
	b.patchInventory(ref.Dot, seq, 2+extra, func(rows []propRow) []propRow {
		return cloneRows(withoutDataset(rows, cur.ds), s, next, mounted, mountpoint, refquota, pristine)
	})
}

// cloneRows appends to rows the listing rows of next, a live clone of s.
func cloneRows(rows []propRow, s *snapInfo, next dataset, mounted, mountpoint, refquota, pristine string) []propRow {
	n := next.name
	return append(rows,
		propRow{n, "type", "filesystem"}, propRow{n, "origin", s.snap().String()},
		propRow{n, "defer_destroy", "-"}, propRow{n, "mounted", mounted},
		propRow{n, "mountpoint", mountpoint}, propRow{n, "referenced", propValue(rows, s.snap().String(), "referenced")},
		propRow{n, "refquota", refquota},
		propRow{n, stateProp, stateLive}, propRow{n, userBranchProp, "-"}, propRow{n, pristineProp, pristine})
}
