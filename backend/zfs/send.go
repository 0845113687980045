package zfs

import (
	"context"
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
func (b *Backend) Send(ctx context.Context, target dotmesh.CommitRef, base *dotmesh.CommitRef, w io.Writer) error {
	if err := checkTransfer(target, base); err != nil {
		return err
	}
	to, from, err := b.sendPlan(ctx, target, base)
	if err != nil {
		return err
	}
	h := framing.Header{Target: target.ID}
	if from != nil {
		h.Base = base.ID
	}
	fw, err := streamFormat.NewWriter(w, h)
	if err != nil {
		return fmt.Errorf("sending %s: %w", target, err)
	}
	buf := make([]byte, framing.MaxFrame)
	b.sends.Lock()
	defer b.sends.Unlock()
	err = b.z.send(ctx, from, to, func(r io.Reader) error {
		_, err := io.CopyBuffer(fw, r, buf)
		return err
	})
	if err != nil {
		return fmt.Errorf("sending %s: %w", target, err)
	}
	if err := fw.Close(); err != nil {
		return fmt.Errorf("sending %s: %w", target, err)
	}
	return nil
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
// deletes the snapshot makes zfs send fail cleanly.
func (b *Backend) sendPlan(ctx context.Context, target dotmesh.CommitRef, base *dotmesh.CommitRef) (snapshot, *snapshot, error) {
	defer b.lockDot(target.Dot)()
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
	if (bs.fs == ts.fs && bs.index() < ts.index()) || ts.fs.origin == bs {
		from := bs.snap()
		return ts.snap(), &from, nil
	}
	b.log.InfoContext(ctx, "base is not an incremental source for zfs; sending a complete stream", "target", target.ID, "base", base.ID)
	return ts.snap(), nil, nil
}
