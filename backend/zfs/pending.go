package zfs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Deferred switches. A rollback of a working state nobody has mounted
// (fsInfo.pristineAt: a branch that only receives, say) does not wait for
// its `zfs clone` (a txg sync, 15-40 ms on zfs-fuse): Rollback records the
// switch in a journal file, fsynced, hands the dot's lock to a goroutine
// that clones, retires the old working state and removes the record, and
// returns. The goroutine starts at a quiet moment or when the dot is
// wanted, not beside the rest of the caller's answer (see
// finishInBackground). Every later operation on the dot waits for the
// lock, so none sees the switch half done; nobody else can see it, as
// nothing is mounted. A crash before the clone leaves the record, and Open makes the
// clone (recover then retires the older generation, as after any switch);
// should the clone fail at run time, the next operation on the dot retries
// it first (inventory) and fails while it cannot be made.
//
// A working state still marked pristine (never mounted since a switch
// made it) is switched without a record: after a crash the Node's start
// moves it to the branch's head (FollowHead), which is the switch's
// target once the Node recorded that, and its old commit before; so only
// a working state made otherwise (the first one of a received dot, say)
// costs the record's two fsyncs.
//
// A record is one file per branch, <DataDir>/zfs-pending/<root>/<dot
// id>.<branch>, holding the names of the snapshot to clone and of the new
// filesystem. Without a DataDir, switches are not deferred.

// pendingSwitch is one deferred switch.
type pendingSwitch struct {
	snap snapshot // the commit to clone
	next dataset  // the new live generation
}

func (b *Backend) pendingDir() string {
	if b.dataDir == "" {
		return ""
	}
	return filepath.Join(b.dataDir, "zfs-pending", strings.ReplaceAll(b.root.name, "/", "%"))
}

func (b *Backend) pendingFile(ref dotmesh.BranchRef) string {
	return filepath.Join(b.pendingDir(), string(ref.Dot)+"."+ref.Branch)
}

// recordSwitch durably records a deferred switch of ref.
func (b *Backend) recordSwitch(ref dotmesh.BranchRef, p pendingSwitch) error {
	dir := b.pendingDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(b.pendingFile(ref), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "%s\n%s\n", p.snap, p.next)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// doSwitch makes the clone of a recorded switch unless it exists.
func (b *Backend) doSwitch(ctx context.Context, p pendingSwitch) error {
	err := b.z.clone(ctx, p.snap, p.next, mustProp(stateProp, stateLive), mustProp("mountpoint", "none"), mustProp(pristineProp, p.snap.name))
	if errors.Is(err, ErrExists) {
		return nil // made before a crash
	}
	return err
}

// finishPending completes the deferred switches of dot that failed at run
// time (see inventory). The caller holds the dot's lock.
func (b *Backend) finishPending(ctx context.Context, dot dotmesh.DotID) (err error) {
	b.pendingMu.Lock()
	ps := b.failed[dot]
	delete(b.failed, dot)
	b.pendingMu.Unlock()
	left := maps.Clone(ps)
	defer func() {
		if len(left) > 0 { // to be retried by the next operation
			b.pendingMu.Lock()
			if b.failed == nil {
				b.failed = map[dotmesh.DotID]map[dotmesh.BranchRef]pendingSwitch{}
			}
			b.failed[dot] = left
			b.pendingMu.Unlock()
		}
	}()
	for ref, p := range ps {
		if err := b.doSwitch(ctx, p); err != nil {
			return fmt.Errorf("switching the working state of %s to %s (left over): %w", ref, p.snap.name, err)
		}
		delete(left, ref)
		// Retire the generation switched from, as Open would.
		inv, err := b.inventory(ctx, dot)
		if err != nil {
			return err
		}
		for _, f := range inv.fss {
			if f.branch == ref.Branch && f.state == stateLive && f != inv.live(ref.Branch) {
				if err := b.umount(ctx, f.ds); err != nil {
					return err
				}
				if err := b.retire(ctx, f); err != nil {
					return err
				}
			}
		}
		if err := os.Remove(b.pendingFile(ref)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// replayPending makes the clones of the switches recorded before a crash
// (Open, before recover).
func (b *Backend) replayPending(ctx context.Context) error {
	dir := b.pendingDir()
	if dir == "" {
		return nil
	}
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	for _, e := range ents {
		file := filepath.Join(dir, e.Name())
		p, err := b.parsePending(file)
		if err != nil {
			b.log.WarnContext(ctx, "ignoring an unreadable record of a deferred switch", "file", file, "err", err)
		} else if err := b.doSwitch(ctx, p); err != nil && !errors.Is(err, ErrNoDataset) {
			return fmt.Errorf("finishing the switch to %s recorded in %s: %w", p.snap, file, err)
		} else {
			b.log.WarnContext(ctx, "finished an interrupted switch of working state", "snapshot", p.snap, "live", p.next)
		}
		if err := os.Remove(file); err != nil {
			return err
		}
	}
	return nil
}

// parsePending reads a record, accepting only names below the root.
func (b *Backend) parsePending(file string) (pendingSwitch, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return pendingSwitch{}, err
	}
	return b.decodePending(data)
}

func (b *Backend) decodePending(data []byte) (pendingSwitch, error) {
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 2 {
		return pendingSwitch{}, fmt.Errorf("%d lines, want 2", len(lines))
	}
	s, err := parseSnapshot(lines[0])
	if err != nil {
		return pendingSwitch{}, err
	}
	d, err := parseDataset(lines[1])
	if err != nil {
		return pendingSwitch{}, err
	}
	if !strings.HasPrefix(s.String(), b.root.name+"/") || !strings.HasPrefix(d.name, b.root.name+"/") || dotOf(b, s.fs) != dotOf(b, d) {
		return pendingSwitch{}, fmt.Errorf("names %s, %s are not of one dot below %s", s, d, b.root)
	}
	return pendingSwitch{snap: s, next: d}, nil
}
