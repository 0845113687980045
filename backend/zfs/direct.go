package zfs

import (
	"context"
	"fmt"
	"os"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// SendDirect implements dotmesh.DirectTransferer: `zfs send -i` writes
// straight into f (a socket to the receiving node), with no framing and no
// byte through this process. Only increments go this way: a complete
// stream takes Send.
func (b *Backend) SendDirect(ctx context.Context, target dotmesh.CommitRef, base *dotmesh.CommitRef, f *os.File) error {
	if err := checkTransfer(target, base); err != nil {
		return err
	}
	if base == nil {
		return fmt.Errorf("%w: a direct send is incremental", dotmesh.ErrNotSupported)
	}
	b.sends.Lock()
	defer b.sends.Unlock()
	to, from, err := b.sendPlan(ctx, target, base, true)
	if err != nil {
		return err
	}
	if from == nil {
		return fmt.Errorf("%w: base %s is no incremental source of %s", dotmesh.ErrNotSupported, base.ID, target.ID)
	}
	if err := b.z.sendTo(ctx, from, to, f); err != nil {
		return fmt.Errorf("sending %s: %w", target, err)
	}
	return nil
}

// ReceiveDirect implements dotmesh.DirectTransferer for the common case
// of Receive only: an increment from the latest snapshot of the branch's
// live, untouched filesystem, which `zfs receive -F` reads straight from
// the socket accept returns. zfs checks the stream itself: the base's guid
// against the filesystem's latest snapshot, and the END record's checksum
// of the whole stream before the snapshot appears; a stream cut short
// completes nothing. Every other case answers ErrNotSupported before
// accept is called, and the sender falls back to the framed stream.
func (b *Backend) ReceiveDirect(ctx context.Context, target dotmesh.CommitRef, base *dotmesh.CommitRef, accept func() (*os.File, error)) error {
	if err := checkTransfer(target, base); err != nil {
		return err
	}
	if base == nil {
		return fmt.Errorf("%w: a direct receive is incremental", dotmesh.ErrNotSupported)
	}
	defer b.lockDot(target.Dot)()
	inv, err := b.inventory(ctx, target.Dot)
	if err != nil {
		return err
	}
	if inv.snaps[string(target.ID)] != nil {
		return fmt.Errorf("%w: commit %s is stored here already", dotmesh.ErrNotSupported, target)
	}
	bs, cur := inv.commit(base.ID), inv.live(target.Branch)
	if bs == nil || cur == nil || bs.fs != cur || cur.last() != bs || cur.pristine != "" {
		return fmt.Errorf("%w: commit %s does not go onto the live filesystem", dotmesh.ErrNotSupported, target)
	}
	dest, err := cur.ds.Snapshot(string(target.ID))
	if err != nil {
		return err
	}
	f, err := accept()
	if err != nil {
		return err
	}
	defer f.Close()
	seq := invSeq()
	if err := b.z.receiveFrom(ctx, dest.String(), true, f); err != nil {
		return receiveError(target, err)
	}
	b.patchInventory(target.Dot, seq, 1, func(rows []propRow) []propRow {
		return append(rows, snapshotRows(dest, "")...)
	})
	return nil
}
