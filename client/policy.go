package client

import (
	"context"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// SetPolicy sets dot's policy (req names no selector) and returns it.
func (c *Client) SetPolicy(ctx context.Context, dot dotmesh.DotName, req api.PolicyRequest) (*dotmesh.Policy, error) {
	p, err := c.dotPath(dot, "policy")
	if err != nil {
		return nil, err
	}
	var out dotmesh.Policy
	if err := c.do(ctx, methodPost, p, nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SetSelectorPolicy sets the policy of the selector req names (admin).
func (c *Client) SetSelectorPolicy(ctx context.Context, req api.PolicyRequest) (*dotmesh.Policy, error) {
	var out dotmesh.Policy
	if err := c.do(ctx, methodPost, "/v1/policies", nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RemovePolicy removes dot's own policy.
func (c *Client) RemovePolicy(ctx context.Context, dot dotmesh.DotName) error {
	p, err := c.dotPath(dot, "policy")
	if err != nil {
		return err
	}
	return c.do(ctx, methodDelete, p, nil, nil, nil)
}

// RemoveSelectorPolicy removes the policy of the selector req names.
func (c *Client) RemoveSelectorPolicy(ctx context.Context, req api.PolicyRemoveRequest) error {
	return c.do(ctx, methodPost, "/v1/policies/remove", nil, req, nil)
}

// Policies lists the selectors' policies and those of the dots the
// caller may read.
func (c *Client) Policies(ctx context.Context) ([]dotmesh.Policy, error) {
	var out []dotmesh.Policy
	if err := c.do(ctx, methodGet, "/v1/policies", nil, nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// PolicyStatus returns the policy that applies to dot and how its
// schedule last ran.
func (c *Client) PolicyStatus(ctx context.Context, dot dotmesh.DotName) (*dotmesh.PolicyStatus, error) {
	p, err := c.dotPath(dot, "policy")
	if err != nil {
		return nil, err
	}
	var out dotmesh.PolicyStatus
	if err := c.do(ctx, methodGet, p, nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// PrunePolicy applies dot's policy's grid (or req.Keep's) now; with
// req.DryRun it only says what would go.
func (c *Client) PrunePolicy(ctx context.Context, dot dotmesh.DotName, req api.PolicyPruneRequest) (*dotmesh.GCResult, error) {
	p, err := c.dotPath(dot, "policy", "prune")
	if err != nil {
		return nil, err
	}
	var out dotmesh.GCResult
	if err := c.long(ctx, methodPost, p, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
