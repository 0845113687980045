package dotmesh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
)

// Receiving side of transfers. Commits arrive one at a time: each one's
// data is stored by the backend and then its registry record is written
// (for a direct stream with its Finish checked and along, in the Finish's
// first transaction: deferredRecord), but no branch head moves until
// Finish. So a transfer cut off at any
// point shows nothing partial, and a re-run finds the commits that did
// arrive in TransferState.Have and does not send them again.
//
// A dot that does not exist here yet is staged under
// transfers/<namespace>/<name> (a Dot record with a fresh id that nothing
// lists); Finish turns it into a real dot in one transaction.

// FormatNative is the stream format prefix of a backend's own Send stream:
// "native:<backend>". FormatNeutral is the backend-neutral tree stream;
// FormatNeutralPatch is the same with the changed files of a delta sent
// as patches against the base's files (package transport/neutral), for
// peers that advertise TransferState.AcceptsNeutralPatch.
const (
	FormatNative       = "native:"
	FormatNeutral      = "neutral"
	FormatNeutralPatch = "neutral-patch"
)

// isNeutral says whether format is a neutral stream's.
func isNeutral(format string) bool { return format == FormatNeutral || format == FormatNeutralPatch }

// transferTarget is the dot commits are received into: an existing dot,
// or a staged one.
type transferTarget struct {
	dot     *Dot
	staged  bool
	rev     int64 // revision of the staging key
	be      StorageBackend
	commits map[CommitID]*Commit
}

func (n *Node) transferTarget(ctx context.Context, name DotName, create string) (*transferTarget, error) {
	if err := name.Validate(); err != nil {
		return nil, err
	}
	d, _, err := n.reg.dotByName(ctx, name)
	t := &transferTarget{dot: d}
	switch {
	case err == nil:
	case !errors.Is(err, ErrNotFound):
		return nil, err
	default:
		kv, gerr := n.store.Get(ctx, stagingKey(name))
		switch {
		case gerr == nil:
			if t.dot, err = decode[Dot](kv); err != nil {
				return nil, err
			}
			t.staged, t.rev = true, kv.Revision
		case !errors.Is(gerr, ErrNotFound):
			return nil, gerr
		case create == "":
			return nil, nil
		default:
			if err := name.ValidateNew(); err != nil {
				return nil, err
			}
			if _, ok := n.backends[create]; !ok {
				return nil, fmt.Errorf("%w: the incoming dot %s is stored with backend %q, which this node does not run (it has %s)", ErrNotSupported, name, create, strings.Join(n.BackendNames(), ", "))
			}
			nd := &Dot{ID: NewDotID(), Namespace: name.Namespace, Name: name.Name, Backend: create, Created: n.now().UTC()}
			rev, err := n.store.Txn(ctx, []Condition{IfAbsent(stagingKey(name))}, []Op{PutOp(stagingKey(name), encode(nd))})
			if err != nil {
				return nil, fmt.Errorf("staging incoming dot %s: %w", name, err)
			}
			t.dot, t.staged, t.rev = nd, true, rev
		}
	}
	if t.be, err = n.backendOf(t.dot); err != nil {
		return nil, err
	}
	if t.commits, err = n.reg.commits(ctx, t.dot.ID); err != nil {
		return nil, err
	}
	return t, nil
}

// lockedTarget is transferTarget with the dot's lock held (unlock
// releases it). A staged target read before the lock may have been
// created for good, or dropped, by a receive that held the lock
// meanwhile (an interrupted push whose commit still arrived, then run
// again); its record is read again under the lock, so that the transfer
// goes on with the dot as it is now instead of failing as aborted.
func (n *Node) lockedTarget(ctx context.Context, name DotName, create string) (t *transferTarget, unlock func(), err error) {
	for range 3 {
		if t, err = n.transferTarget(ctx, name, create); err != nil || t == nil {
			return t, func() {}, err
		}
		unlock = n.lockDot(t.dot.ID)
		if !t.staged {
			return t, unlock, nil
		}
		now, err := n.transferTarget(ctx, name, create)
		if err != nil {
			unlock()
			return nil, nil, err
		}
		if now != nil && now.dot.ID == t.dot.ID {
			return now, unlock, nil
		}
		unlock() // another dot now: lock that one
	}
	return nil, nil, fmt.Errorf("%w: the incoming dot %s was staged and dropped again by other transfers while this one waited; run it again", ErrConflict, name)
}

