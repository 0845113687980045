package dotmesh

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// CommitOptions describe a new commit.
type CommitOptions struct {
	Message  string
	Author   string
	Metadata map[string]string
	// AllowEmpty commits even when the working state equals the head;
	// otherwise such a commit fails with NothingToCommitError.
	AllowEmpty bool
}

// Commit snapshots every subdot of a branch (the current one when branch
// is empty) atomically and makes it the branch's new head. Commits on one
// branch are serialised. A working state that equals the head (or, before
// the first commit, holds no file) is NothingToCommitError unless
// opts.AllowEmpty, as in git.
func (n *Node) Commit(ctx context.Context, name DotName, branch string, opts CommitOptions) (c *Commit, err error) {
	done := n.begin(OpCommit)
	defer func() { done(OpEvent{Err: err, Commit: c}) }()
	if strings.TrimSpace(opts.Message) == "" {
		return nil, &InvalidOptionError{Option: "CommitOptions.Message", Problem: "a commit needs a message"}
	}
	for k := range opts.Metadata {
		if err := reservedMetadata(ctx, k); err != nil {
			return nil, err
		}
		if err := ValidateName("metadata key", k); err != nil {
			return nil, err
		}
	}
	d, b, _, err := n.resolveBranch(ctx, name, branch)
	if err != nil {
		return nil, err
	}
	if err := n.place.acquire(ctx, d, b.Name); err != nil {
		return nil, err
	}
	unlock := n.lockDot(d.ID)
	defer func() {
		if unlock != nil { // a journaled commit took it
			unlock()
		}
	}()
	master := b.Master
	d, b, rev, err := n.resolveBranch(ctx, name, b.Name)
	if err != nil {
		return nil, err
	}
	if err := n.place.checkMaster(d, b); err != nil {
		return nil, err
	}
	if b.Master != master {
		// The branch moved here for this commit, and the old master
		// committed the changes it had: this commit is still made.
		opts.AllowEmpty = true
	}
	return n.commitLocked(ctx, d, b, rev, opts, &unlock)
}

// resolveBranch returns the dot and the named branch, or the current
// branch when branch is empty.
func (n *Node) resolveBranch(ctx context.Context, name DotName, branch string) (*Dot, *Branch, int64, error) {
	d, err := n.Dot(ctx, name)
	if err != nil {
		return nil, nil, 0, err
	}
	if branch == "" {
		branch = d.Current
	} else if err := ValidateName("branch", branch); err != nil {
		return nil, nil, 0, err
	}
	b, rev, err := n.reg.branch(ctx, d, branch)
	if err != nil {
		return nil, nil, 0, err
	}
	return d, b, rev, nil
}

// checkMaster refuses writes to a branch whose working state is not
// here (it moved away after acquire), or that is being handed over.
func (n *clustered) checkMaster(d *Dot, b *Branch) error {
	if b.Master != n.cl.opts.NodeID {
		return fmt.Errorf("%w: branch %s of %s moved to node %s meanwhile; try again", ErrConflict, b.Name, d.DotName(), b.Master)
	}
	if b.Moving != "" {
		return fmt.Errorf("%w: branch %s of %s is being moved to node %s; use it there", ErrConflict, b.Name, d.DotName(), b.Moving)
	}
	return nil
}

