package client

import (
	"context"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Hooks returns the hooks of a dot (the node's admin only).
func (c *Client) Hooks(ctx context.Context, name dotmesh.DotName) (*dotmesh.DotHooks, error) {
	p, err := c.dotPath(name, "hooks")
	if err != nil {
		return nil, err
	}
	var out dotmesh.DotHooks
	if err := c.do(ctx, methodGet, p, nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AllHooks returns the hooks of every dot that has any.
func (c *Client) AllHooks(ctx context.Context) ([]dotmesh.DotHooks, error) {
	var out []dotmesh.DotHooks
	if err := c.do(ctx, methodGet, "/v1/hooks", nil, nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// SetHook sets the hook of h.Stage on a dot and returns its hooks.
func (c *Client) SetHook(ctx context.Context, name dotmesh.DotName, h dotmesh.Hook) (*dotmesh.DotHooks, error) {
	if err := dotmesh.ValidateName("hook stage", h.Stage); err != nil {
		return nil, err
	}
	p, err := c.dotPath(name, "hooks", h.Stage)
	if err != nil {
		return nil, err
	}
	var out dotmesh.DotHooks
	if err := c.do(ctx, methodPut, p, nil, h, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RemoveHook removes the hook of stage from a dot and returns its hooks.
func (c *Client) RemoveHook(ctx context.Context, name dotmesh.DotName, stage string) (*dotmesh.DotHooks, error) {
	if err := dotmesh.ValidateName("hook stage", stage); err != nil {
		return nil, err
	}
	p, err := c.dotPath(name, "hooks", stage)
	if err != nil {
		return nil, err
	}
	var out dotmesh.DotHooks
	if err := c.do(ctx, methodDelete, p, nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
