package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/internal/baresock"
)

// receiveDirect serves a commit whose native stream comes on the bare
// connection (api.DirectProtocol): plain TCP only, and only when the
// backend takes this commit that way and, with check, the Finish fin
// would move the branch (api.CheckFinishParam); otherwise it answers as
// any refused request does and the sender sends the framed stream.
func (s *server) receiveDirect(w http.ResponseWriter, r *http.Request, name dotmesh.DotName, branch string, c dotmesh.Commit, base *dotmesh.CommitID, format string, fin *dotmesh.FinishRequest, check bool) {
	if r.TLS != nil {
		writeError(w, fmt.Errorf("%w: no direct stream over TLS", dotmesh.ErrNotSupported))
		return
	}
	dc := &directConn{w: w, idle: s.transferIdle, log: s.log.With("dot", name.String(), "branch", branch, "commit", c.ID)}
	var checkFin *dotmesh.FinishRequest
	if check {
		checkFin = fin // api.CheckFinishParam
		// The Finish below writes the commit's record with the mark of
		// the move: one registry transaction less before the answer.
		r = r.WithContext(dotmesh.WithDeferredRecord(r.Context()))
	}
	err := s.node.TransferPeer().ReceiveDirect(r.Context(), name, branch, c, base, format, checkFin, dc)
	if dc.conn == nil {
		// Not taken: an answer as any other, and the sender falls back.
		writeError(w, err)
		return
	}
	defer dc.conn.Close()
	if dc.stalled.Load() && err != nil {
		err = stalledStream(dc.idle, err)
	}
	rw := &rawResponse{h: http.Header{}, under: w}
	switch {
	case err != nil:
		writeError(rw, err)
	case fin == nil:
		rw.WriteHeader(http.StatusNoContent)
	default:
		s.finishAlong(rw, r, name, branch, *fin)
	}
	if werr := rw.send(dc.conn); werr != nil {
		s.log.WarnContext(r.Context(), "answering a direct transfer", "dot", name.String(), "err", werr, "answer", rw.status, "receive_err", err)
	}
}

// directConn is dotmesh.DirectConn on the request's hijacked connection.
type directConn struct {
	w    http.ResponseWriter
	idle time.Duration
	log  *slog.Logger

	conn    net.Conn
	tc      *net.TCPConn
	base    int64       // bytes received before the stream
	stalled atomic.Bool // watch cut the stream: nothing came for idle
}

// Accept implements dotmesh.DirectConn: it takes the connection over,
// answers 101 and hands over the socket, which watch cuts when ctx ends
// or the stream stalls.
func (d *directConn) Accept(ctx context.Context) (*os.File, func(), error) {
	conn, brw, err := http.NewResponseController(d.w).Hijack()
	if err != nil {
		return nil, nil, err
	}
	d.conn = conn
	tc, ok := conn.(*net.TCPConn)
	if !ok || brw.Reader.Buffered() > 0 {
		return nil, nil, fmt.Errorf("%w: the connection is not a bare TCP one", dotmesh.ErrNotSupported)
	}
	_ = tc.SetDeadline(time.Time{}) // the stream is as long as the commit
	d.tc, d.base = tc, baresock.Received(tc)
	if _, err := io.WriteString(tc, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+api.DirectProtocol+"\r\n\r\n"); err != nil {
		return nil, nil, err
	}
	f, err := tc.File()
	if err != nil {
		return nil, nil, err
	}
	return f, d.watch(ctx), nil
}

// Received implements dotmesh.DirectConn.
func (d *directConn) Received() int64 {
	if d.tc == nil {
		return 0
	}
	return baresock.Received(d.tc) - d.base
}

// watch shuts the socket down, which ends the stream for whoever reads
// it (the zfs command and zfs-fuse, which holds the socket too and would
// otherwise read on after the node gave up), when ctx ends or when no
// byte arrived for d.idle. The returned func stops it.
func (d *directConn) watch(ctx context.Context) func() {
	done, ended := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ended)
		tick := time.NewTicker(max(min(d.idle/4, time.Second), time.Millisecond))
		defer tick.Stop()
		last, at := d.Received(), time.Now()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				d.log.WarnContext(ctx, "cutting a direct stream", "err", context.Cause(ctx))
				baresock.Shutdown(d.tc)
				return
			case now := <-tick.C:
				if k := d.Received(); k != last {
					last, at = k, now
				} else if now.Sub(at) >= d.idle {
					d.log.WarnContext(ctx, "cutting a direct stream: the sender sent nothing", "idle", d.idle, "bytes", k)
					d.stalled.Store(true)
					baresock.Shutdown(d.tc)
					return
				}
			}
		}
	}()
	return func() { close(done); <-ended }
}

// rawResponse collects an answer for a hijacked connection.
type rawResponse struct {
	h      http.Header
	status int
	body   bytes.Buffer
	under  http.ResponseWriter // the request's: its recorder logs the error
}

func (w *rawResponse) Unwrap() http.ResponseWriter { return w.under }

func (w *rawResponse) Header() http.Header { return w.h }

func (w *rawResponse) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *rawResponse) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(p)
}

func (w *rawResponse) send(conn net.Conn) error {
	w.WriteHeader(http.StatusOK)
	w.h.Set("Content-Length", strconv.Itoa(w.body.Len()))
	resp := http.Response{StatusCode: w.status, ProtoMajor: 1, ProtoMinor: 1, Header: w.h, Body: io.NopCloser(&w.body), ContentLength: int64(w.body.Len())}
	return resp.Write(conn)
}