// transferState is TransferPeer.State.
func (n *Node) transferState(ctx context.Context, name DotName, branch string, opts StateOptions) (*TransferState, error) {
	if err := ValidateName("branch", branch); err != nil {
		return nil, err
	}
	st := &TransferState{Backend: n.def, Backends: n.BackendNames(), AcceptsTags: true, AcceptsNeutralBase: true, AcceptsNeutralPatch: true}
	t, err := n.transferTarget(ctx, name, "")
	if err != nil || t == nil {
		return st, err
	}
	st.Backend = t.dot.Backend
	for id := range t.commits {
		st.Have = append(st.Have, id)
	}
	slices.Sort(st.Have)
	if t.staged {
		return st, nil
	}
	st.Exists = true
	b, _, err := n.reg.branch(ctx, t.dot, branch)
	if errors.Is(err, ErrNotFound) {
		return st, nil
	} else if err != nil {
		return nil, err
	}
	st.Branch = b
	chain := ancestry(t.commits, b.Head)
	markPruned(t.commits, chain)
	for i := len(chain) - 1; i >= 0; i-- {
		c := *chain[i]
		if opts.BriefHistory {
			c = Commit{ID: c.ID, Parent: c.Parent, Pruned: c.Pruned}
		}
		st.History = append(st.History, c)
	}
	if st.Tags, err = n.tagsOn(ctx, t.dot.ID, chain); err != nil {
		return nil, err
	}
	if opts.SkipUsage {
		return st, nil
	}
	if st.Usage, err = dirtiness(ctx, t.be, b.Ref(), headRef(t.commits[b.Head])); err != nil {
		return nil, fmt.Errorf("reading the working state of %s@%s: %w", name, branch, err)
	}
	return st, nil
}

// DirtyChecker is an optional StorageBackend capability: Dirty answers
// the Dirty and DirtyBytes of Usage (Size may be left 0), when that is
// cheaper than the whole of Usage. Transfers use it for their checks.
type DirtyChecker interface {
	Dirty(ctx context.Context, b BranchRef, head *CommitRef) (Usage, error)
}

// HeadFollower is an optional StorageBackend capability for recovery: a
// backend that can switch a branch's working state before the Node
// records the new head (so a crash between the two leaves the working
// state at another commit than the head) implements FollowHead, which the
// Node calls for every branch when it starts. When the working state is
// provably unchanged since it was made from some commit other than head
// (nothing uncommitted can be lost), it is switched to head; otherwise
// nothing happens.
type HeadFollower interface {
	FollowHead(ctx context.Context, b BranchRef, head CommitRef) error
}

// dirtiness reports whether b has uncommitted changes relative to head:
// Usage, or the backend's cheaper DirtyChecker.
func dirtiness(ctx context.Context, be StorageBackend, b BranchRef, head *CommitRef) (Usage, error) {
	if dc, ok := be.(DirtyChecker); ok {
		return dc.Dirty(ctx, b, head)
	}
	return be.Usage(ctx, b, head)
}

// receiveCommit is TransferPeer.Receive.
func (n *Node) receiveCommit(ctx context.Context, name DotName, branch string, c Commit, base *CommitID, format string, r io.Reader) (err error) {
	return n.receiveCommitAs(ctx, name, branch, c, base, format, r, nil)
}

