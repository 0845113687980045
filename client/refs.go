package client

import (
	"context"
	"fmt"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Contract stubs of issue 18; the refs part replaces them.

// Tags lists a dot's tags.
func (c *Client) Tags(ctx context.Context, dot dotmesh.DotName) ([]dotmesh.Tag, error) {
	return nil, fmt.Errorf("%w: tags", dotmesh.ErrNotSupported)
}

// CreateTag tags a commit.
func (c *Client) CreateTag(ctx context.Context, dot dotmesh.DotName, req api.TagRequest) (*dotmesh.Tag, error) {
	return nil, fmt.Errorf("%w: tags", dotmesh.ErrNotSupported)
}

// DeleteTag removes a tag.
func (c *Client) DeleteTag(ctx context.Context, dot dotmesh.DotName, name string) error {
	return fmt.Errorf("%w: tags", dotmesh.ErrNotSupported)
}

// RenameBranch renames a branch.
func (c *Client) RenameBranch(ctx context.Context, dot dotmesh.DotName, oldName, newName string) (*dotmesh.Branch, error) {
	return nil, fmt.Errorf("%w: branch rename", dotmesh.ErrNotSupported)
}

// History returns a page of the history of ref (empty: HEAD of branch).
func (c *Client) History(ctx context.Context, dot dotmesh.DotName, branch, ref string, skip, limit int) (*api.HistoryPage, error) {
	return nil, fmt.Errorf("%w: history", dotmesh.ErrNotSupported)
}
