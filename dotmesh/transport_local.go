package dotmesh

import (
	"context"
	"fmt"
	"io"
)

// LocalTransport is a Transport to a Node in the same process: the other
// side of a Push or Pull that runs on this node, and a peer in tests and
// in programs that hold two nodes.
// It offers the optional ObjectTransport too.
func LocalTransport(n *Node) Transport { return localTransport{n} }

var _ ObjectTransport = localTransport{}

type localTransport struct{ n *Node }

func (l localTransport) State(ctx context.Context, dot DotName, branch string, opts StateOptions) (*TransferState, error) {
	return l.n.transferState(ctx, dot, branch, opts)
}

func (l localTransport) SendCommit(ctx context.Context, dot DotName, branch string, c Commit, base *CommitID, format string, data io.Reader) error {
	return l.n.receiveCommit(ctx, dot, branch, c, base, format, data)
}

func (l localTransport) FetchCommit(ctx context.Context, dot DotName, id CommitID, base *CommitID, format string) (io.ReadCloser, error) {
	// Check what can be checked before the stream starts, so that a bad
	// request fails here and not as a cut-off stream.
	if _, _, err := l.n.sendSource(ctx, dot, id, base, format); err != nil {
		return nil, err
	}
	return produce(ctx, func(ctx context.Context, w io.Writer) error {
		return l.n.sendCommitStream(ctx, dot, id, base, format, w)
	}), nil
}

func (l localTransport) CommitObjects(ctx context.Context, dot DotName, id CommitID, base *CommitID, format string) (*ObjectList, error) {
	return l.n.commitObjects(ctx, dot, id, base, format)
}

func (l localTransport) HaveObjects(ctx context.Context, dot DotName, branch string, c CommitID, format string, ids []ObjectID) ([]bool, error) {
	return l.n.haveObjects(ctx, dot, branch, c, format, ids)
}

func (l localTransport) FetchCommitWithout(ctx context.Context, dot DotName, id CommitID, base *CommitID, format string, f *ObjectFilter) (io.ReadCloser, error) {
	if _, _, _, err := l.n.negotiatingSource(ctx, dot, id, base, format); err != nil {
		return nil, err
	}
	return produce(ctx, func(ctx context.Context, w io.Writer) error {
		return l.n.sendCommitStreamWithout(ctx, dot, id, base, format, f, w)
	}), nil
}

// produce runs write on a goroutine of its own, feeding the reader it
// returns. Closing the reader stops write (its context ends, its writes
// fail) and waits for it, so that nothing of a stream outlives the reader.
func produce(ctx context.Context, write func(context.Context, io.Writer) error) io.ReadCloser {
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(write(ctx, pw))
	}()
	return &producedReader{PipeReader: pr, cancel: cancel, done: done}
}

type producedReader struct {
	*io.PipeReader
	cancel context.CancelFunc
	done   chan struct{}
}

func (p *producedReader) Close() error {
	p.cancel()
	err := p.PipeReader.Close()
	<-p.done
	return err
}

func (l localTransport) Finish(ctx context.Context, dot DotName, branch string, req FinishRequest) (*FinishResult, error) {
	return l.n.finishReceive(ctx, dot, branch, req)
}

// sendSource resolves what sendCommitStream sends: the commit and base
// records and the dot's backend.
func (n *Node) sendSource(ctx context.Context, name DotName, id CommitID, base *CommitID, format string) (*Commit, *Commit, error) {
	if err := ValidateID("commit", string(id), false); err != nil {
		return nil, nil, err
	}
	d, err := n.Dot(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	kind, err := parseFormat(format)
	if err != nil {
		return nil, nil, err
	}
	if kind != FormatNeutral && kind != d.Backend {
		return nil, nil, fmt.Errorf("%w: dot %s is stored with backend %s here, not %s; ask for the %s format", ErrNotSupported, name, d.Backend, kind, FormatNeutral)
	}
	// Two records, not the whole history: a push of one commit of a
	// dot of 1,000 decoded and copied all of them here.
	c, err := n.reg.commit(ctx, d.ID, id)
	if err != nil {
		return nil, nil, err
	}
	if c == nil {
		return nil, nil, fmt.Errorf("%w: dot %s has no commit %s", ErrNotFound, name, id)
	}
	var bc *Commit
	if base != nil {
		if bc, err = n.reg.commit(ctx, d.ID, *base); err != nil {
			return nil, nil, err
		}
		if bc == nil {
			return nil, nil, fmt.Errorf("%w: dot %s has no base commit %s", ErrNotFound, name, *base)
		}
	}
	return c, bc, nil
}

// sendCommitStream is TransferPeer.Send.
func (n *Node) sendCommitStream(ctx context.Context, name DotName, id CommitID, base *CommitID, format string, w io.Writer) error {
	c, bc, err := n.sendSource(ctx, name, id, base, format)
	if err != nil {
		return err
	}
	w = countedWriter{w, n.movedBytes(DirSent)}
	d, err := n.Dot(ctx, name)
	if err != nil {
		return err
	}
	be, err := n.backendOf(d)
	if err != nil {
		return err
	}
	if isNeutral(format) {
		return n.sendNeutral(ctx, d, be, c, bc, format == FormatNeutralPatch, w)
	}
	return be.Send(ctx, c.Ref(), headRef(bc), w)
}

// InProcess implements InProcessTransport.
func (l localTransport) InProcess() bool { return true }