// receiveCommitAs is receiveCommit, the stream read from r or, with
// conn, taken by the backend's DirectTransferer from a bare connection.
func (n *Node) receiveCommitAs(ctx context.Context, name DotName, branch string, c Commit, base *CommitID, format string, r io.Reader, conn DirectConn) (err error) {
	done := n.begin(OpReceive)
	defer func() { done(OpEvent{Err: err}) }()
	r = countedReader{r, n.movedBytes(DirReceived)}
	if err := ValidateName("branch", branch); err != nil {
		return err
	}
	if err := ValidateIncomingCommit(c, base); err != nil {
		return err
	}
	kind, err := parseFormat(format)
	if err != nil {
		return err
	}
	create := kind
	if kind == FormatNeutral {
		create = n.def
	}
	ctx, act, end := n.beginReceive(ctx, name, branch)
	defer end()
	defer func() { err = abortCause(ctx, err) }()
	t, unlock, err := n.lockedTarget(ctx, name, create)
	if err != nil {
		return err
	}
	defer unlock()
	if t.commits, err = n.reg.commits(ctx, t.dot.ID); err != nil { // as they are under the lock
		return err
	}
	// The transfer's record shows it (IncomingTransfers) and keeps it
	// from expiring while bytes flow; a run that fails leaves its count.
	act.bytes.Store(n.previousBytes(ctx, t.dot.ID, branch))
	// A direct stream's record is written while the backend starts its
	// command and takes the stream, not before it: that registry write
	// (an fsync, ~0.8 ms) held up the sender's zfs send. The commit's
	// record still waits for it (touched), and a failed write fails the
	// receive as before, only after the data: a snapshot without its
	// record, which the next run drops (dropLeftover).
	touchCh := make(chan error, 1)
	touch := func() { touchCh <- n.touchIncoming(ctx, t, branch, act.bytes.Load()) }
	if conn != nil {
		go touch()
	} else {
		touch()
	}
	touched := sync.OnceValue(func() error { return <-touchCh })
	if conn == nil {
		if err := touched(); err != nil {
			return err
		}
	}
	defer func() {
		_ = touched() // before the count below; its error is the commit's
		if err != nil {
			if terr := n.touchIncoming(context.WithoutCancel(ctx), t, branch, act.bytes.Load()); terr != nil {
				n.log.WarnContext(ctx, "recording the bytes an interrupted receive got", "dot", name.String(), "err", terr)
			}
		}
	}()
	refresh := func(total int64) {
		if err := n.touchIncoming(ctx, t, branch, total); err != nil {
			n.log.WarnContext(ctx, "refreshing an incoming transfer's record", "dot", name.String(), "err", err)
		}
	}
	prev := act.bytes.Load()
	r = &refreshingReader{ctx: ctx, r: r, a: act, every: n.refreshEvery(), last: n.now(), now: n.now, refresh: refresh}
	if _, ok := t.commits[c.ID]; ok {
		if conn != nil {
			return fmt.Errorf("%w: commit %s is here already", ErrNotSupported, c.ID)
		}
		_, _ = io.Copy(io.Discard, r)
		return nil
	}
	// A commit whose parent is not here is taken only as the start of a
	// shallow history: sent whole, and recorded as where history starts.
	pruned := c.Parent != "" && t.commits[c.Parent] == nil
	if pruned && (!c.Pruned || base != nil) {
		return fmt.Errorf("%w: commit %s arrived before its parent %s; send the history oldest first", ErrInvalidArgument, c.ID, c.Parent)
	}
	var baseRef *CommitRef
	var baseCommit *Commit
	if base != nil {
		bc, ok := t.commits[*base]
		if !ok {
			return fmt.Errorf("%w: commit %s was sent incrementally from %s, which this node does not have; run the transfer again", ErrNotFound, c.ID, *base)
		}
		ref := bc.Ref()
		baseRef, baseCommit = &ref, bc
	}
	// Received data lands on the hidden storage of recvBranch, never on
	// the branch's own working state: backends like zfs make a received
	// snapshot the working state, which must not change before Finish.
	rc := c
	rc.Dot, rc.Branch, rc.Pruned = t.dot.ID, recvBranch(branch), pruned
	ref := rc.Ref()
	if err := n.dropLeftover(ctx, t.be, ref); err != nil {
		return err
	}
	switch {
	case conn != nil:
		dt, ok := t.be.(DirectTransferer)
		if !ok || kind != t.dot.Backend {
			return fmt.Errorf("%w: no direct receive for this commit", ErrNotSupported)
		}
		err = n.receiveDirect(ctx, dt, ref, baseRef, conn, act, prev, refresh)
	case kind == FormatNeutral:
		var info map[string]string
		if info, err = n.receiveNeutral(ctx, t, rc, baseCommit, r); err == nil {
			rc.Info = keepSourceTemplates(info, c.Info) // this backend's facts, not the sender's, but its bindings' templates
		}
	case kind != t.dot.Backend:
		return fmt.Errorf("%w: dot %s is stored with backend %s here but the stream is from backend %s; the sender must use the neutral format", ErrNotSupported, name, t.dot.Backend, kind)
	default:
		err = t.be.Receive(ctx, ref, baseRef, r)
	}
	if err != nil {
		return fmt.Errorf("receiving commit %s of %s: %w", c.ID, name, err)
	}
	if err := touched(); err != nil {
		return err
	}
	rop, err := n.incomingOp(ctx, t, branch, act.bytes.Load())
	if err != nil {
		return err
	}
	rec := &deferredRecord{
		commit: &rc,
		conds:  append([]Condition{IfAbsent(commitKey(t.dot.ID, c.ID))}, t.conditions()...),
		ops:    append([]Op{PutOp(commitKey(t.dot.ID, c.ID), encode(rc)), rop}, n.place.replicaOps(t.dot.ID, c.ID)...),
		logged: func(ctx context.Context) {
			n.log.InfoContext(ctx, "received commit", "dot", name.String(), "branch", branch, "commit", c.ID, "format", format, "direct", conn != nil)
		},
	}
	rec.write = func(ctx context.Context) error {
		if _, err := n.store.Txn(ctx, rec.conds, rec.ops); err != nil {
			if derr := t.be.DeleteCommit(context.WithoutCancel(ctx), ref); derr != nil {
				n.log.WarnContext(ctx, "removing data of a received commit the registry refused", "commit", c.ID, "err", derr)
			}
			return fmt.Errorf("recording received commit %s: %w", c.ID, err)
		}
		rec.logged(ctx)
		return nil
	}
	if d := deferredRecordOf(ctx); d != nil && conn != nil && d.commit == nil {
		*d = *rec // the Finish that came along writes it (WithDeferredRecord)
		return nil
	}
	return rec.write(ctx)
}

