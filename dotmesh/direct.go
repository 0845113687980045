package dotmesh

import (
	"context"
	"os"
)

// DirectTransferer is an optional capability of backends whose native
// stream can run straight between a socket and their own commands (zfs
// send into it, zfs receive from it): no byte passes through the node, and
// the storage's own stream checks replace the framing's. A push between
// two nodes takes it for an increment when both backends have it and the
// connection is plain TCP; everything else goes the framed way.
type DirectTransferer interface {
	// SendDirect writes the native stream of target, incremental from
	// base, into f. ErrNotSupported, having written nothing, when it
	// cannot.
	SendDirect(ctx context.Context, target CommitRef, base *CommitRef, f *os.File) error
	// ReceiveDirect stores target, incremental from base, reading the
	// native stream from the file accept returns, with Receive's
	// guarantees: nothing visible before Finish, a bad or short stream
	// stores nothing. ErrNotSupported, before accept is called, when this
	// receive needs the framed stream.
	ReceiveDirect(ctx context.Context, target CommitRef, base *CommitRef, accept func() (*os.File, error)) error
}

// DirectSink is an optional capability of a Transport to another node
// that can carry a commit's native stream on the bare connection
// (DirectTransferer). SendCommitDirect asks the receiver for it; when the
// receiver takes it, send writes the stream into the connection and
// SendCommitDirect returns the bytes sent and handled; otherwise nothing
// was stored and the caller sends the framed stream (SendCommit).
type DirectSink interface {
	SendCommitDirect(ctx context.Context, dot DotName, branch string, c Commit, base *CommitID, format string, send func(f *os.File) error) (n int64, handled bool, err error)
}

// sendDirect is copyCommit's direct way: from this node's backend into
// the bare connection of dst. handled is false when it did not apply.
func sendDirect(ctx context.Context, src Transport, srcDot DotName, dst Transport, dstDot DotName, branch string, c Commit, base *CommitID, format string) (int64, bool, error) {
	ds, ok := dst.(DirectSink)
	lt, local := src.(localTransport)
	if !ok || !local || base == nil || isNeutral(format) {
		return 0, false, nil
	}
	n := lt.n
	d, err := n.Dot(ctx, srcDot)
	if err != nil {
		return 0, false, nil
	}
	if kind, err := parseFormat(format); err != nil || kind != d.Backend {
		return 0, false, nil
	}
	be, err := n.backendOf(d)
	if err != nil {
		return 0, false, nil
	}
	dt, ok := be.(DirectTransferer)
	if !ok {
		return 0, false, nil
	}
	cm, bc, err := n.sendSource(ctx, srcDot, c.ID, base, format)
	if err != nil {
		return 0, false, err
	}
	k, handled, err := ds.SendCommitDirect(ctx, dstDot, branch, c, base, format, func(f *os.File) error {
		return dt.SendDirect(ctx, cm.Ref(), headRef(bc), f)
	})
	if k > 0 {
		n.movedBytes(DirSent)(k) // what the framed stream's countedWriter counts
	}
	return k, handled, err
}

// ReceiveDirect is Receive with the native stream on a bare connection
// (DirectSink): ErrNotSupported, before accept is called, when this
// commit cannot go that way.
func (p *TransferPeer) ReceiveDirect(ctx context.Context, dot DotName, branch string, c Commit, base *CommitID, format string, accept func() (*os.File, error)) error {
	return p.n.receiveCommitAs(ctx, dot, branch, c, base, format, nil, accept)
}
