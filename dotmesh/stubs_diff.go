package dotmesh

import (
	"context"
	"fmt"
)

// Stubs of the issue-18 contract, replaced by the diff part.

func (n *Node) diff(ctx context.Context, dot DotName, opts DiffOptions) (*Diff, error) {
	return nil, fmt.Errorf("%w: diff", ErrNotSupported)
}

func (n *Node) workingStatus(ctx context.Context, dot DotName, opts StatusOptions) (*Status, error) {
	return nil, fmt.Errorf("%w: status", ErrNotSupported)
}