// deferredRecord is the registry record of a commit received directly
// with its Finish along (WithDeferredRecord): the Finish writes it in the
// transaction that marks the branch for the move (restoreLocked), one
// registry transaction (two fsyncs) less before the answer. Wherever the
// Finish does not get there, it writes the record alone (write), as the
// receive would have: the commit stays for a re-run. A crash between the
// receive and that transaction leaves the data without a record, as one
// just before the receive's own transaction did, which the next run drops
// and sends again (dropLeftover).
type deferredRecord struct {
	commit *Commit // nil until a receive deferred its record
	conds  []Condition
	ops    []Op
	done   bool                            // written (or tried), alone or with the mark
	write  func(ctx context.Context) error // alone
	logged func(ctx context.Context)
}

// flush writes the record alone unless it was written.
func (d *deferredRecord) flush(ctx context.Context) error {
	if d == nil || d.commit == nil || d.done {
		return nil
	}
	d.done = true
	return d.write(ctx)
}

type deferredRecordKey struct{}

// WithDeferredRecord lets a direct receive on ctx leave its commit's
// registry record to the Finish on the same ctx (see deferredRecord). The
// caller calls the Finish after a receive that succeeded.
func WithDeferredRecord(ctx context.Context) context.Context {
	return context.WithValue(ctx, deferredRecordKey{}, &deferredRecord{})
}

func deferredRecordOf(ctx context.Context) *deferredRecord {
	d, _ := ctx.Value(deferredRecordKey{}).(*deferredRecord)
	return d
}

// dropLeftover removes data of ref that an interrupted receive stored
// without its registry record (the record is written after the data).
func (n *Node) dropLeftover(ctx context.Context, be StorageBackend, ref CommitRef) error {
	ids, err := be.Commits(ctx, ref.BranchRef)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if slices.Contains(ids, ref.ID) {
		n.log.WarnContext(ctx, "removing commit data left by an interrupted transfer", "commit", ref.ID)
		return be.DeleteCommit(ctx, ref)
	}
	return nil
}

// ValidateIncomingCommit checks the ids and metadata keys of a commit a
// peer sends (and of its base, when not nil), before anything is stored.
// Every receiving Transport runs it (a node, a bucket remote).
func ValidateIncomingCommit(c Commit, base *CommitID) error {
	if err := ValidateID("commit", string(c.ID), false); err != nil {
		return err
	}
	if c.Parent != "" {
		if err := ValidateID("parent commit", string(c.Parent), false); err != nil {
			return err
		}
	}
	if base != nil {
		if err := ValidateID("base commit", string(*base), false); err != nil {
			return err
		}
	}
	for k := range c.Metadata {
		if err := ValidateName("metadata key", k); err != nil {
			return err
		}
	}
	return nil
}

