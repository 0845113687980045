package daemon_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/client"
	"github.com/dotmesh-io/dotmesh/daemon"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/server/servertest"
)

// running is a daemon started by start.
type running struct {
	addr string
	stop func() error // cancels Run and returns its error
}

// start runs the daemon on dir in a goroutine, on a free loopback port.
func start(t *testing.T, dir string) *running {
	t.Helper()
	return startWith(t, daemon.Config{DataDir: dir, Listen: "127.0.0.1:0"})
}

func connect(t *testing.T, r *running, dir string) *client.Client {
	t.Helper()
	key, err := os.ReadFile(filepath.Join(dir, "admin-api-key"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New("http://"+r.addr, "", strings.TrimSpace(string(key)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRunRestart(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	r := start(t, dir)
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("data directory: %v %v, want mode 0700", fi.Mode(), err)
	}
	pid, err := os.ReadFile(filepath.Join(dir, daemon.PIDFile))
	if err != nil || strings.TrimSpace(string(pid)) != strconv.Itoa(os.Getpid()) {
		t.Errorf("pid file holds %q (%v), want %d", pid, err, os.Getpid())
	}

	// A second server on the same data directory is refused.
	err = daemon.Run(ctx, daemon.Config{DataDir: dir, Listen: "127.0.0.1:0", Logger: servertest.Logger(t)})
	if !errors.Is(err, dotmesh.ErrInUse) || !strings.Contains(err.Error(), "another dm serve (pid "+strconv.Itoa(os.Getpid())+")") {
		t.Errorf("second Run on the same data directory: %v", err)
	}

	c := connect(t, r, dir)
	web := dotmesh.DotName{Name: "web"}
	if _, err := c.CreateDot(ctx, web, ""); err != nil {
		t.Fatal(err)
	}
	p, err := c.Path(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(p, "f"), []byte("kept"), 0o644)
	c1, err := c.Commit(ctx, web, "", "first", nil)
	if err != nil {
		t.Fatal(err)
	}
	key1, _ := os.ReadFile(filepath.Join(dir, "admin-api-key"))
	if err := r.stop(); err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, daemon.PIDFile)); !os.IsNotExist(err) {
		t.Errorf("pid file left after a clean exit: %v", err)
	}
	if _, err := c.Ping(ctx); !errors.Is(err, dotmesh.ErrUnavailable) {
		t.Errorf("ping after shutdown: %v", err)
	}

	// Restart: the same key works and the data is there.
	r = start(t, dir)
	key2, _ := os.ReadFile(filepath.Join(dir, "admin-api-key"))
	if string(key1) != string(key2) {
		t.Error("the admin key changed across a restart")
	}
	c = connect(t, r, dir)
	log, err := c.Log(ctx, web, "", 0)
	if err != nil || len(log) != 1 || log[0].ID != c1.ID {
		t.Fatalf("log after restart: %v %v", log, err)
	}
	p, _ = c.Path(ctx, "web")
	if b, _ := os.ReadFile(filepath.Join(p, "f")); string(b) != "kept" {
		t.Errorf("working state after restart: %q", b)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
}

func TestStalePIDFile(t *testing.T) {
	dir := t.TempDir()
	// A pid file left by a server that died: PID 1 is alive but holds no
	// lock on it, so it does not block.
	os.WriteFile(filepath.Join(dir, daemon.PIDFile), []byte("1\n"), 0o644)
	r := start(t, dir)
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigErrors(t *testing.T) {
	ctx := context.Background()
	if err := daemon.Run(ctx, daemon.Config{}); !errors.Is(err, dotmesh.ErrInvalidArgument) {
		t.Errorf("no data dir: %v", err)
	}
	err := daemon.Run(ctx, daemon.Config{DataDir: t.TempDir(), Backend: "tape"})
	if !errors.Is(err, dotmesh.ErrInvalidArgument) || !strings.Contains(err.Error(), "dump, files") {
		t.Errorf("unknown backend: %v", err)
	}
	// A busy port is a clear error, and the pid file is gone afterwards.
	dir := t.TempDir()
	r := start(t, t.TempDir())
	err = daemon.Run(ctx, daemon.Config{DataDir: dir, Listen: r.addr, Logger: servertest.Logger(t)})
	if !errors.Is(err, dotmesh.ErrUnavailable) || !strings.Contains(err.Error(), r.addr) {
		t.Errorf("busy port: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, daemon.PIDFile)); !os.IsNotExist(err) {
		t.Errorf("pid file left after a failed start: %v", err)
	}
	r.stop()
}

func TestBackendNames(t *testing.T) {
	if got := strings.Join(daemon.BackendNames(), ","); got != "btrfs,dump,files,zfs" {
		t.Errorf("BackendNames = %s", got)
	}
}
