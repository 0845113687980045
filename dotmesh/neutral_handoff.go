//go:build !dmlight

package dotmesh

import (
	"errors"
	"io"

	"github.com/dotmesh-io/dotmesh/transport/neutral"
)

// The readers of transfers pass on a neutral.Pipe's hand-over of
// buffers; the light dm (build tag dmlight), which runs no transfer,
// links none of this (see light.go).

// WriteNTo passes on a hand-over of the sender's buffers (neutral.Pipe),
// counted and refreshing as Read does.
func (r *refreshingReader) WriteNTo(w io.Writer, n int64) (int64, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	k, err := neutral.WriteNTo(r.r, w, n)
	r.count(k)
	return k, err
}

// WriteNTo passes on a hand-over of the sender's buffers (neutral.Pipe),
// counted as Read counts.
func (c countedReader) WriteNTo(w io.Writer, n int64) (int64, error) {
	k, err := neutral.WriteNTo(c.r, w, n)
	if k > 0 {
		c.add(k)
	}
	return k, err
}

// WriteNTo passes on a hand-over of the sender's buffers (neutral.Pipe),
// counted as Read counts.
func (c *countingReader) WriteNTo(w io.Writer, n int64) (int64, error) {
	k, err := neutral.WriteNTo(c.r, w, n)
	if errors.Is(err, neutral.ErrNoHandoff) {
		return k, err
	}
	c.count(k, err)
	return k, err
}
