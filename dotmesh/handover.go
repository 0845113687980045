package dotmesh

import (
	"context"
	"errors"
	"fmt"
)

// Moving a branch between nodes. Node B wants to write branch X, mastered
// by node A:
//
//  1. B asks A to Release X to B. A refuses while consumers on A use X;
//     otherwise it commits X's uncommitted changes ("Automatic commit while
//     moving from A to B") and marks X as moving to B (compare-and-swap).
//     From then on A refuses writes to X. A second node asking meanwhile
//     gets ErrConflict naming B.
//  2. B fetches X's head and its ancestors (ensureHeld).
//  3. B swaps X's master from A to B, guarded by the revision it read, and
//     makes X's working state the head.
//
// A mover that dies between 1 and 3 leaves X marked as moving; the mark
// expires after MoveTimeout or as soon as the mover's registration does.

// autoCommitMessage is the message of the commit a hand-over makes.
func autoCommitMessage(from, to string) string {
	return fmt.Sprintf("Automatic commit while moving from %s to %s", from, to)
}

// acquire makes this node the master of branch b of d, moving it here if
// another node has it, and returns the branch as it is now.
func (n *clustered) acquire(ctx context.Context, d *Dot, branch string) error {
	me := n.cl.opts.NodeID
	b, _, err := n.reg.branch(ctx, d, branch)
	if err != nil {
		return err
	}
	if b.Master == me && b.Moving == "" {
		return nil
	}
	if b.Master == me {
		// Promised to another node: ours again only once that expired.
		if !n.moveStale(ctx, b) {
			return fmt.Errorf("%w: branch %s of %s is being moved to node %s; use it there, or wait %s", ErrConflict, b.Name, d.DotName(), b.Moving, n.cl.opts.MoveTimeout)
		}
		return n.claim(ctx, d, b.Name, me, "")
	}
	var head CommitID
	if b.Master == "" {
		head = b.Head // made before the cluster, or by a take-over in flight
	} else {
		peer, err := n.peer(ctx, b.Master)
		if err != nil {
			return masterError(d, b, err)
		}
		res, err := peer.Release(ctx, d.DotName(), b.Name, me)
		if err != nil {
			return fmt.Errorf("moving branch %s of %s from node %s to %s: %w", b.Name, d.DotName(), b.Master, me, err)
		}
		head = res.Head
		if res.AutoCommit != "" {
			n.log.InfoContext(ctx, "the old master committed uncommitted changes before the move", "dot", d.DotName().String(), "branch", b.Name, "commit", res.AutoCommit)
		}
	}
	if err := n.ensureHeld(ctx, d, head); err != nil {
		return fmt.Errorf("fetching the head of %s@%s: %w", d.DotName(), b.Name, err)
	}
	return n.claim(ctx, d, b.Name, b.Master, head)
}

// claim swaps branch's master from `from` to this node (only if it is still
// from, and moving here or nowhere), then makes the working state its head.
func (n *clustered) claim(ctx context.Context, d *Dot, branch, from string, head CommitID) error {
	me := n.cl.opts.NodeID
	defer n.lockDot(d.ID)()
	b, rev, err := n.reg.branch(ctx, d, branch)
	if err != nil {
		return err
	}
	if b.Master != from || (b.Moving != "" && b.Moving != me && !n.moveStale(ctx, b)) || (head != "" && b.Head != head) {
		who := b.Master
		if b.Moving != "" {
			who = b.Moving
		}
		return fmt.Errorf("%w: branch %s of %s went to node %s meanwhile; use it there or try again", ErrConflict, b.Name, d.DotName(), who)
	}
	be, err := n.backendOf(d)
	if err != nil {
		return err
	}
	if err := n.ensureHeldLocked(ctx, d, b.Head); err != nil {
		return err
	}
	if err := n.makeWorkingState(ctx, be, d, b); err != nil {
		return err
	}
	b.Master, b.Moving, b.MovingSince = me, "", zeroTime
	if _, err := n.reg.putBranch(ctx, d.ID, b, rev); err != nil {
		if errors.Is(err, ErrConflict) {
			return fmt.Errorf("%w: branch %s of %s changed while moving here; try again", ErrConflict, b.Name, d.DotName())
		}
		return err
	}
	n.log.InfoContext(ctx, "branch moved here", "dot", d.DotName().String(), "branch", b.Name, "from", from, "head", b.Head)
	return nil
}

