package server

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// receiveDirect serves a commit whose native stream comes on the bare
// connection (api.DirectProtocol): plain TCP only, and only when the
// backend takes this commit that way; otherwise it answers as any refused
// request does and the sender sends the framed stream.
func (s *server) receiveDirect(w http.ResponseWriter, r *http.Request, name dotmesh.DotName, branch string, c dotmesh.Commit, base *dotmesh.CommitID, format string, fin *dotmesh.FinishRequest) {
	if r.TLS != nil {
		writeError(w, fmt.Errorf("%w: no direct stream over TLS", dotmesh.ErrNotSupported))
		return
	}
	var conn net.Conn
	var brw *bufio.ReadWriter
	accept := func() (*os.File, error) {
		var err error
		if conn, brw, err = http.NewResponseController(w).Hijack(); err != nil {
			return nil, err
		}
		tc, ok := conn.(*net.TCPConn)
		if !ok || brw.Reader.Buffered() > 0 {
			return nil, fmt.Errorf("%w: the connection is not a bare TCP one", dotmesh.ErrNotSupported)
		}
		_ = tc.SetDeadline(time.Time{}) // the stream is as long as the commit
		if _, err := io.WriteString(tc, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+api.DirectProtocol+"\r\n\r\n"); err != nil {
			return nil, err
		}
		return tc.File()
	}
	err := s.node.TransferPeer().ReceiveDirect(r.Context(), name, branch, c, base, format, accept)
	if conn == nil {
		// Not taken: an answer as any other, and the sender falls back.
		writeError(w, err)
		return
	}
	defer conn.Close()
	rw := &rawResponse{h: http.Header{}}
	switch {
	case err != nil:
		writeError(rw, err)
	case fin == nil:
		rw.WriteHeader(http.StatusNoContent)
	default:
		s.finishAlong(rw, r, name, branch, *fin)
	}
	if werr := rw.send(conn); werr != nil {
		s.log.WarnContext(r.Context(), "answering a direct transfer", "dot", name.String(), "err", werr)
	}
}

// rawResponse collects an answer for a hijacked connection.
type rawResponse struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

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
