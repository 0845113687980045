package dotmesh

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"
)

// Tags are immutable names for commits of a dot, usable anywhere a ref
// is. They share one namespace with the dot's branches (a tag cannot take
// a branch's name, nor a branch a tag's), so a name in a ref is never
// ambiguous. gc keeps tagged commits, and tags travel with push, pull and
// clone.

// Tag names a commit of a dot.
type Tag struct {
	Name    string    `json:"name"`
	Commit  CommitID  `json:"commit"`
	Author  string    `json:"author,omitempty"`
	Message string    `json:"message,omitempty"`
	Created time.Time `json:"created"`
}

// TagOptions says what a new tag names.
type TagOptions struct {
	// Branch is the branch relative refs start from; empty: current.
	Branch string
	// Ref is the commit to tag (any ref); empty means HEAD.
	Ref     string
	Author  string
	Message string
}

// Tags is a handle on a node's tags.
type Tags struct{ n *Node }

// Tags returns the node's tags.
func (n *Node) Tags() *Tags { return &Tags{n: n} }

// Create tags a commit. ErrAlreadyExists when the dot has a tag or a
// branch of that name (tags never move: delete and create again).
func (t *Tags) Create(ctx context.Context, dot DotName, name string, opts TagOptions) (*Tag, error) {
	return t.n.createTag(ctx, dot, name, opts)
}

// Delete removes a tag (not the commit). ErrNotFound when missing.
func (t *Tags) Delete(ctx context.Context, dot DotName, name string) error {
	return t.n.deleteTag(ctx, dot, name)
}

// List returns the dot's tags by name.
func (t *Tags) List(ctx context.Context, dot DotName) ([]Tag, error) {
	return t.n.listTags(ctx, dot)
}

// RenameBranch renames a branch of a dot, like `git branch -m`: its
// commits, working state, mounts and upstreams stay as they are, and the
// dot's current branch follows the rename. ErrAlreadyExists when the new
// name is taken by a branch or a tag.
func (n *Node) RenameBranch(ctx context.Context, dot DotName, oldName, newName string) (*Branch, error) {
	return n.renameBranch(ctx, dot, oldName, newName)
}

// History returns the first-parent history that ref names (a branch or
// tag name, a commit, HEAD of branch, with ^ and ~N), newest first,
// skipping skip commits and returning at most limit (<= 0: all), and
// whether more follow.
func (n *Node) History(ctx context.Context, dot DotName, branch, ref string, skip, limit int) ([]*Commit, bool, error) {
	return n.history(ctx, dot, branch, ref, skip, limit)
}

// KindTag is the NotFoundError kind of a missing tag; KindRef that of a
// ref whose base names no branch, tag or commit.
const (
	KindTag = "tag"
	KindRef = "branch, tag or commit"
)

func (n *Node) createTag(ctx context.Context, dot DotName, name string, opts TagOptions) (*Tag, error) {
	if err := ValidateNewName("tag", name); err != nil {
		return nil, err
	}
	ref := opts.Ref
	if ref == "" {
		ref = "HEAD"
	}
	if _, err := ParseRef(ref); err != nil {
		return nil, err
	}
	d, b, _, err := n.resolveBranch(ctx, dot, opts.Branch)
	if err != nil {
		return nil, err
	}
	defer n.lockDot(d.ID)()
	c, err := n.resolve(ctx, d, b, ref)
	if err != nil {
		return nil, err
	}
	ckv, err := n.store.Get(ctx, commitKey(d.ID, c.ID))
	if err != nil {
		return nil, err
	}
	t := &Tag{Name: name, Commit: c.ID, Author: opts.Author, Message: opts.Message, Created: n.now().UTC()}
	// The branch key's absence and the commit's revision are conditions
	// too: in a cluster another node may create the branch, or drop the
	// commit, meanwhile.
	_, err = n.store.Txn(ctx,
		[]Condition{IfAbsent(tagKey(d.ID, name)), IfAbsent(branchKey(d.ID, name)), IfRevision(ckv.Key, ckv.Revision)},
		[]Op{PutOp(tagKey(d.ID, name), encode(t))})
	if errors.Is(err, ErrConflict) {
		return nil, n.nameTaken(ctx, d, name)
	}
	if err != nil {
		return nil, err
	}
	n.log.InfoContext(ctx, "tagged", "dot", dot.String(), "tag", name, "commit", c.ID)
	return t, nil
}

