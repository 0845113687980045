package dotmesh

import (
	"context"
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
