package client

import (
	"context"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// IncomingTransfers lists the node's unfinished incoming transfers.
func (c *Client) IncomingTransfers(ctx context.Context) ([]dotmesh.IncomingTransfer, error) {
	var out []dotmesh.IncomingTransfer
	if err := c.do(ctx, methodGet, "/v1/incoming", nil, nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// AbortIncoming ends the unfinished incoming transfers of dot (into
// branch only, when not empty) and frees what they stored.
func (c *Client) AbortIncoming(ctx context.Context, dot dotmesh.DotName, branch string) (*dotmesh.AbortResult, error) {
	if err := dot.Validate(); err != nil {
		return nil, err
	}
	if branch != "" {
		if err := dotmesh.ValidateName("branch", branch); err != nil {
			return nil, err
		}
	}
	var out dotmesh.AbortResult
	req := api.AbortIncomingRequest{Namespace: dot.Namespace, Name: dot.Name, Branch: branch}
	if err := c.do(ctx, methodPost, "/v1/incoming/abort", nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