// ensureHeldLocked is ensureHeld for callers holding the dot lock: the
// head was fetched before the lock was taken, so here it only checks.
func (n *clustered) ensureHeldLocked(ctx context.Context, d *Dot, id CommitID) error {
	if id == "" {
		return nil
	}
	holders, err := n.holders(ctx, d.ID, id)
	if err != nil {
		return err
	}
	for _, h := range holders {
		if h == n.cl.opts.NodeID {
			return nil
		}
	}
	return fmt.Errorf("%w: commit %s of %s has not reached this node yet; try again", ErrConflict, short(id), d.DotName())
}

// makeWorkingState makes b's working state on this node equal its head:
// the storage may be missing (never mastered here), hold only replicated
// commits, or hold a working state from an earlier mastership.
func (n *Node) makeWorkingState(ctx context.Context, be StorageBackend, d *Dot, b *Branch) error {
	var head *CommitRef
	if b.Head != "" {
		commits, err := n.reg.commits(ctx, d.ID)
		if err != nil {
			return err
		}
		c, ok := commits[b.Head]
		if !ok {
			return fmt.Errorf("%w: head %s of %s@%s is missing from the registry", ErrCorrupt, short(b.Head), d.DotName(), b.Name)
		}
		r := c.Ref()
		head = &r
	}
	err := be.CreateBranch(ctx, b.Ref(), head)
	if errors.Is(err, ErrAlreadyExists) {
		if head == nil {
			return nil // an empty branch's working state is whatever is there
		}
		err = be.Rollback(ctx, b.Ref(), *head)
	}
	if err != nil {
		return fmt.Errorf("making the working state of %s@%s here: %w", d.DotName(), b.Name, err)
	}
	return nil
}

// moveStale reports whether a branch's moving mark may be ignored: its
// target is gone or took too long.
func (n *clustered) moveStale(ctx context.Context, b *Branch) bool {
	if b.Moving == "" {
		return true
	}
	if n.now().Sub(b.MovingSince) > n.cl.opts.MoveTimeout {
		return true
	}
	_, err := n.node(ctx, b.Moving)
	return errors.Is(err, ErrUnavailable)
}

// Release hands branch of a dot mastered here to node to (the Peer.Release
// of this node): it refuses while consumers here use the branch, commits
// uncommitted changes, and marks the branch as moving to to.
func (c *Cluster) Release(ctx context.Context, name DotName, branch, to string) (*ReleaseResult, error) {
	return c.n.place.release(ctx, name, branch, to)
}

func (n *clustered) release(ctx context.Context, name DotName, branch, to string) (*ReleaseResult, error) {
	if err := ValidateName("branch", branch); err != nil {
		return nil, err
	}
	if err := ValidateName("node id", to); err != nil {
		return nil, err
	}
	me := n.cl.opts.NodeID
	d, err := n.Dot(ctx, name)
	if err != nil {
		return nil, err
	}
	defer n.lockDot(d.ID)()
	b, rev, err := n.reg.branch(ctx, d, branch)
	if err != nil {
		return nil, err
	}
	if b.Master != me {
		return nil, fmt.Errorf("%w: node %s is not the master of %s@%s (node %q is)", ErrConflict, me, name, branch, b.Master)
	}
	if b.Moving != "" && b.Moving != to && !n.moveStale(ctx, b) {
		return nil, fmt.Errorf("%w: branch %s of %s is being moved to node %s already; use it there or try again later", ErrConflict, branch, name, b.Moving)
	}
	ms, err := n.mounts(ctx, d.ID)
	if err != nil {
		return nil, err
	}
	var busy []Mount
	for _, m := range ms {
		if m.Node == me && (m.Branch == branch) {
			busy = append(busy, m)
		}
	}
	if len(busy) > 0 {
		return nil, fmt.Errorf("%w: branch %s of %s is used on node %s by %s; stop them there first", ErrInUse, branch, name, me, describeMounts(busy))
	}
	res := &ReleaseResult{Head: b.Head}
	be, err := n.backendOf(d)
	if err != nil {
		return nil, err
	}
	commits, err := n.reg.commits(ctx, d.ID)
	if err != nil {
		return nil, err
	}
	u, err := be.Usage(ctx, b.Ref(), headRef(commits[b.Head]))
	if err != nil {
		return nil, err
	}
	if u.Dirty {
		c, err := n.commitLocked(ctx, d, b, rev, CommitOptions{Message: autoCommitMessage(me, to), Author: "dotmesh", AllowEmpty: true}, nil) // dirty: checked above
		if err != nil {
			return nil, fmt.Errorf("committing uncommitted changes before the move: %w", err)
		}
		res.Head, res.AutoCommit = c.ID, c.ID
		if b, rev, err = n.reg.branch(ctx, d, branch); err != nil {
			return nil, err
		}
	}
	b.Moving, b.MovingSince = to, n.now().UTC()
	if _, err := n.reg.putBranch(ctx, d.ID, b, rev); err != nil {
		return nil, err
	}
	n.log.InfoContext(ctx, "releasing branch", "dot", name.String(), "branch", branch, "to", to, "head", res.Head)
	return res, nil
}

