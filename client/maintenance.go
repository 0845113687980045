package client

import (
	"context"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// GC keeps the newest keep commits of each branch of dot (nil: every dot),
// removes the rest and sweeps unreferenced data; dryRun changes nothing.
func (c *Client) GC(ctx context.Context, dot *dotmesh.DotName, keep int, dryRun bool) (*dotmesh.GCResult, error) {
	req := api.GCRequest{Keep: keep, DryRun: dryRun}
	if dot != nil {
		if err := dot.Validate(); err != nil {
			return nil, err
		}
		req.Namespace, req.Name = dot.Namespace, dot.Name
	}
	var out dotmesh.GCResult
	if err := c.long(ctx, methodPost, "/v1/gc", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Verify re-reads the stored data of dot's backend (nil: every backend).
func (c *Client) Verify(ctx context.Context, dot *dotmesh.DotName) (*dotmesh.VerifyResult, error) {
	var req api.VerifyRequest
	if dot != nil {
		if err := dot.Validate(); err != nil {
			return nil, err
		}
		req.Namespace, req.Name = dot.Namespace, dot.Name
	}
	var out dotmesh.VerifyResult
	if err := c.long(ctx, methodPost, "/v1/verify", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
