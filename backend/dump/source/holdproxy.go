package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// holdProxy stands between a dump tool and its server, on a unix socket
// of its own, to take the tool's consistent read at a chosen instant:
// the tool connects and runs its preparation at its own pace, and the
// command that fixes its read (mysqldump's START TRANSACTION WITH
// CONSISTENT SNAPSHOT, redis-cli's SYNC, which forks the server) is held
// until release. A tool's process start is slow on a busy machine (a
// tenth of a second and more); the held command is one round trip.
//
// Only the first command containing pattern is held; everything else
// passes as it comes. The tools are synchronous clients: the chunk
// holding that command holds nothing after it.
type holdProxy struct {
	ln      net.Listener
	path    string
	dial    func() (net.Conn, error)
	pattern []byte

	held     chan struct{} // closed when the command is held
	release  chan struct{} // closed to send it
	sent     chan struct{} // closed when the instant is known
	at       time.Time
	mu       sync.Mutex
	conns    []net.Conn
	closeOne sync.Once
	relOne   sync.Once
}

// newHoldProxy listens in a private directory of the system's temporary
// one: a socket's path is limited to 107 bytes, which a data directory's
// scratch may exceed.
func newHoldProxy(pattern string, dial func() (net.Conn, error)) (*holdProxy, error) {
	dir, err := os.MkdirTemp("", "dm-hold-")
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", path)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	p := &holdProxy{ln: ln, path: path, dial: dial, pattern: []byte(pattern),
		held: make(chan struct{}), release: make(chan struct{}), sent: make(chan struct{})}
	go p.accept()
	return p, nil
}

func (p *holdProxy) accept() {
	first := true
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := p.dial()
		if err != nil {
			c.Close()
			continue // the tool reports the refused connection
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		watch := first // the tool's first connection is its dump's
		first = false
		go p.copyUp(c, up, watch)
		go func() {
			io.Copy(c, up)
			c.(interface{ CloseWrite() error }).CloseWrite()
		}()
	}
}

// copyUp copies the tool's bytes to the server, holding the first chunk
// that holds the pattern until release. The instant is when it is sent:
// the server runs the command as it arrives (a reply, read by this busy
// process, may come much later than the server took its snapshot).
func (p *holdProxy) copyUp(c, up net.Conn, watch bool) {
	defer up.(interface{ CloseWrite() error }).CloseWrite()
	buf := make([]byte, 64<<10)
	var tail []byte // the end of the previous chunk: a pattern may straddle two
	for {
		n, err := c.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			if watch && bytes.Contains(append(tail, chunk...), p.pattern) {
				watch = false
				close(p.held)
				<-p.release
				p.at = time.Now().UTC()
				if _, werr := up.Write(chunk); werr != nil {
					return
				}
				close(p.sent)
				chunk = nil
			} else if watch {
				tail = append(tail[:0], chunk[max(0, len(chunk)-len(p.pattern)):]...)
			}
			if _, werr := up.Write(chunk); werr != nil {
				return
			}
			if !watch {
				io.Copy(up, c)
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// errNeverHeld: the tool ended without sending the command to hold.
var errNeverHeld = errors.New("its command never came")

// take waits until the command is held (or the tool ended: exited),
// calls ready, sends the command and returns the instant.
func (p *holdProxy) take(ctx context.Context, exited <-chan struct{}, ready func(), tool string) (time.Time, error) {
	select {
	case <-p.held:
	case <-exited:
		return time.Time{}, fmt.Errorf("%w: %s ended before it took its snapshot: %w", dotmesh.ErrUnavailable, tool, errNeverHeld)
	case <-ctx.Done():
		return time.Time{}, ctx.Err()
	}
	if ready != nil {
		ready()
	}
	p.relOne.Do(func() { close(p.release) })
	select {
	case <-p.sent:
		return p.at, nil
	case <-exited:
		return time.Time{}, fmt.Errorf("%w: %s ended as it took its snapshot", dotmesh.ErrUnavailable, tool)
	case <-ctx.Done():
		return time.Time{}, ctx.Err()
	}
}

// Close stops listening and cuts every connection.
func (p *holdProxy) Close() {
	p.closeOne.Do(func() {
		p.ln.Close()
		os.RemoveAll(filepath.Dir(p.path))
		p.relOne.Do(func() { close(p.release) })
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
	})
}
