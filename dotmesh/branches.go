package dotmesh

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Branches lists a dot's branches, sorted by name.
func (n *Node) Branches(ctx context.Context, name DotName) ([]*Branch, error) {
	d, err := n.Dot(ctx, name)
	if err != nil {
		return nil, err
	}
	bs, err := n.reg.branches(ctx, d.ID)
	if err != nil {
		return nil, err
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].Name < bs[j].Name })
	return bs, nil
}

// CreateBranch makes branch newName of a dot from the commit that from
// names (a ref, resolved on the current branch; empty means its HEAD). The
// new branch's history is its origin's.
func (n *Node) CreateBranch(ctx context.Context, name DotName, newName, from string) (*Branch, error) {
	if err := ValidateNewName("branch", newName); err != nil {
		return nil, err
	}
	d, err := n.Dot(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := n.place.prefetch(ctx, d, d.Current, from); err != nil {
		return nil, err
	}
	defer n.lockDot(d.ID)()
	return n.createBranch(ctx, d, newName, d.Current, from)
}

// prefetch fetches the commit ref names on branch, in a cluster, before
// the dot lock is taken (fetching takes it too).
func (n *clustered) prefetch(ctx context.Context, d *Dot, branch, ref string) error {
	if ref == "" {
		ref = "HEAD"
	}
	b, _, err := n.reg.branch(ctx, d, branch)
	if err != nil {
		return err
	}
	c, err := n.resolve(ctx, d, b, ref)
	if err != nil {
		return err
	}
	return n.ensureHeld(ctx, d, c.ID)
}

func (n *Node) createBranch(ctx context.Context, d *Dot, newName, srcBranch, from string) (*Branch, error) {
	if _, _, err := n.reg.branch(ctx, d, newName); err == nil {
		return nil, fmt.Errorf("%w: dot %s has a branch %s already", ErrAlreadyExists, d.DotName(), newName)
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if err := n.checkNameFree(ctx, d, newName); err != nil {
		return nil, err
	}
	src, _, err := n.reg.branch(ctx, d, srcBranch)
	if err != nil {
		return nil, err
	}
	if from == "" {
		from = "HEAD"
	}
	origin, err := n.resolve(ctx, d, src, from)
	if err != nil {
		return nil, err
	}
	be, err := n.backendOf(d)
	if err != nil {
		return nil, err
	}
	storage, err := n.storageFor(ctx, d, newName)
	if err != nil {
		return nil, err
	}
	br := &Branch{Dot: d.ID, Name: newName, Head: origin.ID, Origin: origin.ID, Created: n.now().UTC(), Master: n.nodeID(), Storage: storage}
	if err := n.place.ensureHeldLocked(ctx, d, origin.ID); err != nil {
		return nil, err
	}
	ref := origin.Ref()
	if err := be.CreateBranch(ctx, br.Ref(), &ref); err != nil {
		return nil, fmt.Errorf("creating storage for branch %s of %s: %w", newName, d.DotName(), err)
	}
	if _, err := n.store.Txn(ctx, []Condition{IfAbsent(branchKey(d.ID, newName)), IfAbsent(tagKey(d.ID, newName))}, []Op{PutOp(branchKey(d.ID, newName), encode(br))}); err != nil {
		n.cleanupBranch(be, br.Ref())
		if errors.Is(err, ErrConflict) {
			return nil, n.nameTaken(ctx, d, newName)
		}
		return nil, err
	}
	n.log.InfoContext(ctx, "created branch", "dot", d.DotName().String(), "branch", newName, "from", origin.ID)
	return br, nil
}

// CheckoutOptions tune Checkout.
type CheckoutOptions struct {
	// Create makes the branch from the current branch's HEAD first.
	Create bool
	// Restart stops and starts consumers of unpinned mounts (which follow
	// the current branch) around the switch; without it, Checkout refuses
	// while there are any.
	Restart bool
}

// Checkout makes branch the dot's current branch. Every branch keeps its
// own working state, so nothing is discarded.
func (n *Node) Checkout(ctx context.Context, name DotName, branch string, opts CheckoutOptions) (*Dot, error) {
	r, err := n.checkoutReport(ctx, name, branch, opts, false)
	if err != nil {
		return nil, err
	}
	return &r.Dot, nil
}

// CheckoutReport is what a checkout did, for a caller that tells a user.
type CheckoutReport struct {
	Dot
	// Previous is the branch that was current before, when it changed.
	Previous string `json:"previous,omitempty"`
	// Path is the dot's stable path (see Path), which now shows the new
	// branch; empty without Options.PathsDir.
	Path string `json:"path,omitempty"`
	// Holders are processes on this node's machine with their working
	// directory or an open file in the previous branch's tree: they still
	// see that branch (at most maxHolders of them).
	Holders []Holder `json:"holders,omitempty"`
}

// CheckoutReport is Checkout that also names the processes still holding
// the previous branch's working tree. They are never a reason to refuse.
func (n *Node) CheckoutReport(ctx context.Context, name DotName, branch string, opts CheckoutOptions) (*CheckoutReport, error) {
	return n.checkoutReport(ctx, name, branch, opts, true)
}

func (n *Node) checkoutReport(ctx context.Context, name DotName, branch string, opts CheckoutOptions, scan bool) (_ *CheckoutReport, err error) {
	done := n.begin(OpCheckout)
	defer func() { done(OpEvent{Err: err}) }()
	if err := ValidateName("branch", branch); err != nil {
		return nil, err
	}
	d, err := n.Dot(ctx, name)
	if err != nil {
		return nil, err
	}
	if d.Current == branch && !opts.Create {
		return n.reportOf(d, "", ""), nil
	}
	if opts.Create {
		if err := n.place.prefetch(ctx, d, d.Current, "HEAD"); err != nil {
			return nil, err
		}
	}
	restart, err := n.guardMounts(ctx, d, "", "checkout", opts.Restart)
	if err != nil {
		return nil, err
	}
	defer restart() // after the lock below is released: consumers mount again
	d, prev, prevRoot, err := n.checkout(ctx, d, branch, opts.Create)
	if err != nil {
		return nil, err
	}
	r := n.reportOf(d, prev, prevRoot)
	if scan && prevRoot != "" {
		r.Holders = holders(prevRoot, maxHolders)
	}
	return r, nil
}

func (n *Node) reportOf(d *Dot, prev, prevRoot string) *CheckoutReport {
	r := &CheckoutReport{Dot: *d, Previous: prev}
	if n.paths != "" {
		r.Path = n.linkPath(d.DotName())
	}
	return r
}

// checkout switches the current branch and the dot's stable path, and
// returns the branch that was current and its working tree's directory
// ("" when not on this node).
func (n *Node) checkout(ctx context.Context, d *Dot, branch string, create bool) (_ *Dot, prev, prevRoot string, _ error) {
	defer n.lockDot(d.ID)()
	name := d.DotName()
	d, rev, err := n.reg.dot(ctx, d.ID)
	if err != nil {
		return nil, "", "", err
	}
	if create {
		if _, err := n.createBranch(ctx, d, branch, d.Current, "HEAD"); err != nil {
			return nil, "", "", err
		}
	} else if _, _, err := n.reg.branch(ctx, d, branch); err != nil {
		return nil, "", "", err
	}
	prev = d.Current
	if prev == branch {
		return d, "", "", nil
	}
	prevRoot = n.localRoot(ctx, d, prev)
	d.Current = branch
	if _, err := n.reg.putDot(ctx, d, rev); err != nil {
		if errors.Is(err, ErrConflict) {
			return nil, "", "", fmt.Errorf("%w: dot %s changed during checkout; try again", ErrConflict, name)
		}
		return nil, "", "", err
	}
	if err := n.relinkLocked(ctx, d); err != nil {
		// The registry is the truth; the next Path or start links again.
		n.log.WarnContext(ctx, "pointing the stable path at the checked-out branch", "dot", name.String(), "branch", branch, "err", err)
	}
	return d, prev, prevRoot, nil
}

// localRoot is the directory of a branch's working tree when it is on
// this node, else "".
func (n *Node) localRoot(ctx context.Context, d *Dot, branch string) string {
	b, _, err := n.reg.branch(ctx, d, branch)
	if err != nil || !n.place.local(b) {
		return ""
	}
	be, err := n.backendOf(d)
	if err != nil {
		return ""
	}
	root, err := be.SubdotPath(ctx, b.Ref(), RootSubdot)
	if err != nil {
		return ""
	}
	return root
}

// DeleteBranch removes a branch that is not the dot's current one, with
// the commits only it reaches.
func (n *Node) DeleteBranch(ctx context.Context, name DotName, branch string) error {
	if err := ValidateName("branch", branch); err != nil {
		return err
	}
	d, err := n.Dot(ctx, name)
	if err != nil {
		return err
	}
	defer n.lockDot(d.ID)()
	d, b, rev, err := n.resolveBranch(ctx, name, branch)
	if err != nil {
		return err
	}
	if d.Current == b.Name {
		return fmt.Errorf("%w: branch %s is the current branch of %s; check out another branch first", ErrInUse, b.Name, name)
	}
	be, err := n.backendOf(d)
	if err != nil {
		return err
	}
	commits, err := n.reg.commits(ctx, d.ID)
	if err != nil {
		return err
	}
	branches, err := n.reg.branches(ctx, d.ID)
	if err != nil {
		return err
	}
	// Data of a branch lives in its storage, so a branch others were made
	// from cannot go before them (git can, having one object store).
	keep := make(map[CommitID]bool)
	var dependents []string
	for _, other := range branches {
		if other.Name == b.Name {
			continue
		}
		for _, c := range ancestry(commits, other.Head) {
			keep[c.ID] = true
			if c.Branch == b.StorageName() {
				dependents = append(dependents, other.Name)
				break
			}
		}
	}
	if len(dependents) > 0 {
		sort.Strings(dependents)
		return fmt.Errorf("%w: branches %s were made from commits of branch %s; delete them first", ErrInUse, strings.Join(dependents, ", "), b.Name)
	}
	for _, other := range branches {
		if other.Name != b.Name {
			for _, c := range ancestry(commits, other.Head) {
				keep[c.ID] = true
			}
		}
	}
	tagged, err := n.reg.tagged(ctx, d.ID)
	if err != nil {
		return err
	}
	// A tagged commit keeps its history; one whose data is in this
	// branch's storage keeps the branch, as a dependent branch does.
	var tags []string
	for id, names := range tagged {
		for _, c := range ancestry(commits, id) {
			keep[c.ID] = true
			if c.Branch == b.StorageName() {
				tags = append(tags, names...)
				break
			}
		}
	}
	if len(tags) > 0 {
		sort.Strings(tags)
		return fmt.Errorf("%w: tags %s name commits of branch %s; delete them first", ErrInUse, strings.Join(tags, ", "), b.Name)
	}
	ops := []Op{DeleteOp(branchKey(d.ID, b.Name))}
	var elsewhere []*Commit // unreachable commits stored on other branches
	for _, c := range commits {
		if keep[c.ID] {
			continue
		}
		ops = append(ops, DeleteOp(commitKey(d.ID, c.ID)))
		if c.Branch != b.StorageName() {
			elsewhere = append(elsewhere, c)
		}
	}
	if _, err := n.store.Txn(ctx, []Condition{IfRevision(branchKey(d.ID, b.Name), rev)}, ops); err != nil {
		if errors.Is(err, ErrConflict) {
			return fmt.Errorf("%w: branch %s of %s moved while deleting it; try again", ErrConflict, b.Name, name)
		}
		return err
	}
	n.dropScratch(d.ID)
	if err := be.DeleteBranch(ctx, b.Ref()); err != nil {
		n.log.WarnContext(ctx, "removing storage of a deleted branch", "branch", b.Ref().String(), "err", err)
	}
	for _, c := range elsewhere {
		if err := be.DeleteCommit(ctx, c.Ref()); err != nil {
			n.log.WarnContext(ctx, "deleting data of an unreachable commit", "commit", c.ID, "err", err)
		}
	}
	return nil
}