// TakeOverResult says what a take-over did.
type TakeOverResult struct {
	// From is the node that was master; empty if none was.
	From string `json:"from,omitempty"`
	// Head is the commit the branch's working state now has.
	Head CommitID `json:"head,omitempty"`
}

// TakeOver makes this node the master of a branch whose master is not
// running. The old master's uncommitted changes are lost; every commit is
// kept (other nodes hold them).
func (c *Cluster) TakeOver(ctx context.Context, name DotName, branch string) (*TakeOverResult, error) {
	return c.n.place.takeOver(ctx, name, branch)
}

func (n *clustered) takeOver(ctx context.Context, name DotName, branch string) (*TakeOverResult, error) {
	d, b, _, err := n.resolveBranch(ctx, name, branch)
	if err != nil {
		return nil, err
	}
	res := &TakeOverResult{From: b.Master, Head: b.Head}
	if b.Master == n.cl.opts.NodeID {
		return res, nil
	}
	if b.Master != "" {
		if _, err := n.node(ctx, b.Master); err == nil {
			return nil, fmt.Errorf("%w: node %s, the master of %s@%s, is running: just use the branch here and it moves with its uncommitted changes", ErrConflict, b.Master, name, b.Name)
		} else if !errors.Is(err, ErrUnavailable) {
			return nil, err
		}
	}
	if err := n.ensureHeld(ctx, d, b.Head); err != nil {
		return nil, fmt.Errorf("fetching the head of %s@%s: %w", name, b.Name, err)
	}
	if err := n.claimTakeOver(ctx, d, b.Name, b.Master); err != nil {
		return nil, err
	}
	n.log.WarnContext(ctx, "took over a branch from a node that is not running; its uncommitted changes are lost", "dot", name.String(), "branch", b.Name, "from", b.Master)
	return res, nil
}

// claimTakeOver is claim without the moving check: a dead master's
// promise is void.
func (n *clustered) claimTakeOver(ctx context.Context, d *Dot, branch, from string) error {
	b, _, err := n.reg.branch(ctx, d, branch)
	if err != nil {
		return err
	}
	if b.Moving != "" && !n.moveStale(ctx, b) {
		return fmt.Errorf("%w: branch %s of %s is being moved to node %s; use it there", ErrConflict, branch, d.DotName(), b.Moving)
	}
	return n.claim(ctx, d, branch, from, "")
}

// MoveHere makes this node the master of a branch ("" is the dot's current
// branch), moving it from its master as a write here would: the master
// commits its uncommitted changes and refuses while consumers there use
// the branch. It returns the node the branch came from, "" when it was
// mastered here already. A frontend calls it before giving a consumer on
// this node the branch (the CSI driver on NodePublishVolume).
// ErrNotSupported on a node that is not part of a cluster.
func (c *Cluster) MoveHere(ctx context.Context, name DotName, branch string) (from string, err error) {
	if c.n.nodeID() == "" {
		return "", errNotClustered()
	}
	d, b, _, err := c.n.resolveBranch(ctx, name, branch)
	if err != nil {
		return "", err
	}
	if err := c.n.place.acquire(ctx, d, b.Name); err != nil {
		return "", err
	}
	if b.Master == c.n.nodeID() {
		return "", nil
	}
	return b.Master, nil
}
