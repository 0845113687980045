package dotmesh

import (
	"context"
	"fmt"
)

// Stubs of the issue-18 contract, replaced by the refs part.

func (n *Node) createTag(ctx context.Context, dot DotName, name string, opts TagOptions) (*Tag, error) {
	return nil, fmt.Errorf("%w: tags", ErrNotSupported)
}

func (n *Node) deleteTag(ctx context.Context, dot DotName, name string) error {
	return fmt.Errorf("%w: tags", ErrNotSupported)
}

func (n *Node) listTags(ctx context.Context, dot DotName) ([]Tag, error) {
	return nil, fmt.Errorf("%w: tags", ErrNotSupported)
}

func (n *Node) renameBranch(ctx context.Context, dot DotName, oldName, newName string) (*Branch, error) {
	return nil, fmt.Errorf("%w: branch rename", ErrNotSupported)
}

func (n *Node) history(ctx context.Context, dot DotName, branch, ref string, skip, limit int) ([]*Commit, bool, error) {
	return nil, false, fmt.Errorf("%w: history of a ref", ErrNotSupported)
}
