package client

import (
	"context"
	"net/url"
	"strconv"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Diff compares two states of a dot (see dotmesh.DiffOptions).
func (c *Client) Diff(ctx context.Context, dot dotmesh.DotName, opts dotmesh.DiffOptions) (*dotmesh.Diff, error) {
	p, err := c.dotPath(dot, "diff")
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	for k, v := range map[string]string{"branch": opts.Branch, "from": opts.From, "to": opts.To} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if len(opts.Paths) > 0 {
		q["path"] = opts.Paths
	}
	for k, b := range map[string]bool{"parent": opts.Parent, "content": opts.Content, "rows": opts.Rows} {
		if b {
			q.Set(k, "1")
		}
	}
	// Negative values go as they are: the server says what is wrong.
	for k, n := range map[string]int{"context": opts.Context, "max_rows": opts.MaxRows, "max_files": opts.MaxFiles, "max_patch_bytes": opts.MaxPatchBytes} {
		if n != 0 {
			q.Set(k, strconv.Itoa(n))
		}
	}
	var out dotmesh.Diff
	if err := c.do(ctx, methodGet, p, q, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// WorkingStatus describes a branch's working state against its head.
func (c *Client) WorkingStatus(ctx context.Context, dot dotmesh.DotName, opts dotmesh.StatusOptions) (*dotmesh.Status, error) {
	p, err := c.dotPath(dot, "status")
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	if opts.Branch != "" {
		q.Set("branch", opts.Branch)
	}
	if opts.Rows {
		q.Set("rows", "1")
	}
	var out dotmesh.Status
	if err := c.do(ctx, methodGet, p, q, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
