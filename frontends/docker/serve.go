package docker

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/dotmesh-io/dotmesh/frontends/docker/dockerenv"
	"github.com/dotmesh-io/dotmesh/internal/unixsock"
)

// DefaultSocket is where Docker looks for the "dm" volume driver.
const DefaultSocket = dockerenv.DefaultSocket

// DriverName is the volume driver name Docker derives from a plugin
// socket path: its base name without ".sock".
func DriverName(socket string) string {
	return strings.TrimSuffix(filepath.Base(socket), ".sock")
}

// Server is the plugin listening on its unix socket.
type Server struct {
	sock *unixsock.Socket
	srv  *http.Server
	done chan error
}

// Listen makes the plugin socket at path, mode 0660 (Docker runs as root).
// A stale socket (nobody listens) is replaced; a live one, or a file that
// is not a socket, is refused, naming --docker-socket.
func Listen(path string) (*Server, error) {
	sock, err := unixsock.Listen(path, 0o660, 0o755, "the Docker plugin socket", "--docker-socket")
	if err != nil {
		return nil, err
	}
	return &Server{sock: sock}, nil
}

// Path is the socket's path.
func (s *Server) Path() string { return s.sock.Path() }

// Serve answers Docker's requests with h in the background.
func (s *Server) Serve(h http.Handler, log *slog.Logger) {
	s.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	s.done = make(chan error, 1)
	go func() { s.done <- s.srv.Serve(s.sock) }()
}

// Shutdown stops serving, waiting for requests in flight until ctx ends,
// and removes the socket if it is still ours.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	if s.srv != nil {
		if err = s.srv.Shutdown(ctx); err != nil {
			_ = s.srv.Close()
		}
		if serr := <-s.done; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
	}
	return errors.Join(err, s.sock.Close())
}
