package client

import (
	"context"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Label changes a dot's labels as req says and returns the dot.
func (c *Client) Label(ctx context.Context, name dotmesh.DotName, req api.LabelRequest) (*dotmesh.Dot, error) {
	p, err := c.dotPath(name, "labels")
	if err != nil {
		return nil, err
	}
	var out dotmesh.Dot
	if err := c.do(ctx, methodPost, p, nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