// nameTaken says why a new tag or branch cannot be called name: a tag or
// a branch of the dot has it (ErrAlreadyExists), or, when neither is
// found any more, that something changed meanwhile (ErrConflict).
func (n *Node) nameTaken(ctx context.Context, d *Dot, name string) error {
	if _, err := n.store.Get(ctx, tagKey(d.ID, name)); err == nil {
		return fmt.Errorf("%w: dot %s has a tag %s already (tags and branches share names)", ErrAlreadyExists, d.DotName(), name)
	}
	if _, err := n.store.Get(ctx, branchKey(d.ID, name)); err == nil {
		return fmt.Errorf("%w: dot %s has a branch %s already (tags and branches share names)", ErrAlreadyExists, d.DotName(), name)
	}
	return fmt.Errorf("%w: dot %s changed while naming %s; try again", ErrConflict, d.DotName(), name)
}

// checkNameFree refuses a new branch or tag name that the dot's tags or
// branches hold already.
func (n *Node) checkNameFree(ctx context.Context, d *Dot, name string) error {
	for _, k := range []string{tagKey(d.ID, name), branchKey(d.ID, name)} {
		_, err := n.store.Get(ctx, k)
		if err == nil {
			return n.nameTaken(ctx, d, name)
		}
		if !isNotFound(err) {
			return err
		}
	}
	return nil
}

func (n *Node) deleteTag(ctx context.Context, dot DotName, name string) error {
	if err := ValidateName("tag", name); err != nil {
		return err
	}
	d, err := n.Dot(ctx, dot)
	if err != nil {
		return err
	}
	defer n.lockDot(d.ID)()
	kv, err := n.store.Get(ctx, tagKey(d.ID, name))
	if isNotFound(err) {
		return &NotFoundError{Kind: KindTag, Name: name, Dot: dot}
	}
	if err != nil {
		return err
	}
	if _, err := n.store.Txn(ctx, []Condition{IfRevision(kv.Key, kv.Revision)}, []Op{DeleteOp(kv.Key)}); err != nil {
		if errors.Is(err, ErrConflict) {
			return fmt.Errorf("%w: tag %s of %s changed while deleting it; try again", ErrConflict, name, dot)
		}
		return err
	}
	n.log.InfoContext(ctx, "deleted tag", "dot", dot.String(), "tag", name)
	return nil
}

