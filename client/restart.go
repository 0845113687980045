package client

import (
	"context"
	"net/http"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// CheckoutWith is Checkout with every field of the request, Restart
// (stop and start the consumers of mounts around the switch) included.
func (c *Client) CheckoutWith(ctx context.Context, name dotmesh.DotName, req api.CheckoutRequest) (*dotmesh.Dot, error) {
	p, err := dotPath(name, "checkout")
	if err != nil {
		return nil, err
	}
	var d dotmesh.Dot
	if err := c.do(ctx, http.MethodPost, p, nil, req, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// ResetWith is Reset with every field of the request, Restart included.
func (c *Client) ResetWith(ctx context.Context, name dotmesh.DotName, req api.ResetRequest) (*dotmesh.Commit, error) {
	p, err := dotPath(name, "reset")
	if err != nil {
		return nil, err
	}
	var out dotmesh.Commit
	if err := c.do(ctx, http.MethodPost, p, nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
