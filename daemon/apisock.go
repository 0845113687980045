package daemon

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"

	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/internal/node"
	"github.com/dotmesh-io/dotmesh/internal/unixsock"
)

// listenAPISocket makes the local API socket DATADIR/api.sock (mode
// 0600): the node serves its API there too, in plain HTTP, as Docker
// serves docker.sock. A socket a live process holds is never taken over
// (internal/unixsock, as the Docker and CSI plugins' sockets): the start
// fails. One that cannot be made for another reason (a data directory
// whose path is too long for a socket) is logged and the node serves TCP
// alone; nil then.
func listenAPISocket(cfg Config, dataDir string, log *slog.Logger) (*socketListener, error) {
	if cfg.NoAPISocket {
		return nil, nil
	}
	path := filepath.Join(dataDir, node.APISocketFile)
	if len(path) > unixsock.MaxPath {
		log.Warn("not serving the local API socket: its path is too long for a unix socket; clients use TCP", "socket", path)
		return nil, nil
	}
	sock, err := unixsock.Listen(path, 0o600, 0o700, "the API socket", "--data-dir (or --no-api-socket)")
	if errors.Is(err, dotmesh.ErrInUse) {
		return nil, err
	}
	if err != nil {
		log.Warn("not serving the local API socket; clients use TCP", "socket", path, "err", err)
		return nil, nil
	}
	return &socketListener{sock}, nil
}

// socketListener names its connections' remote end "unix" (Go leaves a
// unix peer's address empty), so the request log says where a call came
// from.
type socketListener struct{ *unixsock.Socket }

func (l *socketListener) Accept() (net.Conn, error) {
	c, err := l.Socket.Accept()
	if uc, ok := c.(*net.UnixConn); ok {
		return unixConn{uc}, nil
	}
	return c, err
}

// unixConn keeps *net.UnixConn's methods (CloseWrite, ReadFrom), which
// net/http looks for.
type unixConn struct{ *net.UnixConn }

func (unixConn) RemoteAddr() net.Addr { return &net.UnixAddr{Name: "unix", Net: "unix"} }

// serveAPISocket serves srv (the API's server: the same handler,
// authentication, logging and metrics) on ln in the background. The
// server's Shutdown closes ln, which removes the socket; should the
// socket fail alone, the node goes on serving TCP.
func serveAPISocket(srv *http.Server, ln *socketListener, log *slog.Logger) {
	log.Info("serving the API on the local socket too", "socket", ln.Path())
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("the local API socket stopped; clients use TCP", "err", err)
		}
	}()
}