func (n *Node) listTags(ctx context.Context, dot DotName) ([]Tag, error) {
	d, err := n.Dot(ctx, dot)
	if err != nil {
		return nil, err
	}
	ts, err := n.reg.tags(ctx, d.ID)
	if err != nil {
		return nil, err
	}
	out := make([]Tag, len(ts))
	for i, t := range ts {
		out[i] = *t
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// tags returns the tags of dot id, in key order.
func (r registry) tags(ctx context.Context, id DotID) ([]*Tag, error) {
	ts, _, err := listRecords[Tag](ctx, r.s, tagPrefix(id))
	return ts, err
}

// tagged returns the names of the tags of dot id by the commit they name.
func (r registry) tagged(ctx context.Context, id DotID) (map[CommitID][]string, error) {
	ts, err := r.tags(ctx, id)
	if err != nil {
		return nil, err
	}
	out := make(map[CommitID][]string, len(ts))
	for _, t := range ts {
		out[t.Commit] = append(out[t.Commit], t.Name)
	}
	return out, nil
}

// tagsOn returns the tags of dot id on the given commits, by name.
func (n *Node) tagsOn(ctx context.Context, id DotID, commits []*Commit) ([]Tag, error) {
	ts, err := n.reg.tags(ctx, id)
	if err != nil {
		return nil, err
	}
	in := make(map[CommitID]bool, len(commits))
	for _, c := range commits {
		in[c.ID] = true
	}
	var out []Tag
	for _, t := range ts {
		if in[t.Commit] {
			out = append(out, *t)
		}
	}
	return out, nil
}

// maxTransferTags bounds the tags one Finish brings.
const maxTransferTags = 10000

// ValidateTransferTags checks the tags a peer sent with a transfer
// (FinishRequest.Tags) before anything changes: at most 10,000, valid
// names and commit ids, each name once. Every receiving Transport runs
// it (a node, a bucket remote).
func ValidateTransferTags(tags []Tag) error {
	if len(tags) > maxTransferTags {
		return fmt.Errorf("%w: %d tags in one transfer; at most %d", ErrInvalidArgument, len(tags), maxTransferTags)
	}
	seen := make(map[string]bool, len(tags))
	for _, t := range tags {
		if err := ValidateName("tag", t.Name); err != nil {
			return err
		}
		if err := ValidateID("tagged commit", string(t.Commit), false); err != nil {
			return err
		}
		if seen[t.Name] {
			return fmt.Errorf("%w: tag %s is sent twice", ErrInvalidArgument, t.Name)
		}
		seen[t.Name] = true
	}
	return nil
}

// receiveTags makes, for a finished transfer into d (whose lock the
// caller holds), each of the sender's tags that names a commit d holds
// and that d lacks; a tag of that name at the same commit is kept as it
// is, and one at another commit, or a branch of that name, is left alone
// and reported as skipped. The tags go after the branch moved, in
// transactions of at most maxTxnOps: a crash in between leaves some
// missing, and running the transfer again brings them (it finishes
// again while the receiver lacks a tag of the sender's).
func (n *Node) receiveTags(ctx context.Context, d *Dot, tags []Tag) (made, skipped []string, err error) {
	links, err := n.reg.links(ctx, d.ID)
	if err != nil {
		return nil, nil, err
	}
	have, err := n.reg.tags(ctx, d.ID)
	if err != nil {
		return nil, nil, err
	}
	haveAt := make(map[string]CommitID, len(have))
	for _, t := range have {
		haveAt[t.Name] = t.Commit
	}
	branches, err := n.reg.branches(ctx, d.ID)
	if err != nil {
		return nil, nil, err
	}
	isBranch := make(map[string]bool, len(branches))
	for _, b := range branches {
		isBranch[b.Name] = true
	}
	var conds []Condition
	var ops []Op
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		_, err := n.store.Txn(ctx, conds, ops)
		conds, ops = nil, nil
		return err
	}
	for _, t := range tags {
		if _, ok := links[t.Commit]; !ok {
			continue // not here: the start of a shallow history was later
		}
		if at, ok := haveAt[t.Name]; ok || isBranch[t.Name] {
			if !ok || at != t.Commit {
				skipped = append(skipped, t.Name)
			}
			continue
		}
		rec := Tag{Name: t.Name, Commit: t.Commit, Author: t.Author, Message: t.Message, Created: t.Created}
		conds = append(conds, IfAbsent(tagKey(d.ID, t.Name)), IfAbsent(branchKey(d.ID, t.Name)))
		ops = append(ops, PutOp(tagKey(d.ID, t.Name), encode(&rec)))
		made = append(made, t.Name)
		if len(conds) >= maxTxnOps-2 {
			if err := flush(); err != nil {
				return nil, nil, fmt.Errorf("recording the tags of %s: %w", d.DotName(), err)
			}
		}
	}
	if err := flush(); err != nil {
		return nil, nil, fmt.Errorf("recording the tags of %s: %w", d.DotName(), err)
	}
	if len(made)+len(skipped) > 0 {
		n.log.InfoContext(ctx, "transfer tags", "dot", d.DotName().String(), "made", len(made), "skipped", len(skipped))
	}
	return made, skipped, nil
}
