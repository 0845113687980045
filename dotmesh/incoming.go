package dotmesh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Incoming transfers. A push or pull that this node receives stores each
// arriving commit before any branch moves (transfer_recv.go); when the
// sender goes away, what arrived stays for a re-run to resume. The node
// keeps one record per (dot, branch) being received,
//
//	incoming/<dot id>/<branch>
//
// written when the first byte arrives, refreshed while bytes arrive and
// removed by Finish. A record not refreshed for the pin time
// (Options.TransferPin) is abandoned: GC expires it, and AbortIncoming
// ends one at once. Either removes the commits that arrived for that
// branch and are in no branch's history (never a commit a branch holds),
// their storage, the backend's kept partial data (ReceiveDiscarder) and,
// for a dot that does not exist here yet, the staged dot.
//
// Concurrency: a receive holds the dot's lock while it streams, and abort
// and expiry take it too, re-reading the record under it; a receive that
// runs on this node is never expired, and abort cancels it first. A
// staged dot's commit records are written on condition that the staging
// key is unchanged, so a receive that resolved the staged dot before an
// abort removed it stores nothing.

// DefaultTransferPin is how long an interrupted incoming transfer's data
// is kept for a re-run after its last byte arrived.
const DefaultTransferPin = 24 * time.Hour

// IncomingTransfer is a transfer into a branch of a dot on this node that
// has not finished: running now, or cut off and waiting for a re-run.
type IncomingTransfer struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Branch    string `json:"branch"`
	DotID     DotID  `json:"dot_id"`
	Backend   string `json:"backend"`
	// New: the dot does not exist here yet; it appears when the transfer
	// finishes.
	New     bool      `json:"new"`
	Started time.Time `json:"started"`
	// Updated is when the last byte arrived; Expires is Updated plus the
	// node's pin time, after which gc removes what arrived.
	Updated time.Time `json:"updated"`
	Expires time.Time `json:"expires"`
	// Bytes counts the stream bytes received, over every run.
	Bytes int64 `json:"bytes"`
	// Commits counts the commits that arrived and are on no branch yet.
	Commits int `json:"commits"`
	// Active: a stream is being received on this node now.
	Active bool `json:"active"`
}

// DotName returns the name of the dot being received.
func (t IncomingTransfer) DotName() DotName { return DotName{Namespace: t.Namespace, Name: t.Name} }

// incomingRecord is what the registry keeps of an incoming transfer.
type incomingRecord struct {
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	Branch    string    `json:"branch"`
	Backend   string    `json:"backend"`
	Started   time.Time `json:"started"`
	Updated   time.Time `json:"updated"`
	Bytes     int64     `json:"bytes"`
}

// receiving is the set of receives running on this node, by dot and
// branch, so that abort can cancel them and expiry leaves them alone.
type receiving struct {
	mu   sync.Mutex
	runs map[string]map[*activeReceive]struct{}
}

type activeReceive struct {
	cancel context.CancelCauseFunc
	bytes  atomic.Int64 // the record's Bytes plus what this run received
}

func receiveKey(name DotName, branch string) string { return name.String() + "@" + branch }

// beginReceive registers a receive of branch of name; the returned
// context is canceled when the transfer is aborted, with an abortedError
// as its cause.
func (n *Node) beginReceive(ctx context.Context, name DotName, branch string) (context.Context, *activeReceive, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	a := &activeReceive{cancel: cancel}
	k := receiveKey(name, branch)
	n.recv.mu.Lock()
	if n.recv.runs == nil {
		n.recv.runs = map[string]map[*activeReceive]struct{}{}
	}
	if n.recv.runs[k] == nil {
		n.recv.runs[k] = map[*activeReceive]struct{}{}
	}
	n.recv.runs[k][a] = struct{}{}
	n.recv.mu.Unlock()
	return ctx, a, func() {
		n.recv.mu.Lock()
		delete(n.recv.runs[k], a)
		if len(n.recv.runs[k]) == 0 {
			delete(n.recv.runs, k)
		}
		n.recv.mu.Unlock()
		cancel(nil)
	}
}

