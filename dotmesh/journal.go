package dotmesh

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// A standalone node whose backend is a CommitJournal answers a commit
// before its registry transaction. The commit's record is handed to the
// backend before the data is taken (btrfs: an xattr, which the snapshot's
// own transaction makes durable), so the registry's syncs leave the
// commit's path: a crash after the answer leaves a journaled record that
// NewNode replays. Until the transaction is done the dot stays locked and
// every registry access through the node waits for it (journalGate), so
// nothing after the answer reads a registry without the commit.
//
// Cluster nodes do not journal: other nodes read etcd right after the
// answer, and a branch may move to another node before a crashed one
// replays; the registry's own syncs are etcd's there.

// maxJournalRecord bounds what a commit journals; a larger commit (a long
// message, much metadata) takes the registry's synced path.
const maxJournalRecord = 8 << 10

// journalRecord is what a commit journals: the commit without the facts
// of its data (the backend gives them at replay) and the transaction's
// other writes (the audit record).
type journalRecord struct {
	Commit *Commit `json:"commit"`
	Branch string  `json:"branch"` // its name in the registry
	// Rev is the branch's registry revision the commit was made at: the
	// record replays only while the branch is still at it, so a record a
	// backend keeps after its commit was recorded (btrfs's removal is
	// not synced) cannot bring the commit back after a reset or a
	// branch's deletion and re-creation moved the branch.
	Rev int64 `json:"rev,omitempty"`
	Ops []Op  `json:"ops,omitempty"`
}

// journalCommit hands c's record to jr before its data is taken; false
// when the commit takes the synced path instead.
func (n *Node) journalCommit(ctx context.Context, jr CommitJournal, c *Commit, head *CommitRef, branch string, rev int64, ops []Op) bool {
	rec, err := json.Marshal(journalRecord{Commit: c, Branch: branch, Rev: rev, Ops: ops})
	if err == nil && len(rec) > maxJournalRecord {
		err = fmt.Errorf("%w: the record has %d bytes, more than %d", ErrInvalidArgument, len(rec), maxJournalRecord)
	}
	if err == nil {
		err = jr.JournalCommit(ctx, c.Ref(), head, rec)
	}
	if err != nil {
		n.log.DebugContext(ctx, "commit not journaled; the registry's transaction comes before the answer", "commit", c.ID, "err", err)
		return false
	}
	return true
}

// dropJournal removes c's record after its registry transaction (or
// after no commit was made). No sync: a record the registry already
// holds is dropped again at the next start.
func (n *Node) dropJournal(ctx context.Context, jr CommitJournal, c CommitRef) {
	if err := jr.DropJournal(context.WithoutCancel(ctx), c); err != nil {
		n.log.WarnContext(ctx, "cannot drop a commit's journal record; the next start drops it", "commit", c.ID, "err", err)
	}
}

// recordJournaled is the registry transaction of a commit answered
// before it. The branch was read under the dot's lock, still held: a
// conflict can only be a write that does not take it (a label, say), so
// the branch is read again and the head moved if it is still c's parent.
// A crash between such a write and the retried transaction loses the
// answered commit: its record names the revision before the write.
func (n *Node) recordJournaled(ctx context.Context, jr CommitJournal, b *Branch, rev int64, c *Commit, extra []Op) {
	n.restoreStep("commit answered")
	for try := 0; ; try++ {
		conds, ops := commitTxn(c, b, rev, extra)
		_, err := n.ks.txn(ctx, conds, ops)
		if err == nil {
			n.dropJournal(ctx, jr, c.Ref())
			return
		}
		if errors.Is(err, ErrConflict) && try < 3 {
			var cur *Branch
			if cur, rev, err = readBranch(ctx, n.ks.ClusterStore, c.Dot, b.Name); err == nil && cur.Head == c.Parent {
				cur.Head = c.ID
				b = cur
				continue
			}
		}
		// The record stays: the next start replays it.
		n.log.ErrorContext(ctx, "recording an answered commit in the registry failed; it is replayed at the next start", "dot", c.Dot, "branch", b.Name, "commit", c.ID, "err", err)
		return
	}
}

