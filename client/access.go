package client

import (
	"context"
	"fmt"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// CONTRACT STUB: the server stream (h-server) implements these. Never merged to main as is.

var errStub = fmt.Errorf("%w: access client not built yet", dotmesh.ErrNotSupported)

// Me returns who the client's key authenticates as.
func (c *Client) Me(ctx context.Context) (*dotmesh.Principal, error) { return nil, errStub }

// Users lists the node's users (admin).
func (c *Client) Users(ctx context.Context) ([]dotmesh.User, error) { return nil, errStub }

// AddUser creates a user and their first key (admin).
func (c *Client) AddUser(ctx context.Context, name, label string) (*api.NewKeyResponse, error) {
	return nil, errStub
}

// RemoveUser deletes a user (admin).
func (c *Client) RemoveUser(ctx context.Context, name string) error { return errStub }

// Keys lists a user's keys (the user or an admin).
func (c *Client) Keys(ctx context.Context, user string) ([]dotmesh.KeyInfo, error) {
	return nil, errStub
}

// AddKey makes another key for user (the user or an admin).
func (c *Client) AddKey(ctx context.Context, user, label string, readOnly bool) (*api.NewKeyResponse, error) {
	return nil, errStub
}

// RevokeKey deletes one of user's keys (the user or an admin).
func (c *Client) RevokeKey(ctx context.Context, user, id string) error { return errStub }

// Sharing returns a dot's owner, visibility and grants (owner).
func (c *Client) Sharing(ctx context.Context, dot dotmesh.DotName) (*dotmesh.Sharing, error) {
	return nil, errStub
}

// Share gives user a role on dot (owner).
func (c *Client) Share(ctx context.Context, dot dotmesh.DotName, user string, role dotmesh.Role) error {
	return errStub
}

// Unshare removes user's role on dot (owner).
func (c *Client) Unshare(ctx context.Context, dot dotmesh.DotName, user string) error {
	return errStub
}

// SetVisibility makes dot public or private (owner).
func (c *Client) SetVisibility(ctx context.Context, dot dotmesh.DotName, v dotmesh.Visibility) error {
	return errStub
}

// Audit returns a page of audit records (admin; a dot's owner for q.Dot).
func (c *Client) Audit(ctx context.Context, q dotmesh.AuditQuery) (*api.AuditPage, error) {
	return nil, errStub
}
