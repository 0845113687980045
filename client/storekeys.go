package client

import (
	"context"
	"net/url"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// StoreKeys lists the keys of the node's store encrypted at rest (admin).
func (c *Client) StoreKeys(ctx context.Context) ([]dotmesh.StoreKey, error) {
	var out []dotmesh.StoreKey
	if err := c.do(ctx, methodGet, "/v1/store/keys", nil, nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// AddStoreKey adds password as a key of the node's encrypted store and
// returns its id (admin).
func (c *Client) AddStoreKey(ctx context.Context, password []byte) (string, error) {
	var out api.AddStoreKeyResponse
	if err := c.do(ctx, methodPost, "/v1/store/keys", nil, api.AddStoreKeyRequest{Password: string(password)}, &out); err != nil {
		return "", err
	}
	return out.ID, nil
}

// RemoveStoreKey removes key id of the node's encrypted store; force
// removes the key the node opened it with too (admin).
func (c *Client) RemoveStoreKey(ctx context.Context, id string, force bool) error {
	if err := dotmesh.ValidateStoreKeyID(id); err != nil {
		return err
	}
	var q url.Values
	if force {
		q = url.Values{"force": {"1"}}
	}
	return c.do(ctx, methodDelete, "/v1/store/keys/"+url.PathEscape(id), q, nil, nil)
}
