package client

import (
	"context"
	"fmt"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Contract stubs of issue 18; the server part replaces them.

// Diff compares two states of a dot (see dotmesh.DiffOptions).
func (c *Client) Diff(ctx context.Context, dot dotmesh.DotName, opts dotmesh.DiffOptions) (*dotmesh.Diff, error) {
	return nil, fmt.Errorf("%w: diff", dotmesh.ErrNotSupported)
}

// WorkingStatus describes a branch's working state against its head.
func (c *Client) WorkingStatus(ctx context.Context, dot dotmesh.DotName, opts dotmesh.StatusOptions) (*dotmesh.Status, error) {
	return nil, fmt.Errorf("%w: status", dotmesh.ErrNotSupported)
}
