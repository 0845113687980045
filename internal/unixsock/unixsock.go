// Package unixsock makes the unix sockets a node serves plugins on (Docker,
// CSI) without ever taking one over from a live process.
//
// A socket file is replaced only when nobody listens on it (connecting is
// refused), and only under a lock, PATH.lock, that the serving node holds
// for the socket's life: two nodes starting at once cannot both find a
// socket stale and remove each other's, and a live socket whose backlog is
// full (connect would block) is never taken for stale. The socket moves
// into place with a rename that does not replace.
package unixsock

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// MaxPath is the longest path a unix socket can be bound or dialed at on
// Linux (sun_path holds 108 bytes with its NUL).
const MaxPath = 107

// Socket is a listening unix socket made by Listen.
type Socket struct {
	net.Listener
	path string
	fi   os.FileInfo // the socket we made, so Close removes only ours
	lock *os.File
}

// Listen makes the unix socket path with mode, its directory (mode
// dirMode) if missing. what names the socket in errors ("the Docker plugin
// socket") and flag the option that chooses another path.
func Listen(path string, mode, dirMode os.FileMode, what, flag string) (*Socket, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, fmt.Errorf("creating the directory of %s %s: %w", what, path, err)
	}
	inUse := func(who string) error {
		return fmt.Errorf("%w: %s serves %s %s; stop it, or choose another %s", dotmesh.ErrInUse, who, what, path, flag)
	}
	lock, err := lockFile(path+".lock", inUse)
	if err != nil {
		return nil, err
	}
	s, err := place(path, mode, what, inUse)
	if err != nil {
		lock.Close()
		return nil, err
	}
	s.lock = lock
	return s, nil
}

// lockFile takes the flock on path, made if missing; held means another
// node serves the socket.
func lockFile(path string, inUse func(string) error) (*os.File, error) {
	for range 10 {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("opening %s: %w", path, err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, inUse("another dotmesh node")
			}
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		// The holder before us may have removed it between our open and
		// our lock; then nobody else would see our lock.
		a, err1 := f.Stat()
		b, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(a, b) {
			return f, nil
		}
		f.Close()
	}
	return nil, fmt.Errorf("%w: %s keeps changing; is another node starting?", dotmesh.ErrConflict, path)
}

// place removes a stale socket at path and moves a new one there.
func place(path string, mode os.FileMode, what string, inUse func(string) error) (*Socket, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%w: %s exists and is not a socket; remove it, or choose another path", dotmesh.ErrInUse, path)
		}
		if live(path) {
			return nil, inUse("another process")
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("removing the stale %s %s: %w", what, path, err)
		}
	}
	// Bind in a private directory, tighten the mode, then move it into
	// place: the socket is never reachable with a looser mode.
	tmp, err := os.MkdirTemp(filepath.Dir(path), ".dm-sock-")
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", what, err)
	}
	defer os.RemoveAll(tmp)
	tmpPath := filepath.Join(tmp, "s")
	ln, err := net.Listen("unix", tmpPath)
	if err != nil {
		return nil, fmt.Errorf("%w: listening on %s %s: %w", dotmesh.ErrUnavailable, what, path, err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	fail := func(err error) (*Socket, error) {
		ln.Close()
		return nil, fmt.Errorf("creating %s %s: %w", what, path, err)
	}
	if err := os.Chmod(tmpPath, mode); err != nil {
		return fail(err)
	}
	if err := renameNoReplace(tmpPath, path); errors.Is(err, os.ErrExist) {
		ln.Close()
		return nil, inUse("another process")
	} else if err != nil {
		return fail(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fail(err)
	}
	return &Socket{Listener: ln, path: path, fi: fi}, nil
}

// live reports whether a process listens on the socket at path: only a
// refused connection means nobody does (a full backlog, say, is alive).
func live(path string) bool {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return true
	}
	return !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, syscall.ENOENT)
}

// renameNoReplace moves from to to unless to exists (os.ErrExist then).
func renameNoReplace(from, to string) error {
	err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// A file system without RENAME_NOREPLACE: a hard link does not
		// replace either.
		if err = os.Link(from, to); err == nil {
			return os.Remove(from)
		}
	}
	if errors.Is(err, unix.EEXIST) {
		return os.ErrExist
	}
	return err
}

// Path is the socket's path.
func (s *Socket) Path() string { return s.path }

// Close stops listening, removes the socket if it is still ours, and lets
// go of the lock.
func (s *Socket) Close() error {
	err := s.Listener.Close()
	if errors.Is(err, net.ErrClosed) { // by the server that used it
		err = nil
	}
	if fi, lerr := os.Lstat(s.path); lerr == nil && os.SameFile(fi, s.fi) {
		if rerr := os.Remove(s.path); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	if s.lock != nil {
		// Removed while held, as the pid file is: a node waiting for it
		// sees the change and locks the new file.
		_ = os.Remove(s.lock.Name())
		s.lock.Close()
		s.lock = nil
	}
	return err
}