// abortedError is why a receive that `dm transfers abort` cut off failed,
// in place of the bare context.Canceled its steps return.
type abortedError struct {
	dot    DotName
	branch string
}

func (e *abortedError) Error() string {
	return fmt.Sprintf("%v: the incoming transfer of %s@%s was aborted on the receiving node (dm transfers abort); nothing was stored", ErrConflict, e.dot, e.branch)
}

func (e *abortedError) Unwrap() error { return ErrConflict }

// abortCause is err, or the abort that caused it when ctx (from
// beginReceive) was canceled by one.
func abortCause(ctx context.Context, err error) error {
	var ae *abortedError
	if err != nil && errors.As(context.Cause(ctx), &ae) && !errors.As(err, &ae) {
		return ae
	}
	return err
}

// activeBytes reports whether branch of name is being received here, and
// the bytes received so far by the furthest run.
func (n *Node) activeBytes(name DotName, branch string) (int64, bool) {
	n.recv.mu.Lock()
	defer n.recv.mu.Unlock()
	runs := n.recv.runs[receiveKey(name, branch)]
	var most int64
	for a := range runs {
		most = max(most, a.bytes.Load())
	}
	return most, len(runs) > 0
}

// cancelReceives cancels every receive of branch of name on this node.
func (n *Node) cancelReceives(name DotName, branch string) {
	n.recv.mu.Lock()
	defer n.recv.mu.Unlock()
	for a := range n.recv.runs[receiveKey(name, branch)] {
		a.cancel(&abortedError{dot: name, branch: branch})
	}
}

// refreshEvery is how often a running receive refreshes its record: a
// fraction of the pin time, so a live transfer never looks abandoned.
func (n *Node) refreshEvery() time.Duration {
	return min(n.pin/4, 10*time.Second)
}

// touchIncoming writes the record of the transfer into branch of t with
// bytes received in all, now as its last activity. A staged target's
// record is written only while the staged dot is still the one t holds.
func (n *Node) touchIncoming(ctx context.Context, t *transferTarget, branch string, bytes int64) error {
	op, err := n.incomingOp(ctx, t, branch, bytes)
	if err != nil {
		return err
	}
	_, err = n.store.Txn(ctx, t.conditions(), []Op{op})
	if errors.Is(err, ErrConflict) {
		return fmt.Errorf("%w: the incoming transfer of %s was aborted meanwhile; run it again", ErrConflict, t.dot.DotName())
	}
	return err
}

// incomingOp returns the write of the transfer's record, its start kept.
func (n *Node) incomingOp(ctx context.Context, t *transferTarget, branch string, bytes int64) (Op, error) {
	now := n.now().UTC()
	rec := &incomingRecord{Namespace: t.dot.Namespace, Name: t.dot.Name, Branch: branch, Backend: t.dot.Backend, Started: now}
	kv, err := n.store.Get(ctx, incomingKey(t.dot.ID, branch))
	switch {
	case err == nil:
		old, err := decode[incomingRecord](kv)
		if err != nil {
			return Op{}, err
		}
		rec.Started = old.Started
		bytes = max(bytes, old.Bytes)
	case !errors.Is(err, ErrNotFound):
		return Op{}, err
	}
	rec.Updated, rec.Bytes = now, bytes
	return PutOp(incomingKey(t.dot.ID, branch), encode(rec)), nil
}

// previousBytes returns the bytes an earlier run of the transfer received.
func (n *Node) previousBytes(ctx context.Context, id DotID, branch string) int64 {
	kv, err := n.store.Get(ctx, incomingKey(id, branch))
	if err != nil {
		return 0
	}
	rec, err := decode[incomingRecord](kv)
	if err != nil {
		return 0
	}
	return rec.Bytes
}

// conditions guard writes for a staged target: its staging key unchanged.
func (t *transferTarget) conditions() []Condition {
	if !t.staged {
		return nil
	}
	return []Condition{IfRevision(stagingKey(t.dot.DotName()), t.rev)}
}

// refreshingReader counts the bytes of a stream being received and
// refreshes the transfer's record every n.refreshEvery() while they flow;
// once ctx is done (the transfer aborted) it reads no more.
type refreshingReader struct {
	ctx     context.Context
	r       io.Reader
	a       *activeReceive
	every   time.Duration
	last    time.Time
	now     func() time.Time
	refresh func(total int64)
}