// commitLocked is Commit for callers that hold the dot lock and read b at
// revision rev. Given the lock's release (unlock), it may answer before
// the registry's transaction, which then releases the lock (journal.go).
func (n *Node) commitLocked(ctx context.Context, d *Dot, b *Branch, rev int64, opts CommitOptions, unlock *func()) (made *Commit, err error) {
	name := d.DotName()
	if err := checkRestored(d, b); err != nil {
		return nil, err
	}
	be, err := n.backendOf(d)
	if err != nil {
		return nil, err
	}
	// Hooks (hooks.go): pre-commit before the check for changes (it may
	// write some), quiesce just across the snapshot, post-commit always.
	hooks, err := n.startHooks(ctx, d, b, be)
	if err != nil {
		return nil, err
	}
	if hooks != nil {
		defer func() { hooks.post(ctx, made, err) }()
		if err := hooks.pre(ctx); err != nil {
			return nil, err
		}
	}
	var head *Commit
	if b.Head != "" {
		if head, err = n.reg.commit(ctx, d.ID, b.Head); err != nil {
			return nil, err
		}
	}
	cc, cheap := be.(ChangeCommitter)
	if hooks.of(HookQuiesce) != nil {
		// The check first, then the bare snapshot: a quiesce hook holds
		// its lock or freeze across the snapshot only, not a comparison.
		cheap = false
	}
	check := !opts.AllowEmpty && (b.Head == "" || head != nil)
	if check && !(cheap && head != nil) {
		if err := n.checkSomethingToCommit(ctx, be, d, b, head); err != nil {
			return nil, err
		}
	}
	c := &Commit{
		ID: NewCommitID(), Dot: d.ID, Branch: b.StorageName(), Parent: b.Head,
		Author: opts.Author, Time: n.now().UTC(), Message: opts.Message, Metadata: opts.Metadata,
	}
	// The caller's audit record of this commit, if it gave one
	// (WithAudit), goes in the same transaction.
	audit, audited := n.auditOps(ctx, func(r *AuditRecord) { r.Branch, r.Commit = c.Branch, string(c.ID) })
	// Data first, then one registry transaction that records the commit and
	// moves the head. A crash in between leaves commit data the registry
	// does not know, which reconcile deletes: the old head stays; unless
	// the commit was journaled with its data, which reconcile replays.
	jr, journal := be.(CommitJournal)
	var ifChanged *CommitRef // the commit counts only if it differs from head
	if check && cheap && head != nil {
		ifChanged = new(head.Ref())
	}
	journal = journal && unlock != nil && !n.ks.off && hooks == nil && n.journalCommit(ctx, jr, c, ifChanged, b.Name, rev, audit)
	release, err := hooks.quiesce(ctx)
	if err != nil {
		return nil, err
	}
	var info map[string]string
	if ifChanged != nil {
		var changed bool
		info, changed, err = cc.CommitIfChanged(ctx, c.Ref(), head.Ref())
		release()
		if err == nil && !changed {
			if journal {
				n.dropJournal(ctx, jr, c.Ref())
			}
			return nil, &NothingToCommitError{Dot: name, Branch: b.Name, Head: b.Head}
		}
	} else {
		info, err = be.Commit(ctx, c.Ref())
		release()
	}
	if err != nil {
		if journal {
			n.dropJournal(ctx, jr, c.Ref())
		}
		return nil, fmt.Errorf("committing %s@%s: %w", name, b.Name, err)
	}
	c.Info = recordConsistency(info, hooks.held())
	b.Head = c.ID
	if journal {
		// Durable with the data: answer now; the transaction follows
		// under the dot's lock, and the registry waits for it.
		leave, asked := n.ks.gate.enter()
		release := *unlock
		*unlock = nil
		audited()
		// The log line goes with the transaction: a write to the log
		// file is off the answer's path.
		go func() {
			defer release()
			defer leave()
			awaitJournalTurn(asked)
			ctx := context.WithoutCancel(ctx)
			n.log.InfoContext(ctx, "committed", "dot", name.String(), "branch", b.Name, "commit", c.ID)
			n.recordJournaled(ctx, jr, b, rev, c, audit)
		}()
		return c, nil
	}
	conds, ops := commitTxn(c, b, rev, append(n.place.replicaOps(d.ID, c.ID), audit...))
	_, err = n.store.Txn(ctx, conds, ops)
	if err == nil {
		audited()
	}
	if err != nil {
		if derr := be.DeleteCommit(context.WithoutCancel(ctx), c.Ref()); derr != nil {
			n.log.WarnContext(ctx, "removing data of a commit the registry refused", "commit", c.ID, "err", derr)
		}
		if errors.Is(err, ErrConflict) {
			return nil, fmt.Errorf("%w: branch %s of %s moved while committing; try again", ErrConflict, b.Name, name)
		}
		return nil, err
	}
	n.log.InfoContext(ctx, "committed", "dot", name.String(), "branch", b.Name, "commit", c.ID)
	return c, nil
}