// parseFormat returns the backend name of a native format, or
// FormatNeutral for either neutral format.
func parseFormat(f string) (string, error) {
	if isNeutral(f) {
		return FormatNeutral, nil
	}
	if be, ok := strings.CutPrefix(f, FormatNative); ok && ValidateName("backend", be) == nil {
		return be, nil
	}
	return "", fmt.Errorf("%w: stream format %q is neither %q nor %sBACKEND", ErrInvalidArgument, f, FormatNeutral, FormatNative)
}

// ErrDiverged is returned (wrapping ErrConflict) when both sides of a
// transfer have commits the other lacks.
var ErrDiverged = fmt.Errorf("%w: diverged", ErrConflict)

// finishReceive is TransferPeer.Finish.
func (n *Node) finishReceive(ctx context.Context, name DotName, branch string, req FinishRequest) (res *FinishResult, err error) {
	// A Finish that did not move the branch leaves the commit a direct
	// receive deferred recorded, as that receive would have.
	rec := deferredRecordOf(ctx)
	flush := func() {
		if ferr := rec.flush(context.WithoutCancel(ctx)); ferr != nil {
			if err == nil {
				res, err = nil, ferr
			} else {
				n.log.WarnContext(ctx, "recording a received commit after a refused finish", "dot", name.String(), "err", ferr)
			}
		}
	}
	defer flush() // after a refusal before the lock
	if err := ValidateName("branch", branch); err != nil {
		return nil, err
	}
	if err := ValidateID("head commit", string(req.Head), false); err != nil {
		return nil, err
	}
	if err := ValidateTransferTags(req.Tags); err != nil {
		return nil, err
	}
	t, err := n.transferTarget(ctx, name, "")
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, fmt.Errorf("%w: dot %s has not received any commit here; run the transfer again", ErrNotFound, name)
	}
	if !t.staged {
		// In a cluster the branch's working state must be here to move.
		if err := n.place.acquire(ctx, t.dot, branch); err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	defer n.lockDot(t.dot.ID)()
	if rec != nil && (rec.commit == nil || rec.commit.Dot != t.dot.ID || rec.commit.ID != req.Head || t.staged) {
		if err := rec.flush(ctx); err != nil {
			return nil, err
		}
		rec = nil
	}
	defer flush() // under the lock
	defer func() {
		// The branch moved; the sender's tags follow, under the same lock.
		if err == nil && len(req.Tags) > 0 {
			res.Tags, res.SkippedTags, err = n.receiveTags(ctx, t.dot, req.Tags)
		}
	}()
	incomingGone := false // dropped with the head's record
	defer func() {
		// Finished: the transfer is no longer incoming (before the lock goes).
		if err == nil && !incomingGone {
			if _, derr := n.store.Txn(ctx, nil, []Op{DeleteOp(incomingKey(t.dot.ID, branch))}); derr != nil {
				n.log.WarnContext(ctx, "removing the record of a finished incoming transfer", "dot", name.String(), "err", derr)
			}
		}
	}()
	if t.commits, err = n.reg.commits(ctx, t.dot.ID); err != nil {
		return nil, err
	}
	if rec != nil {
		if _, ok := t.commits[req.Head]; ok { // recorded meanwhile: the receive's own write refuses
			if err := rec.flush(ctx); err != nil {
				return nil, err
			}
			rec = nil
		} else {
			t.commits[req.Head] = rec.commit
		}
	}
	head, ok := t.commits[req.Head]
	if !ok {
		return nil, fmt.Errorf("%w: commit %s has not arrived at this node; run the transfer again", ErrNotFound, req.Head)
	}
	if chain := ancestry(t.commits, req.Head); chain[len(chain)-1].Parent != "" && !chain[len(chain)-1].Pruned {
		return nil, fmt.Errorf("%w: the history of %s is incomplete here (%s is missing); run the transfer again", ErrNotFound, req.Head, chain[len(chain)-1].Parent)
	}
	if t.staged {
		return n.finishNewDot(ctx, t, name, branch, head)
	}
	b, rev, err := n.reg.branch(ctx, t.dot, branch)
	if err != nil || b.Head == head.ID {
		// Only the move below takes the record along.
		if ferr := rec.flush(ctx); ferr != nil {
			return nil, ferr
		}
	}
	if errors.Is(err, ErrNotFound) {
		if err := ValidateNewName("branch", branch); err != nil {
			return nil, err
		}
		if err := n.checkNameFree(ctx, t.dot, branch); err != nil {
			return nil, err
		}
		storage, err := n.storageFor(ctx, t.dot, branch)
		if err != nil {
			return nil, err
		}
		br := &Branch{Dot: t.dot.ID, Name: branch, Head: head.ID, Created: n.now().UTC(), Master: n.nodeID(), Storage: storage}
		if err := n.branchAtReceived(ctx, t.be, br.Ref(), branch, head); err != nil {
			return nil, fmt.Errorf("creating the working state of %s@%s: %w", name, branch, err)
		}
		if _, err := n.store.Txn(ctx, []Condition{IfAbsent(branchKey(t.dot.ID, branch))}, []Op{PutOp(branchKey(t.dot.ID, branch), encode(br))}); err != nil {
			return nil, fmt.Errorf("recording branch %s of %s: %w", branch, name, err)
		}
		n.log.InfoContext(ctx, "transfer created branch", "dot", name.String(), "branch", branch, "head", head.ID)
		return &FinishResult{Head: head.ID, Created: true}, nil
	} else if err != nil {
		return nil, err
	}
	res = &FinishResult{Head: head.ID}
	if b.Head == head.ID {
		// Already where this transfer takes it, also when it moved there
		// during the transfer (an interrupted run's commit that still
		// arrived and finished): nothing to move, as git's "up to date".
		return res, nil
	}
	if b.Head != req.OldHead {
		return nil, fmt.Errorf("%w: branch %s of %s moved from %s to %s during the transfer; run it again", ErrConflict, branch, name, short(req.OldHead), short(b.Head))
	}
	u, err := dirtiness(ctx, t.be, b.Ref(), headRef(t.commits[b.Head]))
	if err != nil {
		return nil, err
	}
	if u.Dirty {
		return nil, dirtyError(name, branch, u, "this node")
	}
	if ms, err := n.affected(ctx, t.dot, branch); err != nil {
		return nil, err
	} else if len(ms) > 0 {
		return nil, fmt.Errorf("%w: the transfer would change data under %s; stop them first and run it again", ErrInUse, describeMounts(ms))
	}
	if b.Head != "" && !inHistory(t.commits, head.ID, b.Head) {
		common := lastCommon(t.commits, head.ID, b.Head)
		if !req.Stash {
			return nil, divergedError(name, branch, common)
		}
		stash := StashBranchName(branch, n.now())
		if _, err := n.createBranch(ctx, t.dot, stash, branch, string(b.Head)); err != nil {
			return nil, fmt.Errorf("stashing the diverged commits of %s@%s: %w", name, branch, err)
		}
		res.Stashed = stash
		n.log.InfoContext(ctx, "stashed diverged commits", "dot", name.String(), "branch", branch, "stash", stash, "common", common)
	}
	// The transfer stops being incoming in the transaction that moves
	// the head, which also holds the caller's audit record (WithAudit):
	// registry writes (and fsyncs) less.
	audit, audited := n.auditOps(ctx, func(r *AuditRecord) { r.Branch, r.Commit = branch, string(head.ID) })
	if _, err := n.restoreLockedWith(ctx, t.be, t.dot, b, rev, head, rec, append([]Op{DeleteOp(incomingKey(t.dot.ID, branch))}, audit...)...); err != nil {
		return nil, fmt.Errorf("updating the working state of %s@%s to %s: %w", name, branch, short(head.ID), err)
	}
	audited()
	incomingGone = true
	n.log.InfoContext(ctx, "transfer moved branch", "dot", name.String(), "branch", branch, "head", head.ID)
	return res, nil
}

