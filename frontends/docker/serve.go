package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// DefaultSocket is where Docker looks for the "dm" volume driver.
const DefaultSocket = "/run/docker/plugins/dm.sock"

// DriverName is the volume driver name Docker derives from a plugin
// socket path: its base name without ".sock".
func DriverName(socket string) string {
	return strings.TrimSuffix(filepath.Base(socket), ".sock")
}

// Server is the plugin listening on its unix socket.
type Server struct {
	path string
	ln   net.Listener
	fi   os.FileInfo // the socket we made, so Close removes only ours
	srv  *http.Server
	done chan error
}

// Listen makes the plugin socket at path, mode 0660 (Docker runs as root).
// A stale socket (nobody answers) is replaced; a live one, or a file that
// is not a socket, is refused.
func Listen(path string) (*Server, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the Docker plugin directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%w: %s exists and is not a socket; remove it or choose another --docker-socket", dotmesh.ErrInUse, path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("%w: another process serves the Docker plugin socket %s; stop it or choose another --docker-socket", dotmesh.ErrInUse, path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("removing the stale Docker plugin socket: %w", err)
		}
	}
	// Bind in a private directory, tighten the mode, then move it into
	// place: the socket is never reachable with a looser mode.
	tmp, err := os.MkdirTemp(dir, ".dm-sock-")
	if err != nil {
		return nil, fmt.Errorf("creating the Docker plugin socket: %w", err)
	}
	defer os.RemoveAll(tmp)
	tmpPath := filepath.Join(tmp, "s")
	ln, err := net.Listen("unix", tmpPath)
	if err != nil {
		return nil, fmt.Errorf("listening on the Docker plugin socket: %w", err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	fail := func(err error) (*Server, error) {
		ln.Close()
		return nil, fmt.Errorf("creating the Docker plugin socket %s: %w", path, err)
	}
	if err := os.Chmod(tmpPath, 0o660); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmpPath, path); err != nil {
		return fail(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fail(err)
	}
	return &Server{path: path, ln: ln, fi: fi}, nil
}

// Path is the socket's path.
func (s *Server) Path() string { return s.path }

// Serve answers Docker's requests with h in the background.
func (s *Server) Serve(h http.Handler, log *slog.Logger) {
	s.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	s.done = make(chan error, 1)
	go func() { s.done <- s.srv.Serve(s.ln) }()
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
	} else {
		s.ln.Close()
	}
	if fi, lerr := os.Lstat(s.path); lerr == nil && os.SameFile(fi, s.fi) {
		if rerr := os.Remove(s.path); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	return err
}
