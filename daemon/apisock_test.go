package daemon_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/dotmesh-io/dotmesh/client"
	"github.com/dotmesh-io/dotmesh/daemon"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/internal/node"
	"github.com/dotmesh-io/dotmesh/server/servertest"
)

// deadAddr is a loopback address nobody listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func adminKey(t *testing.T, dir string) string {
	t.Helper()
	key, err := os.ReadFile(filepath.Join(dir, node.AdminKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(key))
}

// rawGet sends GET path on the unix socket sock without a key and
// returns the answer's status.
func rawGet(t *testing.T, sock, path string) int {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("GET " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// staleSocket leaves a socket file at path that nobody listens on, as a
// node killed with SIGKILL does.
func staleSocket(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
}

func TestAPISocket(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "d")
	sock := filepath.Join(dir, node.APISocketFile)
	staleSocket(t, sock) // left by a node that died: replaced
	r := start(t, dir)

	fi, err := os.Lstat(sock)
	if err != nil {
		t.Fatalf("the API socket: %v", err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("the API socket's mode is %v, want a socket with 0600", fi.Mode())
	}
	if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != os.Getuid() {
		t.Errorf("the API socket is owned by uid %d, want the node's %d", st.Uid, os.Getuid())
	}

	// Through the socket: the TCP address given is dead, so only the
	// socket can answer.
	for _, direct := range []bool{true, false} {
		opts := []client.Option{client.WithLocalSocket(sock)}
		if direct {
			opts = append(opts, client.WithDirect())
		}
		c, err := client.New("http://"+deadAddr(t), "", adminKey(t, dir), opts...)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateDot(ctx, dotmesh.DotName{Name: "web" + map[bool]string{true: "d"}[direct]}, ""); err != nil {
			t.Fatalf("a call over the API socket (direct %v): %v", direct, err)
		}
	}

	// The same authentication: no key, no dots; the health check is open.
	if got := rawGet(t, sock, "/v1/dots"); got != http.StatusUnauthorized {
		t.Errorf("GET /v1/dots over the socket without a key: %d, want 401", got)
	}
	if got := rawGet(t, sock, "/healthz"); got != http.StatusOK {
		t.Errorf("GET /healthz over the socket: %d, want 200", got)
	}
	c, err := client.New("http://"+deadAddr(t), "", "wrong-key", client.WithLocalSocket(sock), client.WithDirect())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListDots(ctx); !errors.Is(err, dotmesh.ErrUnauthorized) {
		t.Errorf("a wrong key over the socket: %v, want unauthorized", err)
	}

	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the API socket after a clean stop: %v, want it removed", err)
	}
}

// A client falls back to TCP when the socket is missing, stale, or
// turned off on the node.
func TestAPISocketFallback(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "d")
	r := startWith(t, daemon.Config{DataDir: dir, Listen: "127.0.0.1:0", NoAPISocket: true})
	sock := filepath.Join(dir, node.APISocketFile)
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("NoAPISocket: the socket file: %v, want none", err)
	}
	call := func(what string) {
		t.Helper()
		for _, direct := range []bool{true, false} {
			opts := []client.Option{client.WithLocalSocket(sock)}
			if direct {
				opts = append(opts, client.WithDirect())
			}
			c, err := client.New("http://"+r.addr, "", adminKey(t, dir), opts...)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.ListDots(ctx); err != nil {
				t.Errorf("%s (direct %v): %v, want the call over TCP", what, direct, err)
			}
		}
	}
	call("no socket file (ENOENT)")
	staleSocket(t, sock)
	call("a stale socket (ECONNREFUSED)")
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
}

// A socket a live process serves in the data directory is not taken
// over: the node does not start, and the socket still answers.
func TestAPISocketLiveNotTakenOver(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, node.APISocketFile)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close() // listening is enough: a connect succeeds into the backlog
	err = daemon.Run(context.Background(), daemon.Config{DataDir: dir, Listen: "127.0.0.1:0", Logger: servertest.Logger(t)})
	if !errors.Is(err, dotmesh.ErrInUse) || !strings.Contains(err.Error(), sock) {
		t.Errorf("a start over a live API socket: %v, want in use", err)
	}
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatalf("the live socket after the refused start: %v", err)
	}
	c.Close()
	if _, err := os.Stat(filepath.Join(dir, daemon.PIDFile)); !os.IsNotExist(err) {
		t.Errorf("pid file left after a failed start: %v", err)
	}
}
