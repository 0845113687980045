package client

import (
	"context"
	"io"
	"net/url"
)

// SameCommit is sameCommit for the package's external tests.
var SameCommit = sameCommit

// StreamForTest posts body, streamed, to path with the query rawQuery
// (the transfer protocol's stream).
func StreamForTest(c *Client, ctx context.Context, path, rawQuery string, body io.Reader) (io.ReadCloser, error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, err
	}
	return c.stream(ctx, methodPost, path, q, body, "application/octet-stream")
}
