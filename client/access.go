package client

import (
	"context"
	"net/url"
	"strconv"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// userPath returns the escaped path of a user's resource, validating the
// name first so a bad one fails before any request.
func userPath(user string, rest ...string) (string, error) {
	if err := dotmesh.ValidateName("user", user); err != nil {
		return "", err
	}
	p := "/v1/users/" + url.PathEscape(user)
	for _, r := range rest {
		p += "/" + url.PathEscape(r)
	}
	return p, nil
}

// Me returns who the client's key authenticates as.
func (c *Client) Me(ctx context.Context) (*dotmesh.Principal, error) {
	var p dotmesh.Principal
	if err := c.do(ctx, methodGet, "/v1/me", nil, nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// Users lists the node's users (admin).
func (c *Client) Users(ctx context.Context) ([]dotmesh.User, error) {
	var out []dotmesh.User
	if err := c.do(ctx, methodGet, "/v1/users", nil, nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// AddUser creates a user and their first key (admin).
func (c *Client) AddUser(ctx context.Context, name, label string) (*api.NewKeyResponse, error) {
	if err := dotmesh.ValidateNewName("user", name); err != nil {
		return nil, err
	}
	var out api.NewKeyResponse
	if err := c.do(ctx, methodPost, "/v1/users", nil, api.AddUserRequest{Name: name, Label: label}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RemoveUser deletes a user (admin).
func (c *Client) RemoveUser(ctx context.Context, name string) error {
	p, err := userPath(name)
	if err != nil {
		return err
	}
	return c.do(ctx, methodDelete, p, nil, nil, nil)
}

// Keys lists a user's keys (the user or an admin).
func (c *Client) Keys(ctx context.Context, user string) ([]dotmesh.KeyInfo, error) {
	p, err := userPath(user, "keys")
	if err != nil {
		return nil, err
	}
	var out []dotmesh.KeyInfo
	if err := c.do(ctx, methodGet, p, nil, nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// AddKey makes another key for user (the user or an admin).
func (c *Client) AddKey(ctx context.Context, user, label string, readOnly bool) (*api.NewKeyResponse, error) {
	p, err := userPath(user, "keys")
	if err != nil {
		return nil, err
	}
	var out api.NewKeyResponse
	if err := c.do(ctx, methodPost, p, nil, api.NewKeyRequest{Label: label, ReadOnly: readOnly}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RevokeKey deletes one of user's keys (the user or an admin).
func (c *Client) RevokeKey(ctx context.Context, user, id string) error {
	if err := dotmesh.ValidateName("key id", id); err != nil {
		return err
	}
	p, err := userPath(user, "keys", id)
	if err != nil {
		return err
	}
	return c.do(ctx, methodDelete, p, nil, nil, nil)
}

// Sharing returns a dot's owner, visibility and grants (owner).
func (c *Client) Sharing(ctx context.Context, dot dotmesh.DotName) (*dotmesh.Sharing, error) {
	p, err := c.dotPath(dot, "sharing")
	if err != nil {
		return nil, err
	}
	var out dotmesh.Sharing
	if err := c.do(ctx, methodGet, p, nil, nil, &out); err != nil {
		return nil, err
	}
	// Sharing.Dot is not on the wire: the caller named it.
	out.Dot = dot
	if out.Dot.Namespace == "" {
		out.Dot.Namespace = c.user
	}
	return &out, nil
}

// Share gives user a role on dot (owner).
func (c *Client) Share(ctx context.Context, dot dotmesh.DotName, user string, role dotmesh.Role) error {
	if err := dotmesh.ValidateName("user", user); err != nil {
		return err
	}
	p, err := c.dotPath(dot, "sharing", user)
	if err != nil {
		return err
	}
	return c.do(ctx, methodPut, p, nil, api.ShareRequest{Role: role}, nil)
}

// Unshare removes user's role on dot (owner).
func (c *Client) Unshare(ctx context.Context, dot dotmesh.DotName, user string) error {
	if err := dotmesh.ValidateName("user", user); err != nil {
		return err
	}
	p, err := c.dotPath(dot, "sharing", user)
	if err != nil {
		return err
	}
	return c.do(ctx, methodDelete, p, nil, nil, nil)
}

// SetVisibility makes dot public or private (owner).
func (c *Client) SetVisibility(ctx context.Context, dot dotmesh.DotName, v dotmesh.Visibility) error {
	p, err := c.dotPath(dot, "visibility")
	if err != nil {
		return err
	}
	return c.do(ctx, methodPut, p, nil, api.VisibilityRequest{Visibility: v}, nil)
}

// Audit returns a page of audit records (admin; a dot's owner for q.Dot).
func (c *Client) Audit(ctx context.Context, q dotmesh.AuditQuery) (*api.AuditPage, error) {
	v := url.Values{}
	if q.Dot != nil {
		d := *q.Dot
		if d.Namespace == "" {
			d.Namespace = c.user
		}
		if err := d.Validate(); err != nil {
			return nil, err
		}
		v.Set("dot", d.Namespace+"/"+d.Name)
	}
	if q.Before != "" {
		v.Set("before", q.Before)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var out api.AuditPage
	if err := c.do(ctx, methodGet, "/v1/audit", v, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
