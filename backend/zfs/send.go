package zfs

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/dotmesh-io/dotmesh/backend/framing"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Send implements dotmesh.StorageBackend with `zfs send [-i base]`, framed
// and checksummed (see stream.go).
//
// ZFS can only send incrementally from an earlier snapshot of the same
// filesystem or from the origin of a clone. A commit's parent is always
// one of those here; for any other base the stream is complete instead (a
// receiver holding the base accepts either).
//
// The snapshots are found in the dot's last listing when it shows both
// as an incremental pair, however old it is: a push usually follows the
// commit it sends by more than the listing's lifetime, and listing a dot
// costs as much as a small incremental send on zfs-fuse. zfs send itself
// checks the pair before it writes a byte, and nothing reaches w before
// zfs's first byte, so a listing that went stale (a snapshot moved or
// deleted) costs a fresh listing and a second try, never a wrong stream.
func (b *Backend) Send(ctx context.Context, target dotmesh.CommitRef, base *dotmesh.CommitRef, w io.Writer) error {
	if err := checkTransfer(target, base); err != nil {
		return err
	}
	buf := make([]byte, framing.MaxFrame)
	b.sends.Lock()
	defer b.sends.Unlock()
	for fresh := false; ; fresh = true {
		to, from, err := b.sendPlan(ctx, target, base, !fresh)
		if err != nil {
			return err
		}
		h := framing.Header{Target: target.ID}
		if from != nil {
			h.Base = base.ID
		}
		var fw *framing.Writer
		err = b.z.send(ctx, from, to, func(r io.Reader) error {
			n, err := io.ReadAtLeast(r, buf, 1)
			if n == 0 {
				if errors.Is(err, io.EOF) {
					return nil // zfs wrote nothing: its exit status says why
				}
				return err
			}
			if fw, err = streamFormat.NewWriter(w, h); err != nil {
				return err
			}
			if _, err := fw.Write(buf[:n]); err != nil {
				return err
			}
			_, err = io.CopyBuffer(fw, r, buf)
			return err
		})
		if err != nil && fw == nil && !fresh && (errors.Is(err, ErrNoDataset) || errors.Is(err, ErrNotIncrement)) {
			b.log.DebugContext(ctx, "the dot's last listing was stale; listing it again", "target", target.ID, "err", err)
			b.forgetInventory(target.Dot) // changed behind this process's back: no counter knows
			continue
		}
		if err == nil && fw == nil {
			err = fmt.Errorf("%w: zfs send wrote nothing", ErrBadStream)
		}
		if err != nil {
			return fmt.Errorf("sending %s: %w", target, err)
		}
		if err := fw.Close(); err != nil {
			return fmt.Errorf("sending %s: %w", target, err)
		}
		return nil
	}
}

// checkTransfer checks what the guard cannot for Send and Receive: ZFS
// streams are incremental only within one dot.
func checkTransfer(target dotmesh.CommitRef, base *dotmesh.CommitRef) error {
	if base != nil && base.Dot != target.Dot {
		return fmt.Errorf("%w: base %s is a commit of another dot than %s", dotmesh.ErrInvalidArgument, base, target)
	}
	return nil
}

// sendPlan finds the snapshots to send. The dot is locked only while
// looking: a send can be long, and a concurrent change that moves or
// deletes the snapshot makes zfs send fail cleanly. With last, a plan
// from the dot's last listing (see Send) is taken when it is incremental.
func (b *Backend) sendPlan(ctx context.Context, target dotmesh.CommitRef, base *dotmesh.CommitRef, last bool) (snapshot, *snapshot, error) {
	defer b.lockDot(target.Dot)()
	if last && base != nil {
		if inv := b.lastInventory(target.Dot); inv != nil {
			ts, bs := inv.commit(target.ID), inv.commit(base.ID)
			if ts != nil && bs != nil && incrementalSource(bs, ts) {
				from := bs.snap()
				return ts.snap(), &from, nil
			}
		}
	}
	inv, err := b.inventory(ctx, target.Dot)
	if err != nil {
		return snapshot{}, nil, err
	}
	ts := inv.commit(target.ID)
	if ts == nil {
		return snapshot{}, nil, fmt.Errorf("%w: commit %s has no data on this node", dotmesh.ErrNotFound, target)
	}
	if base == nil {
		return ts.snap(), nil, nil
	}
	bs := inv.commit(base.ID)
	if bs == nil {
		return snapshot{}, nil, fmt.Errorf("%w: base commit %s has no data on this node", dotmesh.ErrNotFound, base)
	}
	if incrementalSource(bs, ts) {
		from := bs.snap()
		return ts.snap(), &from, nil
	}
	b.log.InfoContext(ctx, "base is not an incremental source for zfs; sending a complete stream", "target", target.ID, "base", base.ID)
	return ts.snap(), nil, nil
}

// incrementalSource reports whether zfs can send ts incrementally from bs:
// an earlier snapshot of its filesystem, or its filesystem's origin.
func incrementalSource(bs, ts *snapInfo) bool {
	return (bs.fs == ts.fs && bs.index() < ts.index()) || ts.fs.origin == bs
}
