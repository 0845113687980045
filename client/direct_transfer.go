package client

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"time"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/client/internal/h1"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/internal/baresock"
)

var _ dotmesh.DirectSink = (*Client)(nil)

// SendCommitDirect implements dotmesh.DirectSink over plain HTTP: POST
// .../transfer/commits with the commit header as its body and Upgrade
// api.DirectProtocol on a connection of its own; on 101 send writes the
// native stream into the bare socket, and the answer the request would
// have had follows on it. Any other answer, or a connection that could
// not be made, is not handled: the caller sends the framed stream, which
// reports what went wrong.
func (c *Client) SendCommitDirect(ctx context.Context, dot dotmesh.DotName, branch string, cm dotmesh.Commit, base *dotmesh.CommitID, format string, send func(f *os.File) error) (int64, bool, error) {
	if c.base.Scheme != "http" || base == nil {
		return 0, false, nil
	}
	p, err := c.dotPath(dot, "transfer", "commits")
	if err != nil {
		return 0, false, err
	}
	q := url.Values{"branch": {branch}, "format": {format}, "base": {string(*base)}}
	var hdr bytes.Buffer
	if err := api.WriteCommitHeader(&hdr, cm); err != nil {
		return 0, false, err
	}
	h := header{}
	h.Set("Connection", "Upgrade")
	h.Set("Upgrade", api.DirectProtocol)
	h.Set("Content-Type", "application/octet-stream")
	along := dotmesh.FinishAlongOf(ctx)
	if along != nil {
		if v, ok := api.EncodeFinish(along.Req); ok {
			h.Set(api.FinishHeader, v)
		} else if along.Check {
			return 0, false, nil
		} else {
			along = nil
		}
		if along != nil && along.Check {
			q.Set(api.CheckFinishParam, "1")
		}
	}
	req := c.request(ctx, nil, methodPost, p, q, h, nil)
	host := req.url.Host
	if req.url.Port() == "" {
		host = net.JoinHostPort(req.url.Hostname(), "80")
	}
	d := net.Dialer{Timeout: c.connect}
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return 0, false, nil
	}
	defer conn.Close()
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return 0, false, nil
	}
	// The socket is handed to a command, which ctx cannot stop, and
	// exec's f.Fd() leaves it in blocking mode, where Close waits for a
	// read in progress: shutdown wakes both.
	stop := context.AfterFunc(ctx, func() { baresock.Shutdown(tc); _ = tc.Close() })
	defer stop()
	hr := &h1.Request{Method: req.method, Target: req.url.RequestURI(), Host: req.url.Host, Header: h1.Header(req.header),
		Body: bytes.NewReader(hdr.Bytes()), ContentLength: int64(hdr.Len())}
	if err := h1.WriteRequest(bufio.NewWriter(tc), hr); err != nil {
		return 0, false, nil
	}
	br := bufio.NewReader(tc)
	// The answer comes within the idle time, or a 102 re-arms it: this
	// request has no idle watch, and a receiver that stopped (frozen,
	// or hung before its answer) would hold the push for ever.
	_ = tc.SetReadDeadline(time.Now().Add(c.idle))
	_, up, err := h1.ReadUpgrade(br, methodPost, api.DirectProtocol, func(int) { _ = tc.SetReadDeadline(time.Now().Add(c.idle)) })
	_ = tc.SetReadDeadline(time.Time{})
	if err != nil || !up || br.Buffered() > 0 {
		// Refused (an old node, another backend, TLS): the framed stream.
		return 0, false, nil
	}
	before := baresock.Acked(tc)
	f, err := tc.File()
	if err != nil {
		return 0, true, err
	}
	serr := send(f)
	f.Close()
	baresock.SetNonblock(tc) // the poller, deadlines and Close work again
	if serr != nil {
		// The receiver sees the stream end short, which stores nothing.
		return 0, true, serr
	}
	_ = tc.CloseWrite()
	if along != nil && along.Sent != nil {
		along.Sent()
	}
	resp, err := h1.ReadResponse(br, methodPost, nil)
	if err != nil {
		return 0, true, fmt.Errorf("reading the answer to commit %s: %w", cm.ID, c.transportError(err))
	}
	final := answerOf(resp, io.NopCloser(resp.Body))
	n := baresock.Acked(tc) - before
	if final.status < 200 || final.status > 299 {
		err := remoteError(final, io.LimitReader(final.body, maxResponse))
		if along != nil && final.header.Get(api.FinishFailedHeader) == "1" {
			along.Answered, along.Err = true, err
			return n, true, nil
		}
		return n, true, err
	}
	if along != nil {
		err = finishAnswer(along, final.body)
	}
	return n, true, err
}