// replayJournals records the commits that were answered before a crash
// cut their registry transaction short, and drops the records of commits
// whose data was never made or that the registry holds already. Run by
// reconcile before it deletes data the registry does not know.
func (n *Node) replayJournals(ctx context.Context) error {
	for _, name := range n.BackendNames() {
		jr, ok := n.backends[name].(CommitJournal)
		if !ok {
			continue
		}
		recs, err := jr.Journaled(ctx)
		if err != nil {
			return fmt.Errorf("reading the commits journaled by backend %s: %w", name, err)
		}
		for _, j := range recs {
			if err := n.replayJournaled(ctx, j); err != nil {
				return fmt.Errorf("replaying journaled commit %s: %w", j.Commit, err)
			}
			n.dropJournal(ctx, jr, j.Commit)
		}
	}
	return nil
}

func (n *Node) replayJournaled(ctx context.Context, j JournaledCommit) error {
	var rec journalRecord
	if err := json.Unmarshal(j.Record, &rec); err != nil || rec.Commit == nil || rec.Commit.Ref() != j.Commit {
		n.log.WarnContext(ctx, "dropping an unreadable commit journal record", "commit", j.Commit.String(), "err", err)
		return nil
	}
	c := rec.Commit
	if !j.Stored {
		n.log.InfoContext(ctx, "dropping the journal record of a commit whose data was never made, or equals its head", "commit", j.Commit.String())
		return nil
	}
	if _, err := n.store.Get(ctx, commitKey(c.Dot, c.ID)); err == nil {
		return nil // recorded before the crash
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	b, rev, err := readBranch(ctx, n.store, c.Dot, rec.Branch)
	// A transaction of the branch since the commit was made (its own, or
	// a later reset) leaves another revision. A record without one (an
	// older node's) counts on the head alone.
	if errors.Is(err, ErrNotFound) || (err == nil && (b.Head != c.Parent || (rec.Rev != 0 && rev != rec.Rev))) {
		n.log.WarnContext(ctx, "dropping the journal record of a commit whose branch moved on; its data goes", "commit", j.Commit.String())
		return nil
	}
	if err != nil {
		return err
	}
	c.Info = recordConsistency(j.Info, "")
	b.Head = c.ID
	conds, ops := commitTxn(c, b, rev, rec.Ops)
	if _, err := n.store.Txn(ctx, conds, ops); err != nil {
		return err
	}
	n.log.InfoContext(ctx, "recorded a commit answered before a crash", "commit", j.Commit.String())
	return nil
}

// readBranch reads a branch record and its revision from s (the
// registry's branch, and a journaled commit's goroutine, which reads past
// the node's journalGate, since the gate waits for it).
func readBranch(ctx context.Context, s ClusterStore, dot DotID, name string) (*Branch, int64, error) {
	kv, err := s.Get(ctx, branchKey(dot, name))
	if err != nil {
		return nil, 0, err
	}
	b, err := decode[Branch](kv)
	return b, kv.Revision, err
}

// journalGate holds back registry access through the node while answered
// commits wait for their registry transactions. An access waits only for
// those in flight when it came, so a stream of commits cannot starve it.
type journalGate struct {
	n    atomic.Int32 // in flight: the fast path of wait
	mu   sync.Mutex
	next uint64
	open map[uint64]chan struct{}
}

// enter marks one transaction in flight; the returned func ends it.
func (g *journalGate) enter() func() {
	ch := make(chan struct{})
	g.mu.Lock()
	if g.open == nil {
		g.open = make(map[uint64]chan struct{})
	}
	id := g.next
	g.next++
	g.open[id] = ch
	g.n.Add(1)
	g.mu.Unlock()
	return func() {
		g.mu.Lock()
		delete(g.open, id)
		g.n.Add(-1)
		g.mu.Unlock()
		close(ch)
	}
}

// wait returns once the transactions in flight at its call are done.
func (g *journalGate) wait(ctx context.Context) error {
	if g.n.Load() == 0 {
		return nil
	}
	g.mu.Lock()
	chs := make([]chan struct{}, 0, len(g.open))
	for _, ch := range g.open {
		chs = append(chs, ch)
	}
	g.mu.Unlock()
	for _, ch := range chs {
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