// commitTxn is the registry transaction that records commit c and moves
// branch b, read at revision rev and already pointing at c, to it, with
// extra writes: the commit's own, a journaled commit's after its answer,
// and its replay at a start.
func commitTxn(c *Commit, b *Branch, rev int64, extra []Op) ([]Condition, []Op) {
	conds := []Condition{IfRevision(branchKey(c.Dot, b.Name), rev), IfAbsent(commitKey(c.Dot, c.ID))}
	return conds, append([]Op{PutOp(commitKey(c.Dot, c.ID), encode(c)), PutOp(branchKey(c.Dot, b.Name), encode(b))}, extra...)
}

// checkSomethingToCommit refuses a commit of a working state that the
// backend's exact dirtiness says equals head (nil before the first
// commit). A check that cannot decide does not block the commit.
func (n *Node) checkSomethingToCommit(ctx context.Context, be StorageBackend, d *Dot, b *Branch, head *Commit) error {
	u, err := dirtiness(ctx, be, b.Ref(), headRef(head))
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		n.log.WarnContext(ctx, "cannot tell whether there is anything to commit; committing", "dot", d.DotName().String(), "branch", b.Name, "err", err)
		return nil
	}
	if !u.Dirty && head == nil {
		// A first commit dumps the databases bound to the branch, which
		// the tree does not show.
		if sm, ok := be.(SourceManager); ok {
			if srcs, err := sm.Sources(ctx, b.Ref()); err != nil || len(srcs) > 0 {
				return nil
			}
		}
	}
	if !u.Dirty {
		return &NothingToCommitError{Dot: d.DotName(), Branch: b.Name, Head: b.Head}
	}
	return nil
}

// Log returns the history of a branch (the current one when branch is
// empty), newest first; limit <= 0 means all.
func (n *Node) Log(ctx context.Context, name DotName, branch string, limit int) ([]*Commit, error) {
	if limit > 0 {
		page, _, err := n.LogPage(ctx, name, branch, 0, limit)
		return page, err
	}
	d, b, _, err := n.resolveBranch(ctx, name, branch)
	if err != nil {
		return nil, err
	}
	commits, err := n.reg.commits(ctx, d.ID)
	if err != nil {
		return nil, err
	}
	chain := ancestry(commits, b.Head)
	markPruned(commits, chain)
	if limit > 0 && len(chain) > limit {
		chain = chain[:limit]
	}
	return chain, nil
}

// ResolveRef resolves a ref (HEAD^, master~2, a tag, an id prefix...) in
// a dot; HEAD is the head of branch (the current one when empty).
func (n *Node) ResolveRef(ctx context.Context, name DotName, branch, ref string) (*Commit, error) {
	d, b, _, err := n.resolveBranch(ctx, name, branch)
	if err != nil {
		return nil, err
	}
	return n.resolve(ctx, d, b, ref)
}

// resolve resolves ref in dot d, HEAD being b's head. A name is looked up
// as a branch, then a tag, and only then as a commit id prefix (as git
// does); a prefix matching several commits of the dot is ambiguous unless
// exactly one of them is in b's history.
func (n *Node) resolve(ctx context.Context, d *Dot, b *Branch, ref string) (*Commit, error) {
	r, err := ParseRef(ref)
	if err != nil {
		return nil, err
	}
	// Only ids and parents are decoded for the walk (see LogPage): a
	// browser resolves a commit of a long history on every page. A ref
	// without a commit id prefix walks r.Back parents, read one by one.
	reads := 0
	if r.Prefix == "" {
		reads = r.Back + 1
	}
	lr, err := n.reg.linkReader(ctx, d.ID, reads)
	if err != nil {
		return nil, err
	}
	return n.resolveIn(ctx, d, b, r, lr)
}

