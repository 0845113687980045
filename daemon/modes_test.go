package daemon_test

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/daemon"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/server/servertest"
)

// openTempDir is a temp dir other local users can traverse (t.TempDir and
// its parent are 0700), so that only the node's own modes keep them out.
func openTempDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	for _, p := range []string{d, filepath.Dir(d)} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// asNobody runs argv as uid/gid 65534 (setpriv, util-linux) and returns
// its combined output and error.
func asNobody(t *testing.T, argv ...string) (string, error) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root to run commands as uid 65534 (setpriv --reuid); run it as root")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatal("setpriv (Debian util-linux) is needed to run commands as another user")
	}
	out, err := exec.Command("setpriv", append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", "--"}, argv...)...).CombinedOutput()
	return string(out), err
}

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

// What the node writes is private to its user, also in a data dir an
// operator made 0755, and also when the data dir is opened again (0755)
// behind the node's back: another user reads neither packs nor records
// nor working files. --open-worktrees lets another user reach a working
// tree, still not the store.
func TestDataPrivateToTheNodeUser(t *testing.T) {
	ctx := context.Background()
	for _, open := range []bool{false, true} {
		dir := filepath.Join(openTempDir(t), "data")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		r := startWith(t, daemon.Config{DataDir: dir, OpenWorktrees: open})
		c := connect(t, r, dir)
		web := dotmesh.DotName{Name: "web"}
		if _, err := c.CreateDot(ctx, web, ""); err != nil {
			t.Fatal(err)
		}
		p, err := c.Path(ctx, "web")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "f"), []byte("secret"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Commit(ctx, web, "", "one", nil); err != nil {
			t.Fatal(err)
		}
		packs, _ := filepath.Glob(filepath.Join(dir, "dump", "store", "packs", "*"))
		records, _ := filepath.Glob(filepath.Join(dir, "dump", "branches", "*", "*", "commits", "*"))
		if len(packs) == 0 || len(records) == 0 {
			t.Fatalf("no packs (%v) or commit records (%v) after a commit", packs, records)
		}
		wantDir := os.FileMode(0o700)
		if open {
			wantDir = 0o711
		}
		if m := mode(t, dir); m != wantDir {
			t.Errorf("open=%v: data dir mode %o, want %o", open, m, wantDir)
		}
		for p, want := range map[string]os.FileMode{
			filepath.Join(dir, "dump"):                   wantDir,
			filepath.Join(dir, "dump", "store"):          0o700,
			filepath.Join(dir, "dump", "store", "packs"): 0o700,
			packs[0]:                            0o400,
			records[0]:                          0o600,
			filepath.Dir(records[0]):            0o700,
			filepath.Join(dir, daemon.PIDFile):  0o600,
			filepath.Join(dir, "admin-api-key"): 0o600,
			filepath.Join(dir, "dump", "lock"):  0o600,
			filepath.Dir(p):                     map[bool]os.FileMode{false: 0o700, true: 0o755}[open],
		} {
			if m := mode(t, p); m != want {
				t.Errorf("open=%v: %s mode %o, want %o", open, strings.TrimPrefix(p, dir), m, want)
			}
		}
		file := filepath.Join(p, "f")
		out, err := asNobody(t, "cat", file)
		if open != (err == nil) {
			t.Errorf("open=%v: another user reading a working file: %v %q", open, err, out)
		}
		// Even with the data dir opened behind the node's back, the
		// store and the records stay private.
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{packs[0], records[0]} {
			if out, err := asNobody(t, "cat", f); err == nil || !strings.Contains(out, "Permission denied") {
				t.Errorf("open=%v: another user read %s: %v %q", open, strings.TrimPrefix(f, dir), err, out)
			}
		}
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
		// A restart makes the data dir private again.
		r = startWith(t, daemon.Config{DataDir: dir, OpenWorktrees: open})
		if m := mode(t, dir); m != wantDir {
			t.Errorf("open=%v: data dir mode %o after a restart, want %o", open, m, wantDir)
		}
		if out, err := asNobody(t, "ls", dir); err == nil {
			t.Errorf("open=%v: another user listed the data dir: %q", open, out)
		}
		r.stop()
	}
}

// A restart without Listen listens where the node last did; plain HTTP
// beyond loopback needs Insecure, which is remembered with the address.
func TestListenRememberedAndInsecure(t *testing.T) {
	dir := t.TempDir()
	r := startWith(t, daemon.Config{DataDir: dir, Listen: "127.0.0.1:0"})
	first := r.addr
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	r = startWith(t, daemon.Config{DataDir: dir})
	if r.addr != first {
		t.Errorf("restart without Listen listens on %s, want %s as before", r.addr, first)
	}
	r.stop()

	other := t.TempDir()
	err := daemon.Run(context.Background(), daemon.Config{DataDir: other, Listen: "0.0.0.0:0", Logger: servertest.Logger(t)})
	if !errors.Is(err, dotmesh.ErrInvalidArgument) || !strings.Contains(err.Error(), "--insecure") || !strings.Contains(err.Error(), "0.0.0.0:0") {
		t.Fatalf("plain HTTP on 0.0.0.0 without Insecure: %v", err)
	}
	if _, err := os.Stat(filepath.Join(other, "admin-api-key")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused start left a key: %v", err)
	}
	r = startWith(t, daemon.Config{DataDir: other, Listen: "0.0.0.0:0", Insecure: true})
	addr := r.addr
	r.stop()
	r = startWith(t, daemon.Config{DataDir: other}) // remembered with its --insecure
	if r.addr != addr {
		t.Errorf("restart listens on %s, want %s", r.addr, addr)
	}
	if _, port, _ := net.SplitHostPort(addr); port == "0" {
		t.Errorf("remembered port 0")
	}
	r.stop()
}

// startWith is start with more of Config (DataDir and Listen from cfg;
// Listen "" means the remembered one).
func startWith(t *testing.T, cfg daemon.Config) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	cfg.Logger, cfg.Version = servertest.Logger(t), "test"
	cfg.Ready = func(addr string) { ready <- addr }
	go func() { done <- daemon.Run(ctx, cfg) }()
	select {
	case addr := <-ready:
		r := &running{addr: addr, stop: func() error { cancel(); return <-done }}
		t.Cleanup(func() { cancel() })
		return r
	case err := <-done:
		cancel()
		t.Fatalf("daemon.Run: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("daemon did not become ready in 30s")
	}
	return nil
}