func (n *Node) finishNewDot(ctx context.Context, t *transferTarget, name DotName, branch string, head *Commit) (*FinishResult, error) {
	if err := ValidateNewName("branch", branch); err != nil {
		return nil, err
	}
	d := *t.dot
	d.Current = branch
	br := &Branch{Dot: d.ID, Name: branch, Head: head.ID, Created: n.now().UTC(), Master: n.nodeID()}
	if err := n.branchAtReceived(ctx, t.be, br.Ref(), branch, head); err != nil && !errors.Is(err, ErrAlreadyExists) {
		return nil, fmt.Errorf("creating the working state of %s@%s: %w", name, branch, err)
	}
	_, err := n.store.Txn(ctx,
		[]Condition{IfAbsent(nameKey(name)), IfRevision(stagingKey(name), t.rev)},
		[]Op{PutOp(nameKey(name), []byte(d.ID)), PutOp(dotKey(d.ID), encode(&d)), PutOp(branchKey(d.ID, branch), encode(br)), DeleteOp(stagingKey(name))})
	if err != nil {
		if errors.Is(err, ErrConflict) {
			return nil, fmt.Errorf("%w: dot %s was created here during the transfer; run it again", ErrConflict, name)
		}
		return nil, err
	}
	n.log.InfoContext(ctx, "transfer created dot", "dot", name.String(), "id", d.ID, "branch", branch, "head", head.ID)
	if err := n.relinkTo(ctx, &d, true); err != nil { // not mounted for it: see TreeLocator
		n.log.WarnContext(ctx, "making the stable path of a new dot", "dot", name.String(), "err", err)
	}
	return &FinishResult{Head: head.ID, Created: true}, nil
}

