// Package guard is the decorator every storage backend is opened behind,
// as restic wraps its backends: it does, once for all of them, what each
// call needs before it reaches storage, so that a backend's methods keep
// only the storage work.
//
// For every call of dotmesh.StorageBackend and of the optional capability
// interfaces, in this order:
//
//  1. arguments are validated (branch and commit refs, subdot names, dot
//     ids, record keys and sizes, object ids): a bad one is refused with
//     dotmesh's sentinel errors before the backend sees it;
//  2. the backend must be open: once Close has begun every call is
//     refused with the same error (ErrUnavailable, "... backend ... is
//     closed") whatever the backend;
//  3. calls that read or change one branch's state hold that branch's
//     lock (or its dot's, see Locks), so operations on one branch are
//     serialised and different ones run in parallel. Listings (Branches,
//     Commits, Records, Sources), Send, garbage collection and object
//     negotiation take no lock: a long send must not block commits, nor a
//     receive a listing. A backend that must lock a method otherwise
//     names it in Options.SelfLocked and takes the same Locks itself
//     (zfs: Receive locks after reading the stream's header). The locks
//     are not reentrant: a backend's methods never call the guard.
//
// Close waits for the calls in flight, then closes the backend once;
// further Close calls return nil.
//
// A backend opens itself, then returns New(itself, ...) embedded, with one
// of this package's capability types per optional interface it has (see
// the Guarded types of backend/dump, zfs and btrfs), so that a type
// assertion on what Open returns finds exactly the inner backend's
// capabilities, each guarded.
package guard

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/dotmesh-io/dotmesh/backend/internal/keylock"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Locks are the per-branch (or per-dot) locks the guard takes. A backend
// that must lock differently in a method (see Options.SelfLocked) takes
// the same locks itself.
type Locks struct {
	perDot bool
	m      keylock.Map[dotmesh.BranchRef]
}

// NewLocks returns locks by branch, or by dot when perDot is set (zfs:
// promote moves snapshots between the filesystems of one dot).
func NewLocks(perDot bool) *Locks { return &Locks{perDot: perDot} }

// Lock locks br's unit and returns the function that unlocks it.
func (l *Locks) Lock(br dotmesh.BranchRef) (unlock func()) {
	if l.perDot {
		br.Branch = ""
	}
	return l.m.Lock(br)
}

// Wanted returns a channel closed when a caller waits for br's unit
// (keylock.Map.Wanted).
func (l *Locks) Wanted(br dotmesh.BranchRef) <-chan struct{} {
	if l.perDot {
		br.Branch = ""
	}
	return l.m.Wanted(br)
}

// Method names the calls a backend may lock itself (Options.SelfLocked).
type Method uint

const (
	// Receive: zfs reads the stream's header before it locks the dot.
	Receive Method = 1 << iota
	// Rollback and FollowHead: zfs hands the dot's lock over to work
	// that finishes after the call returned.
	Rollback
	FollowHead
)

// Options configure New.
type Options struct {
	// Where names the storage in the closed error, e.g. "dump backend
	// /var/lib/dotmesh/dump".
	Where string
	// Locks are the locks the guard takes; nil means new ones by branch.
	Locks *Locks
	// SelfLocked are the methods the guard does not lock: the backend
	// takes Locks itself.
	SelfLocked Method
}

// Backend is a dotmesh.StorageBackend behind the guard.
type Backend struct {
	inner dotmesh.StorageBackend
	where string
	locks *Locks
	self  Method

	mu       sync.Mutex
	closing  bool
	inflight sync.WaitGroup
	closed   chan struct{} // closed when inner.Close returned
	closeErr error
}

var _ dotmesh.StorageBackend = (*Backend)(nil)

// New puts inner behind the guard.
func New(inner dotmesh.StorageBackend, opts Options) *Backend {
	if opts.Locks == nil {
		opts.Locks = NewLocks(false)
	}
	if opts.Where == "" {
		opts.Where = inner.Name() + " backend"
	}
	return &Backend{inner: inner, where: opts.Where, locks: opts.Locks, self: opts.SelfLocked, closed: make(chan struct{})}
}

// Unwrap returns the backend behind the guard (for its own tests).
func (g *Backend) Unwrap() dotmesh.StorageBackend { return g.inner }

// enter checks the backend is open and counts the call in flight until
// the returned function is called.
func (g *Backend) enter() (done func(), err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closing {
		return nil, fmt.Errorf("%w: %s is closed", dotmesh.ErrUnavailable, g.where)
	}
	g.inflight.Add(1)
	return g.inflight.Done, nil
}

// enterBranch enters and, unless the backend locks m itself, locks br.
func (g *Backend) enterBranch(m Method, br dotmesh.BranchRef) (func(), error) {
	done, err := g.enter()
	if err != nil || g.self&m != 0 {
		return done, err
	}
	unlock := g.locks.Lock(br)
	return func() { unlock(); done() }, nil
}

// valid checks ref (a BranchRef or CommitRef) and, when not nil, the
// commit that goes with it: the origin of a new branch, the base of a
// stream, the head to compare with.
func valid(ref interface{ Validate() error }, commit *dotmesh.CommitRef) error {
	if err := ref.Validate(); err != nil {
		return err
	}
	if commit != nil {
		return commit.Validate()
	}
	return nil
}

