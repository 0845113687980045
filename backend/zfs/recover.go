package zfs

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// recover repairs what a crash (SIGKILL of this process, or of the ZFS
// daemon) can leave in the middle of a multi-step operation. Each step of
// those operations is one atomic ZFS command, so the state is always one
// of these:
//
//	"dm-*" snapshots              Usage's temporary snapshot: destroyed
//	state recv, "<b>.recv-*"      unverified receive: dissolved
//	state staged                  rollback before the switch (older
//	                              versions): dissolved (the old state
//	                              stays)
//	two live generations          crash after the switch of a rollback or
//	                              receive: the newer stays, the older is
//	                              retired (the new state)
//	state del                     interrupted DeleteBranch: finished
//	state old, mounted            interrupted retire: unmounted
//	live at another mountpoint    interrupted mount: mountpoint set
//	                              (mountpoint none is a working state
//	                              not mounted yet: left to first use)
//	live at its path, unmounted   switch interrupted after its unmount:
//	                              mounted again, as its users expect
//	                              the path to show it without asking
//	untagged commit snapshots     left by Receive: they are their
//	                              filesystem owner's (tagBeforeMove);
//	                              tagged so when a dot is repaired anyway
//	holders without snapshots     destroyed (prune)
//	records/<dot> without R/<dot> the dot's records filesystem, left by
//	                              a crash after its container's removal:
//	                              destroyed
func (b *Backend) recover(ctx context.Context) error {
	// One listing of everything; only dots with leftovers get more.
	rows, err := b.z.get(ctx, true, invProps, b.root)
	if err != nil {
		return err
	}
	byDot := map[dotmesh.DotID][]propRow{}
	for _, r := range rows {
		rest, ok := strings.CutPrefix(r.name, b.root.name+"/")
		if !ok {
			continue
		}
		dot, _, _ := strings.Cut(rest, "/")
		dot, _, _ = strings.Cut(dot, "@")
		byDot[dotmesh.DotID(dot)] = append(byDot[dotmesh.DotID(dot)], r)
	}
	for _, fs := range b.strayRecords(rows) {
		if err := b.dropRecordsFS(ctx, fs); err != nil {
			return err
		}
	}
	for dot, rows := range byDot {
		if dotmesh.ValidateID("dot", string(dot), false) != nil {
			continue
		}
		inv, err := parseInventory(dot, b.container(dot), rows)
		if err != nil {
			return fmt.Errorf("dot %s: %w", dot, err)
		}
		if !b.needsRepair(inv) {
			continue
		}
		if err := b.recoverDot(ctx, dot); err != nil {
			return fmt.Errorf("dot %s: %w", dot, err)
		}
	}
	return nil
}

func (b *Backend) needsRepair(inv *dotInv) bool {
	if inv.exists && len(inv.fss) == 0 {
		return true // an empty container
	}
	for _, f := range inv.fss {
		switch f.state {
		case stateRecv, stateStaged, stateDel:
			return true
		case stateOld:
			if f.mounted || f.mountpoint != "none" || len(f.snaps) == 0 {
				return true
			}
		case stateLive:
			ref := dotmesh.BranchRef{Dot: inv.dot, Branch: f.branch}
			if inv.live(f.branch) != f || (f.mountpoint != b.livePath(ref) && f.mountpoint != "none") || (f.mountpoint == b.livePath(ref) && !f.mounted) {
				return true
			}
		}
		for _, s := range f.snaps {
			// Untagged commits need nothing: they are their filesystem
			// owner's, and promote tags before moving them.
			if strings.HasPrefix(s.name, tempSnapPrefix) {
				return true
			}
		}
	}
	return false
}

func (b *Backend) recoverDot(ctx context.Context, dot dotmesh.DotID) error {
	inv, err := b.inventory(ctx, dot)
	if err != nil {
		return err
	}
	for _, f := range inv.fss {
		for _, s := range f.snaps {
			if strings.HasPrefix(s.name, tempSnapPrefix) {
				if err := b.z.destroySnapshot(ctx, s.snap(), false); err != nil && !errors.Is(err, ErrNoDataset) {
					return err
				}
			}
		}
	}
	// Unfinished preparations go first: they may hold snapshots that
	// promote moved, which dissolve hands back.
	for _, f := range inv.fss {
		if f.state == stateRecv || f.state == stateStaged {
			b.log.WarnContext(ctx, "removing an interrupted rollback or receive", "dataset", f.ds, "state", f.state)
			if err := b.dissolve(ctx, f.ds); err != nil {
				return fmt.Errorf("%s: %w", f.ds, err)
			}
		}
	}
	if inv, err = b.inventory(ctx, dot); err != nil {
		return err
	}
	for _, f := range inv.fss {
		ref := dotmesh.BranchRef{Dot: dot, Branch: f.branch}
		switch {
		case f.state == stateLive && inv.live(f.branch) != f:
			b.log.WarnContext(ctx, "finishing an interrupted switch of working state", "retired", f.ds, "live", inv.live(f.branch).ds)
			err = b.umount(ctx, f.ds)
			if err == nil {
				err = b.retire(ctx, f)
			}
		case f.state == stateDel:
			b.log.WarnContext(ctx, "finishing an interrupted branch delete", "dataset", f.ds)
			err = b.finishDelete(ctx, ref, f.ds, inv.live(f.branch) == nil)
		case f.state == stateOld && (f.mounted || f.mountpoint != "none"):
			err = b.umount(ctx, f.ds)
			if err == nil {
				err = b.z.set(ctx, f.ds.name, mustProp("mountpoint", "none"))
			}
		}
		if err != nil {
			return fmt.Errorf("%s: %w", f.ds, err)
		}
	}
	if inv, err = b.inventory(ctx, dot); err != nil {
		return err
	}
	for _, f := range inv.fss {
		ref := dotmesh.BranchRef{Dot: dot, Branch: f.branch}
		if f.state == stateLive && inv.live(f.branch) == f && f.mountpoint != "none" && (f.mountpoint != b.livePath(ref) || !f.mounted) {
			b.log.WarnContext(ctx, "mounting a working state an interrupted operation left unmounted", "dataset", f.ds)
			if err := b.activateFS(ctx, ref, f); err != nil {
				b.log.WarnContext(ctx, "mounting a working state", "dataset", f.ds, "err", err)
			}
		}
		for _, s := range f.snaps {
			if s.isCommit() && s.tag == "" && !s.deferred {
				b.log.WarnContext(ctx, "tagging an untagged commit snapshot", "snapshot", s.snap(), "branch", f.branch)
				if err := b.z.set(ctx, s.snap().String(), mustProp(userBranchProp, f.branch)); err != nil {
					return err
				}
			}
		}
	}
	return b.prune(ctx, dot)
}
