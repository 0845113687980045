package client

import (
	"bytes"
	"context"
	"io"
	"net/url"
	"strconv"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// dotPath returns the escaped path of a dot, defaulting the namespace to
// the client's user's (as the server does) and validating both parts
// here, so a bad name fails before any request.
func (c *Client) dotPath(name dotmesh.DotName, rest ...string) (string, error) {
	if name.Namespace == "" {
		name.Namespace = c.user
	}
	if err := name.Validate(); err != nil {
		return "", err
	}
	p := "/v1/dots/" + url.PathEscape(name.Namespace) + "/" + url.PathEscape(name.Name)
	for _, r := range rest {
		p += "/" + url.PathEscape(r)
	}
	return p, nil
}

func branchQuery(branch string) url.Values {
	q := url.Values{}
	if branch != "" {
		q.Set("branch", branch)
	}
	return q
}

// Ping checks the node answers and the key is accepted.
func (c *Client) Ping(ctx context.Context) (*api.Ping, error) {
	var p api.Ping
	if err := c.do(ctx, methodGet, "/v1/ping", nil, nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// ListDots returns every dot's status, sorted by namespace and name.
func (c *Client) ListDots(ctx context.Context) ([]dotmesh.DotStatus, error) {
	var out []dotmesh.DotStatus
	if err := c.do(ctx, methodGet, "/v1/dots", nil, nil, v2Answer{out: &out}); err != nil {
		return nil, err
	}
	return out, nil
}

// CreateDot creates a dot on backend (empty: the node's default).
func (c *Client) CreateDot(ctx context.Context, name dotmesh.DotName, backend string) (*dotmesh.Dot, error) {
	if name.Namespace == "" {
		name.Namespace = c.user
	}
	if err := name.Validate(); err != nil {
		return nil, err
	}
	var d dotmesh.Dot
	req := api.CreateDotRequest{Namespace: name.Namespace, Name: name.Name, Backend: backend}
	if err := c.do(ctx, methodPost, "/v1/dots", nil, req, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// Status returns one dot's status.
func (c *Client) Status(ctx context.Context, name dotmesh.DotName) (*dotmesh.DotStatus, error) {
	p, err := c.dotPath(name)
	if err != nil {
		return nil, err
	}
	var st dotmesh.DotStatus
	if err := c.do(ctx, methodGet, p, nil, nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// DeleteDot deletes a dot with all its branches and commits.
func (c *Client) DeleteDot(ctx context.Context, name dotmesh.DotName) error {
	p, err := c.dotPath(name)
	if err != nil {
		return err
	}
	return c.do(ctx, methodDelete, p, nil, nil, nil)
}

// Branches lists a dot's branches, sorted by name.
func (c *Client) Branches(ctx context.Context, name dotmesh.DotName) ([]dotmesh.Branch, error) {
	p, err := c.dotPath(name, "branches")
	if err != nil {
		return nil, err
	}
	var out []dotmesh.Branch
	if err := c.do(ctx, methodGet, p, nil, nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// CreateBranch makes branch from a ref of the current branch (empty: HEAD).
func (c *Client) CreateBranch(ctx context.Context, name dotmesh.DotName, branch, from string) (*dotmesh.Branch, error) {
	p, err := c.dotPath(name, "branches")
	if err != nil {
		return nil, err
	}
	var b dotmesh.Branch
	if err := c.do(ctx, methodPost, p, nil, api.CreateBranchRequest{Name: branch, From: from}, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// DeleteBranch deletes a branch that is not the current one.
func (c *Client) DeleteBranch(ctx context.Context, name dotmesh.DotName, branch string) error {
	if err := dotmesh.ValidateName("branch", branch); err != nil {
		return err
	}
	p, err := c.dotPath(name, "branches", branch)
	if err != nil {
		return err
	}
	return c.do(ctx, methodDelete, p, nil, nil, nil)
}

// Checkout switches the dot's current branch, creating it first if create.
func (c *Client) Checkout(ctx context.Context, name dotmesh.DotName, branch string, create bool) (*dotmesh.Dot, error) {
	return c.CheckoutWith(ctx, name, api.CheckoutRequest{Branch: branch, Create: create})
}

// CheckoutWith is Checkout with every field of the request, Restart
// (stop and start the consumers of mounts around the switch) included.
func (c *Client) CheckoutWith(ctx context.Context, name dotmesh.DotName, req api.CheckoutRequest) (*dotmesh.Dot, error) {
	r, err := c.CheckoutReport(ctx, name, req)
	if err != nil {
		return nil, err
	}
	return &r.Dot, nil
}

// CheckoutReport is CheckoutWith that also returns the previous branch,
// the dot's stable path and the processes on the node's machine that
// still hold the previous branch's working tree.
func (c *Client) CheckoutReport(ctx context.Context, name dotmesh.DotName, req api.CheckoutRequest) (*dotmesh.CheckoutReport, error) {
	p, err := c.dotPath(name, "checkout")
	if err != nil {
		return nil, err
	}
	var r dotmesh.CheckoutReport
	if err := c.long(ctx, methodPost, p, req, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Commit commits branch (empty: the current one). The author is the
// client's user.
func (c *Client) Commit(ctx context.Context, name dotmesh.DotName, branch, message string, metadata map[string]string) (*dotmesh.Commit, error) {
	return c.CommitWith(ctx, name, api.CommitRequest{Branch: branch, Message: message, Metadata: metadata})
}

// CommitWith commits as req says (AllowEmpty: also an unchanged working
// state, which is otherwise a dotmesh.NothingToCommitError).
func (c *Client) CommitWith(ctx context.Context, name dotmesh.DotName, req api.CommitRequest) (*dotmesh.Commit, error) {
	p, err := c.dotPath(name, "commits")
	if err != nil {
		return nil, err
	}
	var out dotmesh.Commit
	if err := c.long(ctx, methodPost, p, commitBody{req}, commitAnswer{&out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// commitAnswer decodes a commit as a node answers it, one record's shape
// (recordDecoder: hand-written for what encoding/json writes, the JSON v2
// decoder for any other): encoding/json's first decode of a Commit, its
// reflection over the type, took 70-170 us alone, and a whole dm commit
// 0.5-1 ms more CPU and wall time (interleaved runs on a btrfs node).
type commitAnswer struct{ c *dotmesh.Commit }

func (a commitAnswer) decodeAnswer(body io.Reader) error {
	b, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	var d recordDecoder
	return d.decode(bytes.TrimSpace(b), a.c)
}

// Log returns a branch's history (empty: current branch), newest first;
// limit <= 0 means all.
func (c *Client) Log(ctx context.Context, name dotmesh.DotName, branch string, limit int) ([]dotmesh.Commit, error) {
	p, err := c.dotPath(name, "commits")
	if err != nil {
		return nil, err
	}
	q := branchQuery(branch)
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out []dotmesh.Commit
	if err := c.do(ctx, methodGet, p, q, nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// ResolveRef resolves ref (HEAD^, an id prefix...) on branch (empty:
// current branch).
func (c *Client) ResolveRef(ctx context.Context, name dotmesh.DotName, branch, ref string) (*dotmesh.Commit, error) {
	if _, err := dotmesh.ParseRef(ref); err != nil {
		return nil, err
	}
	p, err := c.dotPath(name, "refs", ref)
	if err != nil {
		return nil, err
	}
	var out dotmesh.Commit
	if err := c.do(ctx, methodGet, p, branchQuery(branch), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Reset moves branch (empty: current) back to ref; hard discards
// uncommitted changes.
func (c *Client) Reset(ctx context.Context, name dotmesh.DotName, branch, ref string, hard bool) (*dotmesh.Commit, error) {
	return c.ResetWith(ctx, name, api.ResetRequest{Branch: branch, Ref: ref, Hard: hard})
}

// ResetWith is Reset with every field of the request, Restart included.
func (c *Client) ResetWith(ctx context.Context, name dotmesh.DotName, req api.ResetRequest) (*dotmesh.Commit, error) {
	r, err := c.ResetReport(ctx, name, req)
	if err != nil {
		return nil, err
	}
	return &r.Commit, nil
}

// ResetReport is ResetWith that also returns the processes on the node's
// machine left in a working directory the reset replaced.
func (c *Client) ResetReport(ctx context.Context, name dotmesh.DotName, req api.ResetRequest) (*dotmesh.ResetReport, error) {
	p, err := c.dotPath(name, "reset")
	if err != nil {
		return nil, err
	}
	var out dotmesh.ResetReport
	if err := c.long(ctx, methodPost, p, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Subdots lists the subdots of branch (empty: current).
func (c *Client) Subdots(ctx context.Context, name dotmesh.DotName, branch string) ([]string, error) {
	p, err := c.dotPath(name, "subdots")
	if err != nil {
		return nil, err
	}
	var out []string
	if err := c.do(ctx, methodGet, p, branchQuery(branch), nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Path returns the host path of a subdot named "[namespace/]dot[@branch][.subdot]".
func (c *Client) Path(ctx context.Context, volume string) (string, error) {
	if _, err := dotmesh.ParseVolumeName(volume); err != nil {
		return "", err
	}
	var out api.PathResponse
	if err := c.do(ctx, methodPost, "/v1/path", nil, api.PathRequest{Volume: volume}, &out); err != nil {
		return "", err
	}
	return out.Path, nil
}
