package dotmesh

import (
	"context"
	"os"
	"time"
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

// DirectConn is the bare connection a commit's native stream arrives on
// (DirectSink), as the node's API server hands it to ReceiveDirect.
type DirectConn interface {
	// Accept tells the sender to start and returns the socket for the
	// backend's command. Until stop is called (once the receive has
	// read what it will), the connection is cut (the command reads the
	// end of the stream, which stores nothing) when ctx ends or when the
	// sender sends nothing for the server's idle time.
	Accept(ctx context.Context) (f *os.File, stop func(), err error)
	// Received is how many stream bytes arrived since Accept.
	Received() int64
}

// ReceiveDirect is Receive with the native stream on conn:
// ErrNotSupported, before conn is accepted, when this commit cannot go
// that way.
func (p *TransferPeer) ReceiveDirect(ctx context.Context, dot DotName, branch string, c Commit, base *CommitID, format string, conn DirectConn) error {
	return p.n.receiveCommitAs(ctx, dot, branch, c, base, format, nil, conn)
}

// receiveDirect has the backend's DirectTransferer take the stream from
// conn. The bytes that arrive count as a framed stream's do: the
// received-bytes metric, and the incoming record's bytes (a.bytes, from
// prev), refreshed as the framed stream's reader refreshes it.
func (n *Node) receiveDirect(ctx context.Context, dt DirectTransferer, ref CommitRef, base *CommitRef, conn DirectConn, a *activeReceive, prev int64, refresh func(total int64)) error {
	done := make(chan struct{})
	var watched chan struct{}
	var stop func()
	accept := func() (*os.File, error) {
		f, s, err := conn.Accept(ctx)
		if err != nil {
			return nil, err
		}
		stop, watched = s, make(chan struct{})
		go func() {
			defer close(watched)
			t := time.NewTicker(n.refreshEvery())
			defer t.Stop()
			last := int64(0)
			for {
				select {
				case <-done:
					return
				case <-t.C:
					if k := conn.Received(); k != last {
						last = k
						a.bytes.Store(prev + k)
						refresh(prev + k)
					}
				}
			}
		}()
		return f, nil
	}
	err := dt.ReceiveDirect(ctx, ref, base, accept)
	close(done)
	if stop != nil {
		stop()
	}
	if watched != nil {
		<-watched
		k := conn.Received()
		a.bytes.Store(prev + k)
		n.movedBytes(DirReceived)(k)
	}
	return err
}
