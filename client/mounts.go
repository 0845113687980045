package client

import (
	"context"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Mount asks the node to make a subdot available to a consumer and to
// record the use (POST /v1/mounts).
func (c *Client) Mount(ctx context.Context, req api.MountRequest) (*dotmesh.Mount, error) {
	var m dotmesh.Mount
	if err := c.do(ctx, methodPost, "/v1/mounts", nil, req, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// Unmount releases a mount (DELETE /v1/mounts).
func (c *Client) Unmount(ctx context.Context, req api.UnmountRequest) error {
	return c.do(ctx, methodDelete, "/v1/mounts", nil, req, nil)
}
