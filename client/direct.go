package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dotmesh-io/dotmesh/client/internal/h1"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// h1Transport sends each plain-HTTP request from the calling goroutine
// with client/internal/h1, on one kept connection (a GET or HEAD takes
// it; every other request a new one): the light dm's transport, and the
// full build's for WithDirect. An http.Transport runs a dial goroutine
// and a read and a write loop per connection; their hand-offs cost a dm
// commit about a hundred context switches and several threads on a
// 2-core VM. A streamed request body is written by a goroutine of its
// own while the answer is read, as net/http does: a node may answer
// (refuse) before the body ends.
type h1Transport struct {
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	timeout time.Duration // WithTimeout: the whole call, answer's body included

	mu   sync.Mutex
	idle *h1Conn // a connection whose last answer was read whole
}

type h1Conn struct {
	net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	addr string
}

func (t *h1Transport) roundTrip(r *request) (*answer, error) {
	ctx, cancel := r.ctx, context.CancelFunc(func() {})
	if t.timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, t.timeout)
	}
	a, err := t.send(ctx, r)
	if err != nil {
		cancel()
		if ctx.Err() != nil && r.ctx.Err() == nil {
			err = ctx.Err() // the client's own timeout
		}
		return nil, &url.Error{Op: r.method[:1] + strings.ToLower(r.method[1:]), URL: r.url.String(), Err: err}
	}
	b := a.body.(*h1Body)
	b.ctx, b.cancel = ctx, cancel
	return a, nil
}

func (t *h1Transport) send(ctx context.Context, r *request) (*answer, error) {
	addr := r.url.Host
	if r.url.Port() == "" {
		addr = net.JoinHostPort(r.url.Hostname(), "80")
	}
	// Only a GET or HEAD takes the kept connection: the node may have
	// closed it, and only those are sent again on a new one.
	idempotent := r.method == methodGet || r.method == "HEAD"
	t.mu.Lock()
	c := t.idle
	t.idle = nil
	t.mu.Unlock()
	reused := c != nil && c.addr == addr && idempotent
	if c != nil && !reused {
		c.Close()
	}
	if !reused {
		nc, err := t.dial(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		c = &h1Conn{Conn: nc, br: bufio.NewReader(nc), bw: bufio.NewWriter(nc), addr: addr}
	}
	if r.watch != nil {
		r.watch.gotConn(c.Conn)
	}
	// The connection dies with ctx; AfterFunc starts no goroutine unless
	// ctx ends.
	stop := context.AfterFunc(ctx, func() { c.Close() })
	resp, written, err := t.exchange(c, r)
	if err != nil {
		stop()
		c.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if reused {
			return t.send(ctx, r) // on a new connection
		}
		return nil, err
	}
	return answerOf(resp, &h1Body{resp: resp, t: t, c: c, stop: stop, written: written}), nil
}

// answerOf is the answer of an h1 response whose body is read from body.
func answerOf(resp *h1.Response, body io.ReadCloser) *answer {
	return &answer{
		status:     resp.Status,
		statusLine: strconv.Itoa(resp.Status) + " " + resp.Reason,
		statusText: resp.Reason,
		header:     header(resp.Header),
		body:       body,
	}
}

// exchange writes r on c and reads the head of its final answer; written
// says when the request is written whole (closed at once unless the body
// is streamed). The 1xx answers before it (a node's 102 Processing while
// it works) are skipped and reported to the watch.
func (t *h1Transport) exchange(c *h1Conn, r *request) (*h1.Response, <-chan error, error) {
	hr := &h1.Request{Method: r.method, Target: r.url.RequestURI(), Host: r.url.Host, Header: h1.Header(r.header), Body: r.body, ContentLength: r.length}
	var interim func(int)
	if r.watch != nil {
		interim = func(int) { r.watch.got1xx() }
	}
	written := make(chan error, 1)
	if r.body == nil || r.length >= 0 {
		if err := h1.WriteRequest(c.bw, hr); err != nil {
			return nil, nil, t.writeError(err)
		}
		written <- nil
	} else {
		go func() { written <- h1.WriteRequest(c.bw, hr) }()
	}
	resp, err := h1.ReadResponse(c.br, r.method, interim)
	if err != nil {
		select {
		case werr := <-written:
			if werr != nil { // the cause: the node closed while it was sent
				return nil, nil, t.writeError(werr)
			}
		default:
		}
		if errors.Is(err, io.ErrUnexpectedEOF) && strings.Contains(err.Error(), "before answering") {
			err = io.EOF // the words of net/http
		}
		return nil, nil, err
	}
	return resp, written, nil
}

// writeError is err of a request that could not be written: one h1
// refuses is the caller's (an invalid method or field).
func (t *h1Transport) writeError(err error) error {
	if strings.HasPrefix(err.Error(), "h1: invalid") {
		return &requestError{fmt.Errorf("%w: %v", dotmesh.ErrInvalidArgument, err)}
	}
	return err
}

// h1Body is an answer's body; Close keeps its connection for the next
// request when the answer was read to its end and the request written
// whole, else closes it.
type h1Body struct {
	resp    *h1.Response
	t       *h1Transport
	c       *h1Conn
	stop    func() bool
	ctx     context.Context // the call's: it closes the connection when it ends
	cancel  context.CancelFunc
	written <-chan error
	done    bool
}

func (b *h1Body) Read(p []byte) (int, error) {
	n, err := b.resp.Body.Read(p)
	if err != nil && err != io.EOF && b.ctx.Err() != nil {
		err = b.ctx.Err() // not the closed connection's words, as net/http
	}
	return n, err
}

func (b *h1Body) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	defer b.cancel()
	keep := b.stop() && b.resp.Reusable() && b.c.br.Buffered() == 0
	if keep {
		select {
		case err := <-b.written:
			keep = err == nil
		default:
			keep = false // still sending a body the node did not wait for
		}
	}
	if !keep {
		b.c.Close()
		return nil
	}
	b.t.mu.Lock()
	old := b.t.idle
	b.t.idle = b.c
	b.t.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}
