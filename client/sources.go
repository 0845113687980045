package client

import (
	"context"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Sources lists the database sources of branch (empty: current).
func (c *Client) Sources(ctx context.Context, name dotmesh.DotName, branch string) ([]dotmesh.Source, error) {
	p, err := c.dotPath(name, "sources")
	if err != nil {
		return nil, err
	}
	var out []dotmesh.Source
	if err := c.do(ctx, methodGet, p, branchQuery(branch), nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// AddSource binds subdot v to a database of kind at url.
func (c *Client) AddSource(ctx context.Context, v dotmesh.VolumeName, spec dotmesh.SourceSpec) error {
	p, err := c.dotPath(v.Dot, "sources")
	if err != nil {
		return err
	}
	req := api.AddSourceRequest{Branch: v.Branch, Subdot: v.SubdotOrDefault(), Kind: spec.Kind, URL: spec.URL, InitSchema: spec.InitSchema}
	return c.do(ctx, methodPost, p, nil, req, nil)
}

// RemoveSource unbinds subdot v.
func (c *Client) RemoveSource(ctx context.Context, v dotmesh.VolumeName) error {
	p, err := c.dotPath(v.Dot, "sources", v.SubdotOrDefault())
	if err != nil {
		return err
	}
	return c.do(ctx, methodDelete, p, branchQuery(v.Branch), nil, nil)
}

// SourceLifecycle runs activate, deactivate or collect-garbage on v.
func (c *Client) SourceLifecycle(ctx context.Context, v dotmesh.VolumeName, action string) error {
	p, err := c.dotPath(v.Dot, "sources", v.SubdotOrDefault(), "lifecycle")
	if err != nil {
		return err
	}
	return c.do(ctx, methodPost, p, nil, api.SourceLifecycleRequest{Branch: v.Branch, Action: action}, nil)
}