// branchCall validates, enters and locks br (unless m is self-locked).
func (g *Backend) branchCall(m Method, br dotmesh.BranchRef, ref interface{ Validate() error }, commit *dotmesh.CommitRef) (func(), error) {
	if err := valid(ref, commit); err != nil {
		return nil, err
	}
	return g.enterBranch(m, br)
}

// call validates and enters, taking no lock.
func (g *Backend) call(ref interface{ Validate() error }, commit *dotmesh.CommitRef) (func(), error) {
	if err := valid(ref, commit); err != nil {
		return nil, err
	}
	return g.enter()
}

// Name implements dotmesh.StorageBackend.
func (g *Backend) Name() string { return g.inner.Name() }

// Close implements dotmesh.StorageBackend: new calls are refused at once,
// calls in flight are waited for, then the backend is closed. Later
// calls of Close wait for the first and return nil.
func (g *Backend) Close() error {
	g.mu.Lock()
	if g.closing {
		g.mu.Unlock()
		<-g.closed
		return nil
	}
	g.closing = true
	g.mu.Unlock()
	g.inflight.Wait()
	g.closeErr = g.inner.Close()
	close(g.closed)
	return g.closeErr
}

// CreateBranch implements dotmesh.StorageBackend.
func (g *Backend) CreateBranch(ctx context.Context, b dotmesh.BranchRef, from *dotmesh.CommitRef) error {
	done, err := g.branchCall(0, b, b, from)
	if err != nil {
		return err
	}
	defer done()
	return g.inner.CreateBranch(ctx, b, from)
}

// DeleteBranch implements dotmesh.StorageBackend.
func (g *Backend) DeleteBranch(ctx context.Context, b dotmesh.BranchRef) error {
	done, err := g.branchCall(0, b, b, nil)
	if err != nil {
		return err
	}
	defer done()
	return g.inner.DeleteBranch(ctx, b)
}

// Branches implements dotmesh.StorageBackend.
func (g *Backend) Branches(ctx context.Context) ([]dotmesh.BranchRef, error) {
	done, err := g.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	return g.inner.Branches(ctx)
}

// SubdotPath implements dotmesh.StorageBackend.
func (g *Backend) SubdotPath(ctx context.Context, b dotmesh.BranchRef, subdot string) (string, error) {
	if err := valid(b, nil); err != nil {
		return "", err
	}
	if err := dotmesh.ValidateSubdot(subdot); err != nil {
		return "", err
	}
	done, err := g.enterBranch(0, b)
	if err != nil {
		return "", err
	}
	defer done()
	return g.inner.SubdotPath(ctx, b, subdot)
}

// Subdots implements dotmesh.StorageBackend.
func (g *Backend) Subdots(ctx context.Context, b dotmesh.BranchRef) ([]string, error) {
	done, err := g.branchCall(0, b, b, nil)
	if err != nil {
		return nil, err
	}
	defer done()
	return g.inner.Subdots(ctx, b)
}

// Usage implements dotmesh.StorageBackend.
func (g *Backend) Usage(ctx context.Context, b dotmesh.BranchRef, head *dotmesh.CommitRef) (dotmesh.Usage, error) {
	done, err := g.branchCall(0, b, b, head)
	if err != nil {
		return dotmesh.Usage{}, err
	}
	defer done()
	return g.inner.Usage(ctx, b, head)
}

// Commit implements dotmesh.StorageBackend.
func (g *Backend) Commit(ctx context.Context, c dotmesh.CommitRef) (map[string]string, error) {
	done, err := g.branchCall(0, c.BranchRef, c, nil)
	if err != nil {
		return nil, err
	}
	defer done()
	return g.inner.Commit(ctx, c)
}

// Commits implements dotmesh.StorageBackend. No lock: it is asked while
// a receive onto the branch may be running.
func (g *Backend) Commits(ctx context.Context, b dotmesh.BranchRef) ([]dotmesh.CommitID, error) {
	done, err := g.call(b, nil)
	if err != nil {
		return nil, err
	}
	defer done()
	return g.inner.Commits(ctx, b)
}

// Rollback implements dotmesh.StorageBackend.
func (g *Backend) Rollback(ctx context.Context, b dotmesh.BranchRef, c dotmesh.CommitRef) error {
	done, err := g.branchCall(Rollback, b, b, &c)
	if err != nil {
		return err
	}
	defer done()
	return g.inner.Rollback(ctx, b, c)
}

// DeleteCommit implements dotmesh.StorageBackend.
func (g *Backend) DeleteCommit(ctx context.Context, c dotmesh.CommitRef) error {
	done, err := g.branchCall(0, c.BranchRef, c, nil)
	if err != nil {
		return err
	}
	defer done()
	return g.inner.DeleteCommit(ctx, c)
}

// Send implements dotmesh.StorageBackend. No lock: commits on the branch
// go on while a stream is sent.
func (g *Backend) Send(ctx context.Context, target dotmesh.CommitRef, base *dotmesh.CommitRef, w io.Writer) error {
	done, err := g.call(target, base)
	if err != nil {
		return err
	}
	defer done()
	return g.inner.Send(ctx, target, base, w)
}

// Receive implements dotmesh.StorageBackend.
func (g *Backend) Receive(ctx context.Context, target dotmesh.CommitRef, base *dotmesh.CommitRef, r io.Reader) error {
	done, err := g.branchCall(Receive, target.BranchRef, target, base)
	if err != nil {
		return err
	}
	defer done()
	return g.inner.Receive(ctx, target, base, r)
}
