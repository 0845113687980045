//go:build !dmlight

package client

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync"
)

// directTransport is the http.RoundTripper of a short-lived client (the
// dm command line, WithDirect): it sends a plain-HTTP request whose body
// is in memory on one kept connection, written and read by the calling
// goroutine with net/http's own Request.Write and ReadResponse. An
// http.Transport runs a dial goroutine and a read and a write loop per
// connection; their hand-offs cost a dm commit about a hundred context
// switches and several threads on a 2-core VM. Anything else (https, a
// streamed request body) goes through fallback.
type directTransport struct {
	dial     func(ctx context.Context, network, addr string) (net.Conn, error)
	fallback http.RoundTripper

	mu   sync.Mutex
	idle *directConn // a connection whose last answer was read whole
}

type directConn struct {
	net.Conn
	br   *bufio.Reader
	addr string
}

func (t *directTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "http" || (req.Body != nil && req.Body != http.NoBody && req.GetBody == nil) {
		return t.fallback.RoundTrip(req)
	}
	ctx := req.Context()
	addr := req.URL.Host
	if req.URL.Port() == "" {
		addr = net.JoinHostPort(req.URL.Hostname(), "80")
	}
	// Only a GET or HEAD takes the kept connection: the node may have
	// closed it, and only those are sent again on a new one.
	idempotent := req.Method == http.MethodGet || req.Method == http.MethodHead
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
		c = &directConn{Conn: nc, br: bufio.NewReader(nc), addr: addr}
	}
	if trace := httptrace.ContextClientTrace(ctx); trace != nil && trace.GotConn != nil {
		trace.GotConn(httptrace.GotConnInfo{Conn: c.Conn, Reused: reused})
	}
	// The connection dies with ctx; AfterFunc starts no goroutine unless
	// ctx ends.
	stop := context.AfterFunc(ctx, func() { c.Close() })
	resp, err := t.exchange(c, req)
	if err != nil {
		stop()
		c.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if reused {
			return t.RoundTrip(req) // on a new connection
		}
		return nil, err
	}
	resp.Body = &directBody{ReadCloser: resp.Body, t: t, c: c, stop: stop, keep: !resp.Close && !req.Close}
	return resp, nil
}

// exchange writes req on c and reads the head of its final answer. The
// 1xx answers before it (a node's 102 Processing while it works) are
// skipped and reported to the trace, as http.Transport does: the idle
// watch counts them as the node's progress.
func (t *directTransport) exchange(c *directConn, req *http.Request) (*http.Response, error) {
	if err := req.Write(c.Conn); err != nil {
		return nil, err
	}
	trace := httptrace.ContextClientTrace(req.Context())
	for {
		resp, err := http.ReadResponse(c.br, req)
		if err != nil || resp.StatusCode < 100 || resp.StatusCode > 199 || resp.StatusCode == http.StatusSwitchingProtocols {
			return resp, err
		}
		if trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(resp.StatusCode, textproto.MIMEHeader(resp.Header)); err != nil {
				return nil, err
			}
		}
	}
}

// directBody keeps its connection for the next request when the answer
// was read to its end, else closes it.
type directBody struct {
	io.ReadCloser
	t    *directTransport
	c    *directConn
	stop func() bool
	keep bool
	eof  bool
	done bool
}

func (b *directBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) {
		b.eof = true
	}
	return n, err
}

func (b *directBody) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	err := b.ReadCloser.Close()
	if !b.stop() || !b.keep || !b.eof || b.c.br.Buffered() > 0 {
		b.c.Close()
		return err
	}
	b.t.mu.Lock()
	old := b.t.idle
	b.t.idle = b.c
	b.t.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return err
}
