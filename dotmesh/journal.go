package dotmesh

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// A standalone node whose backend is a CommitJournal answers a commit
// before its registry transaction. The commit's record is handed to the
// backend before the data is taken (btrfs: an xattr, which the snapshot's
// own transaction makes durable), so the registry's syncs leave the
// commit's path: a crash after the answer leaves a journaled record that
// NewNode replays. The transaction starts journalDelay after the answer,
// at once when a registry access asks for it; until it is done the dot
// stays locked and every registry access through the node waits for it
// (journalGate), so nothing after the answer reads a registry without
// the commit.
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
	if err := writeJournal(ctx, jr, c, head, branch, rev, ops); err != nil {
		n.log.DebugContext(ctx, "commit not journaled; the registry's transaction comes before the answer", "commit", c.ID, "err", err)
		return false
	}
	return true
}

// writeJournal stores c's record in jr, replacing one it holds.
func writeJournal(ctx context.Context, jr CommitJournal, c *Commit, head *CommitRef, branch string, rev int64, ops []Op) error {
	rec, err := json.Marshal(journalRecord{Commit: c, Branch: branch, Rev: rev, Ops: ops})
	if err == nil && len(rec) > maxJournalRecord {
		err = fmt.Errorf("%w: the record has %d bytes, more than %d", ErrInvalidArgument, len(rec), maxJournalRecord)
	}
	if err != nil {
		return err
	}
	return jr.JournalCommit(ctx, c.Ref(), head, rec)
}

// dropJournal removes c's record after its registry transaction (or
// after no commit was made). No sync: a record the registry already
// holds is dropped again at the next start.
func (n *Node) dropJournal(ctx context.Context, jr CommitJournal, c CommitRef) {
	if err := jr.DropJournal(context.WithoutCancel(ctx), c); err != nil {
		n.log.WarnContext(ctx, "cannot drop a commit's journal record; the next start drops it", "commit", c.ID, "err", err)
	}
}

// journalBackoff spaces the tries of an answered commit's transaction
// that failed for a reason other than a conflict (an I/O error of the
// registry): a transient failure heals without a restart, and registry
// access through the node waits at most their sum (2.3 s) for it.
var journalBackoff = []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond, 80 * time.Millisecond,
	160 * time.Millisecond, 320 * time.Millisecond, 640 * time.Millisecond, time.Second}

// journalDelay is how long an answered commit's registry transaction
// waits before it starts, unless a registry access through the node asks
// for it first (journalGate): the client reads the answer and exits
// meanwhile instead of sharing the machine with the transaction's writes
// and fdatasyncs (a btrfs `dm commit` 1.4-2.0 ms faster on a 2-CPU
// machine, its process's CPU 1.4 ms less). The dot stays locked and the
// record journaled until the transaction is done, as before.
const journalDelay = 3 * time.Millisecond

// awaitJournalTurn waits journalDelay, or less when asked is closed.
func awaitJournalTurn(asked <-chan struct{}) {
	t := time.NewTimer(journalDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-asked:
	}
}

// maxJournalConflicts bounds the re-reads of a branch whose transaction
// conflicted.
const maxJournalConflicts = 3

// recordJournaled is the registry transaction of a commit answered
// before it, run with the dot's lock and the gate held. The branch was
// read under the lock, and on a standalone node every write of a branch
// record through the node holds it too (commit, reset, checkout, branch
// create, delete and rename, transfers; a dot's labels and other fields
// are in the dot's record, which the transaction does not check): the
// transaction cannot conflict with the node's own writes. A conflict is a
// writer outside the node; the branch is read again and, if its head is
// still c's parent, c's record is journaled again at the new revision
// before the transaction is tried again, so a replay matches the
// registry's revision (durable with the file system's next transaction:
// a crash before that, right after such an outside write, still drops
// the commit). Other failures are tried again after journalBackoff; the
// record stays for the next start's replay if they persist.
func (n *Node) recordJournaled(ctx context.Context, jr CommitJournal, b *Branch, rev int64, c *Commit, extra []Op) {
	n.restoreStep("commit answered")
	conflicts, failures := 0, 0
	for {
		conds, ops := commitTxn(c, b, rev, extra)
		_, err := n.ks.txn(ctx, conds, ops)
		if err == nil {
			n.dropJournal(ctx, jr, c.Ref())
			return
		}
		switch {
		case errors.Is(err, ErrConflict) && conflicts < maxJournalConflicts:
			conflicts++
			var cur *Branch
			var crev int64
			cur, crev, err = readBranch(ctx, n.ks.ClusterStore, c.Dot, b.Name)
			if err == nil && cur.Head == c.ID {
				// An earlier try whose outcome its error hid took.
				n.dropJournal(ctx, jr, c.Ref())
				return
			}
			if err == nil && cur.Head == c.Parent {
				n.log.WarnContext(ctx, "an answered commit's branch was written by another writer of the registry; journaling it again at the new revision", "dot", c.Dot, "branch", b.Name, "commit", c.ID)
				if err := writeJournal(ctx, jr, c, nil, b.Name, crev, extra); err != nil {
					// The transaction still goes: only a crash before it loses c.
					n.log.WarnContext(ctx, "cannot journal an answered commit again; a crash before its transaction loses it", "commit", c.ID, "err", err)
				}
				cur.Head = c.ID
				b, rev = cur, crev
				continue
			} else if err == nil {
				err = fmt.Errorf("%w: the branch's head moved to %s", ErrConflict, cur.Head)
			}
		case !errors.Is(err, ErrConflict) && failures < len(journalBackoff):
			n.log.WarnContext(ctx, "recording an answered commit in the registry failed; trying again", "dot", c.Dot, "branch", b.Name, "commit", c.ID, "err", err)
			time.Sleep(journalBackoff[failures])
			failures++
			continue
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
	// asked is closed when an access waits for the transactions in
	// flight, which then start at once (journalDelay); the next enter
	// makes a new one.
	asked chan struct{}
}

// enter marks one transaction in flight; the returned func ends it, and
// asked is closed when an access waits for it.
func (g *journalGate) enter() (leave func(), asked <-chan struct{}) {
	ch := make(chan struct{})
	g.mu.Lock()
	if g.open == nil {
		g.open = make(map[uint64]chan struct{})
	}
	if g.asked == nil {
		g.asked = make(chan struct{})
	}
	asked = g.asked
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
	}, asked
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
	if g.asked != nil {
		close(g.asked)
		g.asked = nil
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
