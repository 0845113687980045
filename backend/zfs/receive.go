package zfs

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/dotmesh-io/dotmesh/backend/framing"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// holdBack is how much of the end of a zfs stream Receive keeps from zfs
// until the trailer is verified; it must exceed the END record.
const holdBack = 4 * drrHeaderLen

// errOtherStream stops a receive started before the stream turned out to
// be a complete or clone stream.
var errOtherStream = errors.New("a complete or clone stream")

// Receive implements dotmesh.StorageBackend. The received commit becomes
// the branch's working state (uncommitted changes are discarded, as by a
// rollback). Where the stream lands:
//
//   - incremental, base = latest snapshot of the live filesystem:
//     `zfs receive -F live@target` directly (ZFS receives into a hidden
//     clone and swaps it in at the END record; -F only discards the
//     uncommitted changes); the snapshot is left untagged (see
//     tagBeforeMove);
//   - complete stream, or incremental from a clone's origin: a new staging
//     filesystem "<branch>.recv-*" that zfs receive creates (finding the
//     origin itself), renamed to the next generation to switch;
//   - incremental from any other snapshot: the base is cloned as the next
//     generation (state recv) and promoted, which makes the base its
//     latest snapshot, then received into; the switch is a state change.
//
// In every case the end of the zfs stream is held back until the framing
// trailer verified the whole transfer, so a truncated or altered stream
// never completes a snapshot (ErrCorrupt). A staging filesystem is swapped
// in like a rollback; on failure it is dissolved, handing back any
// snapshots promote moved into it.
func (b *Backend) Receive(ctx context.Context, target dotmesh.CommitRef, base *dotmesh.CommitRef, r io.Reader) (err error) {
	if err := checkTransfer(target, base); err != nil {
		return err
	}
	// The framing header and the first record of the zfs stream say
	// which kind of stream it is. They are read lazily: the direct path
	// below starts zfs receive before they are here, since the sender's
	// zfs send takes as long to write its first byte as zfs receive takes
	// to start.
	var (
		hdr    framing.Header
		fr     *framing.Reader
		first  []byte
		begin  beginRecord
		headed bool
	)
	readHeader := func() error {
		if headed {
			return nil
		}
		var err error
		if hdr, fr, err = streamFormat.NewReader(r); err != nil {
			return err
		}
		if hdr.Target != target.ID {
			return fmt.Errorf("%w: the stream carries commit %s, not %s", dotmesh.ErrCorrupt, hdr.Target, target.ID)
		}
		if hdr.Base != "" && (base == nil || base.ID != hdr.Base) {
			return fmt.Errorf("%w: the stream is incremental from commit %s; receive it with that base", dotmesh.ErrInvalidArgument, hdr.Base)
		}
		headed = true
		return nil
	}
	readBegin := func() error {
		if err := readHeader(); err != nil || first != nil {
			return err
		}
		buf := make([]byte, drrHeaderLen)
		if _, err := io.ReadFull(fr, buf); err != nil {
			return streamFormat.ReadError("reading the zfs stream", err)
		}
		var err error
		if begin, err = parseBegin(buf); err != nil {
			return err
		}
		if begin.full() != (hdr.Base == "") {
			return fmt.Errorf("%w: the stream header and the zfs stream disagree about being incremental", dotmesh.ErrCorrupt)
		}
		first = buf
		return nil
	}
	produce := func(w io.Writer) error {
		hb := &holdback{w: w, keep: holdBack}
		if _, err := hb.Write(first); err != nil {
			return err
		}
		buf := make([]byte, 256<<10) // fewer, larger writes to zfs
		if _, err := io.CopyBuffer(hb, fr, buf); err != nil {
			return err // the END record stays with us: zfs gives up
		}
		return hb.Flush()
	}

	defer b.lockDot(target.Dot)() // the guard leaves Receive to us
	inv, err := b.inventory(ctx, target.Dot)
	if err != nil {
		return err
	}
	if s := inv.snaps[string(target.ID)]; s != nil {
		if err := readHeader(); err != nil {
			return err // a bad stream says so first
		}
		return fmt.Errorf("%w: commit %s is stored here already", dotmesh.ErrAlreadyExists, target)
	}
	var bs *snapInfo
	if base != nil {
		bs = inv.commit(base.ID)
	}
	cur := inv.live(target.Branch)
	if !inv.exists {
		if err := b.ensureContainer(ctx, target.Dot); err != nil {
			return err
		}
	}
	defer func() {
		if err != nil {
			_ = b.prune(context.WithoutCancel(ctx), target.Dot) // an empty container, say
		}
	}()

	if bs != nil && cur != nil && bs.fs == cur && cur.last() == bs && cur.pristine == "" {
		// Straight onto the live filesystem. zfs receive starts before
		// the stream's header is here (it takes a while to start, as
		// does the sender's zfs send); should the stream be complete or
		// a clone stream, the other kinds a stream from this base can
		// be, zfs gets nothing at all, and the general path below takes
		// it.
		dest, err := cur.ds.Snapshot(string(target.ID))
		if err != nil {
			return err
		}
		seq := invSeq()
		err = b.z.receive(ctx, dest.String(), true, func(w io.Writer) error {
			if err := readHeader(); err != nil {
				return err
			}
			if hdr.Base == "" {
				return errOtherStream
			}
			if err := readBegin(); err != nil {
				return err
			}
			if begin.clone() {
				return errOtherStream
			}
			return produce(w)
		})
		if err == nil {
			// Left untagged: on the branch's own filesystem it counts as
			// the branch's (snapInfo.branch), and whatever moves it
			// elsewhere tags it first (tagBeforeMove). That saves a
			// command per commit.
			//
			// The transfer's Finish follows: it finds the commit without
			// a listing. (The filesystem's own size changed too, which
			// only matters for working states without snapshots.)
			b.patchInventory(target.Dot, seq, 1, func(rows []propRow) []propRow {
				return append(rows, snapshotRows(dest, "")...)
			})
			return nil
		}
		if !errors.Is(err, errOtherStream) {
			return receiveError(target, err)
		}
		b.log.DebugContext(ctx, "a complete or clone stream onto the live filesystem's latest snapshot; receiving it into a staging filesystem", "commit", target.ID)
	}
	if err := readBegin(); err != nil {
		return err
	}
	if hdr.Base != "" && bs == nil {
		return fmt.Errorf("%w: base commit %s has no data on this node", dotmesh.ErrNotFound, base)
	}
	if !begin.full() && !begin.clone() && cur != nil && bs.fs == cur && cur.last() == bs {
		// cur carries pristineProp: its data is about to change (see
		// pristineAt).
		dest, err := cur.ds.Snapshot(string(target.ID))
		if err != nil {
			return err
		}
		if err := b.z.inherit(ctx, cur.ds.name, pristineProp); err != nil {
			return fmt.Errorf("receiving %s: %w", target, err)
		}
		if err := b.z.receive(ctx, dest.String(), true, produce); err != nil {
			return receiveError(target, err)
		}
		return nil
	}

	next := b.genDataset(target.BranchRef, inv.nextGen(target.Branch))
	var st dataset // where the stream lands
	var switchTo func() (dataset, error)
	if !begin.full() && !begin.clone() {
		st = next
		err := b.z.clone(ctx, bs.snap(), st, mustProp(stateProp, stateRecv), mustProp("mountpoint", "none"))
		if err != nil {
			return fmt.Errorf("receiving %s: %w", target, err)
		}
		err = b.tagBeforeMove(ctx, bs.fs)
		if err == nil {
			err = b.z.promote(ctx, st)
		}
		if err != nil {
			b.cleanupStaged(ctx, st)
			return fmt.Errorf("receiving %s: %w", target, err)
		}
		switchTo = func() (dataset, error) { return next, b.setState(ctx, next, stateLive) }
	} else {
		st = b.recvDataset(target.BranchRef)
		switchTo = func() (dataset, error) { return next, b.renameFresh(ctx, st, next) }
	}
	dest, err := st.Snapshot(string(target.ID))
	if err != nil {
		return err
	}
	if err := b.z.receive(ctx, dest.String(), false, produce); err != nil {
		b.cleanupStaged(ctx, st)
		return receiveError(target, err)
	}
	if err := b.checkReceived(ctx, target, bs, begin, st, dest); err != nil {
		b.cleanupStaged(ctx, st)
		return fmt.Errorf("receiving %s: %w", target, err)
	}
	if err := b.swap(ctx, target.BranchRef, cur, switchTo); err != nil {
		b.cleanupStaged(ctx, st)
		return fmt.Errorf("receiving %s: %w", target, err)
	}
	b.promoteLineage(ctx, target.BranchRef)
	return b.prune(ctx, target.Dot)
}