func (r *refreshingReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	k, err := r.r.Read(p)
	r.count(int64(k))
	return k, err
}

func (r *refreshingReader) count(k int64) {
	total := r.a.bytes.Add(k)
	if now := r.now(); k > 0 && now.Sub(r.last) >= r.every {
		r.last = now
		r.refresh(total)
	}
}

// incomingTransfers is TransferPeer.Incoming.
func (n *Node) incomingTransfers(ctx context.Context) ([]IncomingTransfer, error) {
	kvs, err := n.store.List(ctx, incomingPrefix)
	if err != nil {
		return nil, err
	}
	out := []IncomingTransfer{}
	perDot := map[DotID]*dotHistory{}
	for _, kv := range kvs {
		id, _, _ := strings.Cut(strings.TrimPrefix(kv.Key, incomingPrefix), "/")
		rec, err := decode[incomingRecord](kv)
		if err != nil {
			return nil, err
		}
		h, ok := perDot[DotID(id)]
		if !ok {
			if h, err = n.dotHistory(ctx, DotID(id), rec.name()); err != nil {
				return nil, err
			}
			perDot[DotID(id)] = h
		}
		if h.gone {
			continue // its dot was deleted or the staged dot aborted; gc drops the record
		}
		out = append(out, n.describeIncoming(DotID(id), rec, h))
	}
	sort.Slice(out, func(i, j int) bool {
		if a, b := out[i].DotName().String(), out[j].DotName().String(); a != b {
			return a < b
		}
		return out[i].Branch < out[j].Branch
	})
	return out, nil
}

func (r *incomingRecord) name() DotName { return DotName{Namespace: r.Namespace, Name: r.Name} }

func (n *Node) describeIncoming(id DotID, rec *incomingRecord, h *dotHistory) IncomingTransfer {
	t := IncomingTransfer{
		Namespace: rec.Namespace, Name: rec.Name, Branch: rec.Branch, DotID: id, Backend: rec.Backend,
		New: h.staged, Started: rec.Started, Updated: rec.Updated, Expires: rec.Updated.Add(n.pin), Bytes: rec.Bytes,
		Commits: len(h.pending(rec.Branch)),
	}
	if b, ok := n.activeBytes(rec.name(), rec.Branch); ok {
		t.Active, t.Bytes = true, max(b, rec.Bytes)
	}
	return t
}

// dotHistory is what an abort needs to know of a dot: its commits and
// which of them a branch holds.
type dotHistory struct {
	gone      bool // neither a dot nor a staged dot with this id exists
	staged    bool
	stagedRev int64
	commits   map[CommitID]*Commit
	held      map[CommitID]bool // in some branch's or tag's history, or a branch's origin
}

func (n *Node) dotHistory(ctx context.Context, id DotID, name DotName) (*dotHistory, error) {
	h := &dotHistory{held: map[CommitID]bool{}}
	if _, err := n.store.Get(ctx, dotKey(id)); errors.Is(err, ErrNotFound) {
		kv, err := n.store.Get(ctx, stagingKey(name))
		if errors.Is(err, ErrNotFound) {
			h.gone = true
			return h, nil
		} else if err != nil {
			return nil, err
		}
		d, err := decode[Dot](kv)
		if err != nil {
			return nil, err
		}
		if d.ID != id {
			h.gone = true
			return h, nil
		}
		h.staged, h.stagedRev = true, kv.Revision
	} else if err != nil {
		return nil, err
	}
	var err error
	if h.commits, err = n.reg.commits(ctx, id); err != nil {
		return nil, err
	}
	branches, err := n.reg.branches(ctx, id)
	if err != nil {
		return nil, err
	}
	for _, b := range branches {
		h.held[b.Origin] = true
		for _, c := range ancestry(h.commits, b.Head) {
			h.held[c.ID] = true
		}
	}
	tagged, err := n.reg.tagged(ctx, id)
	if err != nil {
		return nil, err
	}
	for t := range tagged { // a tag keeps its commit, as reset and gc do
		for _, c := range ancestry(h.commits, t) {
			h.held[c.ID] = true
		}
	}
	return h, nil
}

