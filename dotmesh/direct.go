package dotmesh

import (
	"context"
	"errors"
	"fmt"
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

// pushDirectGuess is runTransfer's way for the usual push between two
// nodes that carry the native stream directly (DirectSink): the branch one
// commit ahead of the receiver's. It does not ask the receiver's State, a
// round trip before the stream can start, but guesses that the receiver's
// branch is at the head's parent and sends the head incrementally from
// it, the Finish along, and asks the receiver to check the Finish first
// (FinishAlong.Check). The receiver refuses that before it stores
// anything when the guess is wrong, or when the Finish would be refused
// (TransferPeer.ReceiveDirect), and so does a node that predates the
// check (api.CheckFinishParam); then done is false and runTransfer goes
// the usual way, which asks and answers as before. done is false too
// when the push is not of that kind.
func pushDirectGuess(ctx context.Context, src Transport, srcDot DotName, dst Transport, dstDot DotName, branch string, opts TransferOptions) (res *TransferResult, done bool, err error) {
	if _, ok := dst.(DirectSink); !ok || opts.Neutral {
		return nil, false, nil
	}
	lt, ok := src.(localTransport)
	if !ok {
		return nil, false, nil
	}
	// Only a backend that sends directly: the State below is not asked
	// twice for other pushes.
	if d, err := lt.n.Dot(ctx, srcDot); err != nil {
		return nil, false, nil
	} else if be, err := lt.n.backendOf(d); err != nil {
		return nil, false, nil
	} else if _, ok := be.(DirectTransferer); !ok {
		return nil, false, nil
	}
	from, err := src.State(ctx, srcDot, branch, StateOptions{SkipUsage: true})
	if err != nil || !from.Exists || from.Branch == nil || len(from.History) < 2 {
		return nil, false, nil // the usual way says what is wrong
	}
	c, parent := from.History[len(from.History)-1], from.History[len(from.History)-2]
	if c.ID != from.Branch.Head || c.Parent != parent.ID || c.Pruned || parent.Pruned {
		return nil, false, nil
	}
	format := FormatNative + from.Backend
	along := &FinishAlong{Req: FinishRequest{Head: c.ID, OldHead: parent.ID, Stash: opts.StashOnDivergence, Tags: from.Tags}, Check: true}
	if opts.Progress != nil {
		opts.Progress(Progress{Commit: c.ID, Index: 1, Commits: 1, Total: estimate(c)})
		along.Sent = func() { finishingProgress(opts.Progress, 1, 0) }
	}
	k, handled, err := sendDirect(WithFinishAlong(ctx, along), src, srcDot, dst, dstDot, branch, c, &parent.ID, format)
	if err != nil {
		return nil, true, fmt.Errorf("transferring commit %s: %w (0 of 1 commits had arrived; what arrived is kept, so running the same command again resumes)", c.ID, err)
	}
	if !handled {
		return nil, false, nil
	}
	res = &TransferResult{Dot: dstDot.String(), Branch: branch, Head: c.ID, Commits: 1, Bytes: k, Format: format}
	// A receiver that stored the commit and answered 204 is asked the
	// Finish now.
	res, err = finishTransfer(ctx, dst, dstDot, branch, along, res)
	return res, true, err
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
// that way. check, when not nil, is the Finish that comes along with the
// commit and that the sender asked to be checked first
// (api.CheckFinishParam): a receive whose Finish would be refused (the
// branch is not at check.OldHead, has uncommitted changes or is in use)
// is refused the same way, before anything is stored, so that a sender
// that guessed the receiver's head (pushDirectGuess) asks and sends as it
// would have.
func (p *TransferPeer) ReceiveDirect(ctx context.Context, dot DotName, branch string, c Commit, base *CommitID, format string, check *FinishRequest, conn DirectConn) error {
	if check != nil {
		if err := p.n.finishWouldMove(ctx, dot, branch, format, *check); err != nil {
			return fmt.Errorf("%w: %w", ErrNotSupported, err)
		}
	}
	return p.n.receiveCommitAs(ctx, dot, branch, c, base, format, nil, conn)
}

// finishWouldMove checks, without the dot's lock (Finish checks again
// under it), what Finish needs to move branch from req.OldHead: the
// branch there, with a working state free of uncommitted changes and of
// mounts; a dot stored with the stream's backend. A new dot or branch
// passes when req.OldHead is empty. It reads the dot, the branch and its
// head's record, not the whole history.
func (n *Node) finishWouldMove(ctx context.Context, name DotName, branch, format string, req FinishRequest) error {
	if err := ValidateName("branch", branch); err != nil {
		return err
	}
	d, _, err := n.reg.dotByName(ctx, name)
	if errors.Is(err, ErrNotFound) && req.OldHead == "" {
		return nil // a new dot (staged or not): Finish makes it
	} else if err != nil {
		return err
	}
	if kind, err := parseFormat(format); err != nil || kind != d.Backend {
		return fmt.Errorf("dot %s is stored with backend %s here, the stream is %q", name, d.Backend, format)
	}
	b, _, err := n.reg.branch(ctx, d, branch)
	switch {
	case errors.Is(err, ErrNotFound) && req.OldHead == "":
		return nil
	case err != nil:
		return err
	case b.Head != req.OldHead:
		return fmt.Errorf("%w: branch %s of %s is at %s, not %s", ErrConflict, branch, name, short(b.Head), short(req.OldHead))
	}
	be, err := n.backendOf(d)
	if err != nil {
		return err
	}
	var head *Commit
	if b.Head != "" {
		if head, err = n.reg.commit(ctx, d.ID, b.Head); err != nil {
			return err
		}
	}
	u, err := dirtiness(ctx, be, b.Ref(), headRef(head))
	if err != nil {
		return err
	}
	if u.Dirty {
		return dirtyError(name, branch, u, "this node")
	}
	if ms, err := n.affected(ctx, d, branch); err != nil {
		return err
	} else if len(ms) > 0 {
		return fmt.Errorf("%w: the transfer would change data under %s", ErrInUse, describeMounts(ms))
	}
	return nil
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