// branchAtReceived makes the working state of br (of the branch named
// branch) equal to head. When head was received into branch's receiving
// storage and the backend is a WorkingStateAdopter, that storage's
// working state, from which head was committed, becomes br's: the tree
// is not written a second time. Otherwise, or when the backend cannot
// vouch for it, CreateBranch restores head.
func (n *Node) branchAtReceived(ctx context.Context, be StorageBackend, br BranchRef, branch string, head *Commit) error {
	headR := head.Ref()
	if a, ok := be.(WorkingStateAdopter); ok && head.Branch == recvBranch(branch) {
		err := a.AdoptWorkingState(ctx, headR.BranchRef, br, headR)
		if err == nil || !errors.Is(err, ErrConflict) {
			return err
		}
		n.log.DebugContext(ctx, "restoring a received commit: the receiving working state cannot be taken over", "branch", br.String(), "err", err)
	}
	return be.CreateBranch(ctx, br, &headR)
}

// inHistory reports whether id is head or one of its ancestors.
func inHistory(commits map[CommitID]*Commit, head, id CommitID) bool {
	for _, c := range ancestry(commits, head) {
		if c.ID == id {
			return true
		}
	}
	return false
}

// lastCommon returns the newest commit in both histories, or "".
func lastCommon(commits map[CommitID]*Commit, a, b CommitID) CommitID {
	inA := make(map[CommitID]bool)
	for _, c := range ancestry(commits, a) {
		inA[c.ID] = true
	}
	for _, c := range ancestry(commits, b) {
		if inA[c.ID] {
			return c.ID
		}
	}
	return ""
}

// StashBranchName names the branch that keeps a receiver's diverged
// commits (TransferOptions.StashOnDivergence) stashed at time t; other
// receivers (a bucket) name theirs alike.
func StashBranchName(branch string, t time.Time) string {
	return branch + "-DIVERGED-" + t.UTC().Format("20060102T150405Z")
}

func divergedError(name DotName, branch string, common CommitID) error {
	return &DivergedError{Dot: name, Branch: branch, Common: common}
}

func dirtyError(name DotName, branch string, u Usage, where string) error {
	return &DirtyError{Dot: name, Branch: branch, Where: where, Bytes: u.DirtyBytes}
}

func short(id CommitID) string {
	if id == "" {
		return "(no commit)"
	}
	return string(id)
}

// stagedDots lists the dots of unfinished incoming transfers.
func (n *Node) stagedDots(ctx context.Context) ([]*Dot, error) {
	kvs, err := n.store.List(ctx, transfersPrefix)
	if err != nil {
		return nil, err
	}
	out := make([]*Dot, 0, len(kvs))
	for _, kv := range kvs {
		d, err := decode[Dot](kv)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// storageBranches lists every branch storage a dot uses: its branches and
// those holding commit data only (deleted branches others still need,
// and the receiving storage of transfers).
func storageBranches(branches []*Branch, commits map[CommitID]*Commit) []string {
	seen := make(map[string]bool)
	var out []string
	add := func(b string) {
		if !seen[b] {
			seen[b] = true
			out = append(out, b)
		}
	}
	for _, b := range branches {
		add(b.StorageName())
	}
	for _, c := range commits {
		add(c.Branch)
	}
	slices.Sort(out)
	return out
}

// recvBranch names the hidden receiving storage of branch (see
// transfer_neutral.go).
func recvBranch(branch string) string {
	b := "_recv-" + branch
	if len(b) > 64 {
		b = b[:64]
	}
	return b
}