// pending lists the commits that arrived for branch and no branch holds.
func (h *dotHistory) pending(branch string) []*Commit {
	var out []*Commit
	for _, c := range h.commits {
		if c.Branch == recvBranch(branch) && !h.held[c.ID] {
			out = append(out, c)
		}
	}
	return out
}

// abortIncoming is TransferPeer.Abort.
func (n *Node) abortIncoming(ctx context.Context, name DotName, branch string) (*AbortResult, error) {
	if err := name.Validate(); err != nil {
		return nil, err
	}
	if branch != "" {
		if err := ValidateName("branch", branch); err != nil {
			return nil, err
		}
	}
	all, err := n.incomingTransfers(ctx)
	if err != nil {
		return nil, err
	}
	res := &AbortResult{Aborted: []IncomingTransfer{}}
	backends := map[string]bool{}
	for _, t := range all {
		if t.DotName() != name || (branch != "" && t.Branch != branch) {
			continue
		}
		n.cancelReceives(name, t.Branch)
		done, err := n.endIncoming(ctx, t.DotID, t.Branch, nil)
		if err != nil {
			return res, err
		}
		if done != nil {
			res.Aborted = append(res.Aborted, *done)
			backends[done.Backend] = true
		}
	}
	if len(res.Aborted) == 0 {
		return nil, &NotFoundError{Kind: KindIncoming, Name: branch, Dot: name}
	}
	for be := range backends {
		gc, ok := n.backends[be].(GarbageCollector)
		if !ok {
			continue
		}
		st, err := gc.CollectGarbage(ctx)
		if err != nil {
			return res, fmt.Errorf("freeing the storage of the aborted transfer on backend %s: %w", be, err)
		}
		res.Stats.ObjectsRemoved += st.ObjectsRemoved
		res.Stats.BytesRemoved += st.BytesRemoved
	}
	return res, nil
}

// AbortResult reports what AbortIncoming ended and freed.
type AbortResult struct {
	Aborted []IncomingTransfer `json:"aborted"`
	Stats   GCStats            `json:"stats"`
}

// expireIncoming ends every incoming transfer whose last byte arrived
// more than the pin time ago and that no receive here is running, and
// drops records whose dot is gone. It returns the transfers it ended.
func (n *Node) expireIncoming(ctx context.Context) ([]IncomingTransfer, error) {
	kvs, err := n.store.List(ctx, incomingPrefix)
	if err != nil {
		return nil, err
	}
	out := []IncomingTransfer{}
	for _, kv := range kvs {
		id, branch, _ := strings.Cut(strings.TrimPrefix(kv.Key, incomingPrefix), "/")
		rec, err := decode[incomingRecord](kv)
		if err != nil {
			return out, err
		}
		if !n.expired(rec) {
			continue // without waiting for the dot's lock, which a receive holds
		}
		done, err := n.endIncoming(ctx, DotID(id), branch, n.expired)
		if err != nil {
			return out, err
		}
		if done != nil {
			out = append(out, *done)
		}
	}
	return out, nil
}

// expired reports whether the transfer of rec is abandoned: no receive of
// it runs here and its last byte came more than the pin time ago.
func (n *Node) expired(rec *incomingRecord) bool {
	_, active := n.activeBytes(rec.name(), rec.Branch)
	return !active && n.now().Sub(rec.Updated) > n.pin
}