// resolveIn is resolve of the parsed ref r among the dot's commits.
func (n *Node) resolveIn(ctx context.Context, d *Dot, b *Branch, r Ref, lr linkReader) (*Commit, error) {
	start, what, err := n.refBase(ctx, d, b, r, lr)
	if err != nil {
		return nil, err
	}
	chain, err := chainOf(lr, start, r.Back+1)
	if err != nil {
		return nil, err
	}
	if len(chain) == 0 {
		return nil, &NotFoundError{Kind: KindCommit, Name: string(start), Dot: d.DotName()}
	}
	if r.Back >= len(chain) {
		return nil, fmt.Errorf("%w: %s goes back %d commits, but %s has only %d before it", ErrNotFound, r, r.Back, what, len(chain)-1)
	}
	return n.reg.commitOf(lr, chain[r.Back])
}

// refBase finds the commit r's base names, and says in words what it is.
func (n *Node) refBase(ctx context.Context, d *Dot, b *Branch, r Ref, lr linkReader) (CommitID, string, error) {
	if r.Name == "" {
		if b.Head == "" {
			return "", "", &NoCommitsError{Dot: d.DotName(), Branch: b.Name}
		}
		return b.Head, "branch " + b.Name, nil
	}
	{
		other, _, err := n.reg.branch(ctx, d, r.Name)
		if err == nil {
			if other.Head == "" {
				return "", "", &NoCommitsError{Dot: d.DotName(), Branch: other.Name}
			}
			return other.Head, "branch " + other.Name, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return "", "", err
		}
		kv, err := n.store.Get(ctx, tagKey(d.ID, r.Name))
		if err == nil {
			t, err := decode[Tag](kv)
			if err != nil {
				return "", "", err
			}
			return t.Commit, "tag " + t.Name, nil
		}
		if !isNotFound(err) {
			return "", "", err
		}
	}
	if r.Prefix == "" {
		return "", "", &NotFoundError{Kind: KindRef, Name: r.Name, Dot: d.DotName()}
	}
	commits, err := lr.all()
	if err != nil {
		return "", "", err
	}
	var matches []CommitID
	for id := range commits {
		if strings.HasPrefix(string(id), r.Prefix) {
			matches = append(matches, id)
		}
	}
	if len(matches) > 1 {
		var mine []CommitID
		for _, id := range commits.chain(b.Head) {
			if strings.HasPrefix(string(id), r.Prefix) {
				mine = append(mine, id)
			}
		}
		if len(mine) != 1 {
			return "", "", fmt.Errorf("%w: commit prefix %s matches %d commits of dot %s; give more digits", ErrAmbiguous, r.Prefix, len(matches), d.DotName())
		}
		matches = mine
	}
	if len(matches) == 0 { // it reads as a commit id: say so
		return "", "", &NotFoundError{Kind: KindCommit, Name: r.Prefix, Dot: d.DotName()}
	}
	return matches[0], "commit " + string(matches[0]), nil
}

// inHistory refuses a commit that is not in b's history, for the verbs
// that move a branch along its own line (reset).
func (n *Node) inHistory(ctx context.Context, d *Dot, b *Branch, c *Commit) error {
	commits, err := n.reg.links(ctx, d.ID)
	if err != nil {
		return err
	}
	for _, id := range commits.chain(b.Head) {
		if id == c.ID {
			return nil
		}
	}
	return fmt.Errorf("%w: commit %s is not in the history of branch %s of %s", ErrNotFound, c.ID, b.Name, d.DotName())
}

// ResetOptions tune Reset.
type ResetOptions struct {
	// Hard discards uncommitted changes. Without it, Reset refuses when the
	// branch has any.
	Hard bool
	// Restart stops and starts consumers of the branch's mounts around the
	// reset; without it, Reset refuses while there are any.
	Restart bool
}