// checkReceived checks and tags the received snapshot and prepares a
// staging filesystem made by zfs receive for the switch: unmounted, and
// marked live ahead of the rename that makes it a generation (until then
// its name keeps it out of every listing).
func (b *Backend) checkReceived(ctx context.Context, target dotmesh.CommitRef, bs *snapInfo, begin beginRecord, st dataset, dest snapshot) error {
	if begin.clone() {
		inv, err := b.inventory(ctx, target.Dot)
		if err != nil {
			return err
		}
		if f := inv.fs(st); f == nil || f.origin == nil || f.origin.name != bs.name {
			return fmt.Errorf("%w: zfs received the clone stream onto another origin than base %s", dotmesh.ErrCorrupt, bs.name)
		}
	}
	if err := b.z.set(ctx, dest.String(), mustProp(userBranchProp, target.Branch)); err != nil {
		return err
	}
	if begin.full() || begin.clone() {
		if err := b.z.set(ctx, st.name, mustProp("mountpoint", "none")); err != nil {
			return err
		}
		return b.setState(ctx, st, stateLive)
	}
	return nil
}

func (b *Backend) cleanupStaged(ctx context.Context, st dataset) {
	if err := b.dissolve(ctx, st); err != nil {
		b.log.WarnContext(ctx, "removing a failed receive (Open retries)", "dataset", st, "err", err)
	}
}

// receiveError classifies a failed zfs receive: a bad stream is
// ErrCorrupt whichever side noticed.
func receiveError(target dotmesh.CommitRef, err error) error {
	if errors.Is(err, ErrBadStream) { // wraps dotmesh.ErrCorrupt already
		return fmt.Errorf("receiving %s: the stream is damaged: %w", target, err)
	}
	return fmt.Errorf("receiving %s: %w", target, err)
}