// endIncoming removes the transfer into branch of dot id, under the
// dot's lock, when its record (re-read there) satisfies cond (nil: any).
// It returns the transfer ended, or nil when there was none to end.
func (n *Node) endIncoming(ctx context.Context, id DotID, branch string, cond func(*incomingRecord) bool) (*IncomingTransfer, error) {
	defer n.lockDot(id)()
	key := incomingKey(id, branch)
	kv, err := n.store.Get(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return nil, nil // finished or ended meanwhile
	} else if err != nil {
		return nil, err
	}
	rec, err := decode[incomingRecord](kv)
	if err != nil {
		return nil, err
	}
	if cond != nil && !cond(rec) {
		return nil, nil
	}
	h, err := n.dotHistory(ctx, id, rec.name())
	if err != nil {
		return nil, err
	}
	t := n.describeIncoming(id, rec, h)
	if h.gone {
		// The dot went (deleted, or its staged dot aborted) and its
		// storage with it; only the record is left.
		_, err := n.store.Txn(ctx, []Condition{IfRevision(key, kv.Revision)}, []Op{DeleteOp(key)})
		return nil, err
	}
	pending := h.pending(branch)
	// Records first (a crash after this leaves data that reconcile
	// removes at the next start), then the data, then the record of the
	// transfer itself.
	var stale []string
	for _, c := range pending {
		stale = append(stale, commitKey(id, c.ID))
		stale = append(stale, n.place.replicaKeys(ctx, replicaCommitPrefix(id, c.ID))...)
	}
	if err := n.deleteKeys(ctx, stale); err != nil {
		return nil, err
	}
	be, ok := n.backends[rec.Backend]
	if ok {
		if err := n.dropReceived(ctx, be, id, branch, pending, h); err != nil {
			return nil, err
		}
	}
	ops := []Op{DeleteOp(key)}
	var conds []Condition
	if h.staged && !n.otherIncoming(ctx, id, branch) {
		ops = append(ops, DeleteOp(stagingKey(rec.name())))
		conds = append(conds, IfRevision(stagingKey(rec.name()), h.stagedRev))
	}
	if _, err := n.store.Txn(ctx, conds, ops); err != nil {
		return nil, fmt.Errorf("removing the record of the incoming transfer of %s@%s: %w", rec.name(), branch, err)
	}
	n.log.InfoContext(ctx, "ended incoming transfer", "dot", rec.name().String(), "branch", branch, "commits", len(pending), "bytes", t.Bytes, "idle", n.now().Sub(rec.Updated).Round(time.Second))
	return &t, nil
}

// otherIncoming reports whether another branch of dot id is being received.
func (n *Node) otherIncoming(ctx context.Context, id DotID, branch string) bool {
	kvs, err := n.store.List(ctx, incomingDotPrefix(id))
	if err != nil {
		return true // keep the staged dot
	}
	for _, kv := range kvs {
		if kv.Key != incomingKey(id, branch) {
			return true
		}
	}
	return false
}

// dropReceived removes the storage of the pending commits of a transfer
// into branch, data an interrupted receive stored without a record, what
// the backend kept for a re-run, and the receiving storage itself when no
// commit a branch holds lives there.
func (n *Node) dropReceived(ctx context.Context, be StorageBackend, id DotID, branch string, pending []*Commit, h *dotHistory) error {
	recv := BranchRef{Dot: id, Branch: recvBranch(branch)}
	for _, c := range pending {
		if err := be.DeleteCommit(ctx, c.Ref()); err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("removing received commit %s: %w", c.ID, err)
		}
	}
	ids, err := be.Commits(ctx, recv)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	pend := make(map[CommitID]bool, len(pending))
	for _, c := range pending {
		pend[c.ID] = true
	}
	kept := false
	for _, cid := range ids {
		if pend[cid] {
			continue // removed above
		}
		if _, ok := h.commits[cid]; ok {
			kept = true // a commit a branch holds
			continue
		}
		if err := be.DeleteCommit(ctx, CommitRef{BranchRef: recv, ID: cid}); err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("removing commit data left by an interrupted receive: %w", err)
		}
	}
	if rd, ok := be.(ReceiveDiscarder); ok {
		if err := rd.DiscardReceives(ctx, recv); err != nil {
			return err
		}
	}
	if !kept && !h.holdsStorage(recv.Branch) {
		if err := be.DeleteBranch(ctx, recv); err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("removing the receiving storage of %s: %w", branch, err)
		}
	}
	return nil
}

// holdsStorage reports whether a commit some branch holds keeps its data
// on storage branch b.
func (h *dotHistory) holdsStorage(b string) bool {
	for id := range h.held {
		if c, ok := h.commits[id]; ok && c.Branch == b {
			return true
		}
	}
	return false
}
