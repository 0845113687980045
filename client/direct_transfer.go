package client

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"

	"github.com/dotmesh-io/dotmesh/api"
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
	u := *c.base
	u.RawPath = c.base.EscapedPath() + p
	u.Path, _ = url.PathUnescape(u.RawPath)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(hdr.Bytes()))
	if err != nil {
		return 0, false, nil
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", api.DirectProtocol)
	req.Header.Set("Content-Type", "application/octet-stream")
	along := dotmesh.FinishAlongOf(ctx)
	if along != nil {
		if v, ok := api.EncodeFinish(along.Req); ok {
			req.Header.Set(api.FinishHeader, v)
		} else {
			along = nil
		}
	}
	setRequestID(ctx, req)
	req.SetBasicAuth(c.user, c.key)
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
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
	if err := req.Write(tc); err != nil {
		return 0, false, nil
	}
	br := bufio.NewReader(tc)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return 0, false, nil
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || br.Buffered() > 0 {
		resp.Body.Close()
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
	final, err := http.ReadResponse(br, req)
	if err != nil {
		return 0, true, fmt.Errorf("reading the answer to commit %s: %w", cm.ID, c.transportError(err))
	}
	defer final.Body.Close()
	n := baresock.Acked(tc) - before
	if final.StatusCode < 200 || final.StatusCode > 299 {
		err := remoteError(final, io.LimitReader(final.Body, maxResponse))
		if along != nil && final.Header.Get(api.FinishFailedHeader) == "1" {
			along.Answered, along.Err = true, err
			return n, true, nil
		}
		return n, true, err
	}
	if along != nil {
		err = finishAnswer(along, final.Body)
	}
	return n, true, err
}
