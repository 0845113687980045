package dotmesh

import (
	"io"
	"time"
)

// Observer is told what the engine does, so that a program can count
// and time it (package metrics turns it into Prometheus metrics). The
// engine calls it synchronously from its verbs, possibly from many
// goroutines at once: its methods must be safe for concurrent use and
// return quickly. Options.Observer nil means nobody is told.
//
// Snapshots (dots, branches, what a store holds) are not pushed through
// the Observer: a collector reads them from the Node when asked.
type Observer interface {
	// Started reports that an operation op (one of the Op… names) began.
	// Every Started is followed by exactly one Done of the same op.
	Started(op string)
	// Done reports a finished operation: its duration, its error (nil on
	// success) and what it made (see OpEvent).
	Done(ev OpEvent)
	// Moved reports n bytes of commit streams this node sent (dir
	// DirSent) or received (DirReceived), as they flow: the node's own
	// side of pushes, pulls and clones, and what peers fetch from it or
	// push to it.
	Moved(dir Direction, n int64)
}

// The operations an Observer hears of.
const (
	OpCommit   = "commit"
	OpReset    = "reset"
	OpCheckout = "checkout"
	OpPush     = "push"
	OpPull     = "pull"
	OpClone    = "clone"
	// OpReceive is one commit stream received from a peer
	// (TransferPeer.Receive, and the local side of a pull or clone).
	OpReceive = "receive"
	OpGC      = "gc"
	OpVerify  = "verify"
)

// Direction is which way stream bytes moved, for Observer.Moved.
type Direction string

// Directions of Observer.Moved.
const (
	DirSent     Direction = "sent"
	DirReceived Direction = "received"
)

// OpEvent is one finished operation.
type OpEvent struct {
	Op       string
	Duration time.Duration
	// Err is the operation's error; nil on success.
	Err error
	// Commit is the commit a successful commit made (its Info holds what
	// the backend reported, a database source's dump among it), or the
	// commit a reset went to.
	Commit *Commit
	// Transfer is a successful push's, pull's or clone's result.
	Transfer *TransferResult
	// GC is a successful collection's result.
	GC *GCResult
}

// noObserver is the Observer of a Node given none.
type noObserver struct{}

func (noObserver) Started(string)         {}
func (noObserver) Done(OpEvent)           {}
func (noObserver) Moved(Direction, int64) {}

// begin tells the observer that op started; the returned function tells
// it op ended with ev (Op and Duration filled in here). Use it as
//
//	done := n.begin(OpX)
//	defer func() { done(OpEvent{Err: err, ...}) }()
func (n *Node) begin(op string) func(ev OpEvent) {
	start := time.Now()
	n.obs.Started(op)
	return func(ev OpEvent) {
		ev.Op, ev.Duration = op, time.Since(start)
		n.obs.Done(ev)
	}
}

// movedBytes tells the observer of bytes moved in direction dir, for a
// countedReader or countedWriter on a transfer's stream.
func (n *Node) movedBytes(dir Direction) func(int64) {
	return func(k int64) { n.obs.Moved(dir, k) }
}

// countedWriter passes the byte count of each write through it to add
// (the observer's transfer bytes, a progress meter).
type countedWriter struct {
	w   io.Writer
	add func(int64)
}

func (c countedWriter) Write(p []byte) (int, error) {
	k, err := c.w.Write(p)
	if k > 0 {
		c.add(int64(k))
	}
	return k, err
}

// countedReader passes the byte count of each read through it to add.
type countedReader struct {
	r   io.Reader
	add func(int64)
}

func (c countedReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	if k > 0 {
		c.add(int64(k))
	}
	return k, err
}
