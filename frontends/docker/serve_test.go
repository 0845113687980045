package docker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func TestSocketLifecycle(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "plugins", "dm-test.sock")
	require.Equal(t, "dm-test", DriverName(path))

	// A stale socket (nobody listening) is replaced.
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	stale, err := net.Listen("unix", path)
	require.NoError(t, err)
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()

	s, err := Listen(path)
	require.NoError(t, err)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o660), fi.Mode().Perm())
	s.Serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hi") }), slog.New(slog.NewTextHandler(io.Discard, nil)))

	// A live one is refused, and left alone.
	_, err = Listen(path)
	require.ErrorIs(t, err, dotmesh.ErrInUse)
	require.ErrorContains(t, err, "serves the Docker plugin socket "+path+"; stop it, or choose another --docker-socket")
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", path)
	}}}
	resp, err := hc.Get("http://plugin/")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, "hi", string(b))

	require.NoError(t, s.Shutdown(context.Background()))
	require.NoFileExists(t, path)
	entries, _ := os.ReadDir(filepath.Dir(path))
	require.Empty(t, entries, "no temp dirs left behind")

	// A file that is not a socket is never removed.
	require.NoError(t, os.WriteFile(path, []byte("x"), 0o600))
	_, err = Listen(path)
	require.ErrorContains(t, err, "not a socket")
	require.FileExists(t, path)
}

func TestEngineFromEnv(t *testing.T) {
	env := func(v string) func(string) string { return func(string) string { return v } }
	require.Equal(t, DefaultEngine, EngineFromEnv(env("")))
	require.Equal(t, DefaultEngine, EngineFromEnv(env("tcp://1.2.3.4:2375")))
	require.Equal(t, "/tmp/d.sock", EngineFromEnv(env("unix:///tmp/d.sock")))
	require.True(t, strings.HasSuffix(DefaultSocket, "/dm.sock"))
}

// Nodes starting at once on one socket path, over a stale socket: exactly
// one serves it, the others are refused, and the socket in place is the
// one that serves (none removed another's).
func TestSocketNeverTakenOver(t *testing.T) {
	for round := range 20 {
		path := filepath.Join(t.TempDir(), "dm.sock")
		stale, err := net.Listen("unix", path)
		require.NoError(t, err)
		stale.(*net.UnixListener).SetUnlinkOnClose(false)
		stale.Close()

		const n = 6
		servers := make(chan *Server, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if s, err := Listen(path); err == nil {
					servers <- s
				} else if !errors.Is(err, dotmesh.ErrInUse) {
					t.Errorf("round %d: %v", round, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		close(servers)
		var got []*Server
		for s := range servers {
			s.Serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hi") }), slog.New(slog.NewTextHandler(io.Discard, nil)))
			got = append(got, s)
		}
		if len(got) != 1 {
			t.Fatalf("round %d: %d of %d nodes got the socket; want exactly 1", round, len(got), n)
		}
		c, err := net.Dial("unix", path)
		require.NoError(t, err, "round %d: the socket in place does not answer", round)
		c.Close()
		require.NoError(t, got[0].Shutdown(context.Background()))
	}
}