// Reset moves a branch (the current one when branch is empty) back to the
// commit ref names, restoring its working state to that commit. Commits
// that no branch can reach any more are deleted; other branches' commits
// are never touched.
func (n *Node) Reset(ctx context.Context, name DotName, branch, ref string, opts ResetOptions) (to *Commit, err error) {
	done := n.begin(OpReset)
	defer func() { done(OpEvent{Err: err, Commit: to}) }()
	d, b, _, err := n.resolveBranch(ctx, name, branch)
	if err != nil {
		return nil, err
	}
	if c, err := n.resolve(ctx, d, b, ref); err != nil {
		return nil, err // a bad ref must not stop anybody's containers
	} else if err := n.inHistory(ctx, d, b, c); err != nil {
		return nil, err
	}
	if err := n.place.acquire(ctx, d, b.Name); err != nil {
		return nil, err
	}
	restart, err := n.guardMounts(ctx, d, b.Name, "reset", opts.Restart)
	if err != nil {
		return nil, err
	}
	defer restart() // after the lock in reset is released: consumers mount again
	return n.reset(ctx, name, b.Name, ref, opts)
}

func (n *Node) reset(ctx context.Context, name DotName, branch, ref string, opts ResetOptions) (*Commit, error) {
	d, err := n.Dot(ctx, name)
	if err != nil {
		return nil, err
	}
	defer n.lockDot(d.ID)()
	d, b, rev, err := n.resolveBranch(ctx, name, branch)
	if err != nil {
		return nil, err
	}
	if err := n.place.checkMaster(d, b); err != nil {
		return nil, err
	}
	target, err := n.resolve(ctx, d, b, ref)
	if err != nil {
		return nil, err
	}
	if err := n.inHistory(ctx, d, b, target); err != nil {
		return nil, err
	}
	be, err := n.backendOf(d)
	if err != nil {
		return nil, err
	}
	commits, err := n.reg.commits(ctx, d.ID)
	if err != nil {
		return nil, err
	}
	if !opts.Hard {
		u, err := be.Usage(ctx, b.Ref(), headRef(commits[b.Head]))
		if err != nil {
			return nil, err
		}
		if u.Dirty {
			return nil, &UncommittedError{Dot: name, Branch: b.Name, Bytes: u.DirtyBytes}
		}
	}
	orphans, err := n.restoreLocked(ctx, be, d, b, rev, target)
	if err != nil {
		return nil, err
	}
	n.log.InfoContext(ctx, "reset", "dot", name.String(), "branch", b.Name, "to", target.ID, "dropped", len(orphans))
	return target, nil
}

// orphansAfterReset lists the commits reachable from b's old head that no
// branch reaches once b points at target.
func (n *Node) orphansAfterReset(ctx context.Context, d *Dot, b *Branch, target *Commit, commits map[CommitID]*Commit) []*Commit {
	keep := make(map[CommitID]bool)
	for _, c := range ancestry(commits, target.ID) {
		keep[c.ID] = true
	}
	branches, err := n.reg.branches(ctx, d.ID)
	if err != nil {
		return nil // keeping too much is safe; the next reset or GC retries
	}
	for _, other := range branches {
		if other.Name == b.Name {
			continue
		}
		for _, c := range ancestry(commits, other.Head) {
			keep[c.ID] = true
		}
		keep[other.Origin] = true
	}
	tagged, err := n.reg.tagged(ctx, d.ID)
	if err != nil {
		return nil
	}
	for id := range tagged { // a tag keeps its commit and what leads to it
		for _, c := range ancestry(commits, id) {
			keep[c.ID] = true
		}
	}
	var out []*Commit
	for _, c := range ancestry(commits, b.Head) {
		if !keep[c.ID] {
			out = append(out, c)
		}
	}
	return out
}
