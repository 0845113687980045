package dotmesh

import (
	"context"
	"errors"
	"fmt"
)

// Restoring a branch's working state from a commit (reset, a transfer
// moving a branch, a working state made again on this node) rewrites the
// whole tree, which no backend does in one step as far as the registry
// is concerned: the dump backend writes file by file (and reloads
// databases), zfs and btrfs switch storage before the head moves. The
// Node makes it one step as seen from outside with a journal entry in
// the branch record itself (Branch.Restoring):
//
//  1. Restoring = target                          one registry txn
//  2. Rollback(branch, target)                    repeatable
//  3. Head = target, Restoring = "", commits no   one registry txn
//     branch reaches any more dropped
//  4. the dropped commits' data deleted           (reconcile repeats)
//
// A crash before 1 or after 3 leaves a consistent branch; in between, the
// mark stays and reconcile finishes the restore at the next start (roll
// forward: the user asked to discard the old state, and the target's data
// is known to be here), so after a restart the tree is wholly the old
// state with the old head or wholly the target with the target as head.
// Rolling forward in place keeps the working directory the same
// directory, which bind mounts (Docker, CSI) and shells inside it rely on.

// restoreLocked makes b's working state commit target and its head
// target, journalled as above. The caller holds the dot lock and read b
// at revision rev. It returns the commits dropped because nothing reaches
// them any more. An error after step 1 leaves the mark: the working
// state may be partly restored, Commit refuses, and running the reset
// again (or a restart) finishes it. The ops in also go into the
// transaction that records the head.
func (n *Node) restoreLocked(ctx context.Context, be StorageBackend, d *Dot, b *Branch, rev int64, target *Commit, also ...Op) ([]*Commit, error) {
	return n.restoreLockedWith(ctx, be, d, b, rev, target, nil, also...)
}

// restoreLockedWith is restoreLocked writing rec, when not nil and not
// written yet, in the transaction of the mark (a transfer's Finish: the
// received head's record, see deferredRecord).
func (n *Node) restoreLockedWith(ctx context.Context, be StorageBackend, d *Dot, b *Branch, rev int64, target *Commit, rec *deferredRecord, also ...Op) ([]*Commit, error) {
	name := d.DotName()
	marked := *b
	marked.Restoring = target.ID
	var conds []Condition
	var ops []Op
	withRec := rec != nil && rec.commit != nil && !rec.done
	if withRec {
		conds, ops = rec.conds, rec.ops
	}
	rev, err := n.reg.putBranchWith(ctx, d.ID, &marked, rev, conds, ops)
	if err == nil && withRec {
		rec.done = true
		rec.logged(ctx)
	}
	if err != nil {
		if errors.Is(err, ErrConflict) {
			return nil, fmt.Errorf("%w: branch %s of %s changed meanwhile; run it again", ErrConflict, b.Name, name)
		}
		return nil, err
	}
	n.restoreStep("marked")
	// The rewrite is not cut short by a client that goes away: it is one
	// step, and a half-written tree helps nobody.
	ctx = context.WithoutCancel(ctx)
	if err := be.Rollback(ctx, b.Ref(), target.Ref()); err != nil {
		return nil, &PartlyRestoredError{Dot: name, Branch: b.Name, Target: target.ID, Err: err}
	}
	n.restoreStep("restored")
	return n.finishRestore(ctx, be, d, &marked, rev, target, also...)
}

// finishRestore is step 3 and 4 for a branch marked Restoring = target
// at revision rev whose working state holds target.
func (n *Node) finishRestore(ctx context.Context, be StorageBackend, d *Dot, b *Branch, rev int64, target *Commit, also ...Op) ([]*Commit, error) {
	commits, err := n.reg.commits(ctx, d.ID)
	if err != nil {
		return nil, err
	}
	orphans := n.orphansAfterReset(ctx, d, b, target, commits)
	done := *b
	done.Head, done.Restoring = target.ID, ""
	ops := append([]Op{PutOp(branchKey(d.ID, b.Name), encode(&done))}, also...)
	for _, c := range orphans {
		ops = append(ops, DeleteOp(commitKey(d.ID, c.ID)))
	}
	if _, err := n.store.Txn(ctx, []Condition{IfRevision(branchKey(d.ID, b.Name), rev)}, ops); err != nil {
		if errors.Is(err, ErrConflict) {
			return nil, fmt.Errorf("%w: branch %s of %s changed while its working state was restored to %s; run it again", ErrConflict, b.Name, d.DotName(), short(target.ID))
		}
		return nil, err
	}
	*b = done
	n.restoreStep("recorded")
	if len(orphans) > 0 {
		n.dropScratch(d.ID)
	}
	for _, c := range orphans {
		if err := be.DeleteCommit(ctx, c.Ref()); err != nil {
			n.log.WarnContext(ctx, "deleting data of an unreachable commit", "commit", c.ID, "err", err)
		}
	}
	return orphans, nil
}

// finishRestores rolls forward every restore of a working state on this
// node that a crash interrupted (see restoreLocked). A restore that
// cannot finish (the target's data is gone, a database source does not
// answer) keeps its mark, and the branch refuses commits until a reset
// succeeds on it; the node starts anyway.
func (n *Node) finishRestores(ctx context.Context, d *Dot, branches []*Branch, commits map[CommitID]*Commit) {
	be, ok := n.backends[d.Backend]
	if !ok {
		return
	}
	for _, b := range branches {
		if b.Restoring == "" || b.Master != n.self {
			continue
		}
		log := n.log.With("dot", d.DotName().String(), "branch", b.Name, "to", b.Restoring)
		target, ok := commits[b.Restoring]
		if !ok {
			log.Warn("cannot finish an interrupted restore: its commit is not in the registry; reset the branch hard to HEAD")
			continue
		}
		cur, rev, err := n.reg.branch(ctx, d, b.Name)
		if err != nil || cur.Restoring != b.Restoring {
			continue // changed meanwhile (another node of the cluster)
		}
		log.Warn("finishing a restore of a working state that was interrupted (a crash mid-reset or mid-transfer)")
		if err := be.Rollback(ctx, b.Ref(), target.Ref()); err != nil {
			log.Warn("cannot finish an interrupted restore; the branch refuses commits until a hard reset succeeds on it (to HEAD, or the target)", "err", err)
			continue
		}
		if _, err := n.finishRestore(ctx, be, d, cur, rev, target); err != nil {
			log.Warn("cannot record a finished restore; the node tries again at its next start", "err", err)
			continue
		}
		*b = *cur
	}
}

// checkRestored refuses to commit a working state that is partly
// restored (an interrupted restore that could not be finished).
func checkRestored(d *Dot, b *Branch) error {
	if b.Restoring == "" {
		return nil
	}
	return &PartlyRestoredError{Dot: d.DotName(), Branch: b.Name, Target: b.Restoring}
}

// restoreStep calls the test hook, if set, at each journal step.
func (n *Node) restoreStep(step string) {
	if n.onRestoreStep != nil {
		n.onRestoreStep(step)
	}
}
