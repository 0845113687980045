package hooks_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/dump/source/sourcetest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/hooks"
)

// blocked starts f and reports whether it is still running after d; the
// returned channel yields its error when it ends.
func blocked(d time.Duration, f func() error) (bool, <-chan error) {
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		done <- err
		return false, done
	case <-time.After(d):
		return true, done
	}
}

func waitDone(t *testing.T, what string, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s is still blocked 30s after the release", what)
	}
}

// TestMySQLHook: against a private MariaDB, the mysql quiesce hook holds
// FLUSH TABLES WITH READ LOCK on its connection: another connection's
// INSERT waits while it holds, and goes through once released. Past its
// timeout the hook lets go by itself, and release says so.
func TestMySQLHook(t *testing.T) {
	m := sourcetest.StartMariaDB(t)
	m.SQL(t, "", "CREATE DATABASE app; CREATE TABLE app.t (id int PRIMARY KEY) ENGINE=InnoDB; INSERT INTO app.t VALUES (1);")
	client, err := exec.LookPath("mariadb")
	if err != nil {
		t.Fatalf("the mariadb client is needed (apt-get install mariadb-client): %v", err)
	}
	insert := func(id string) func() error {
		return func() error {
			out, err := exec.Command(client, "--no-defaults", "--socket="+m.Socket, "--user=root", "app", "-e", "INSERT INTO t VALUES ("+id+")").CombinedOutput()
			if err != nil {
				return errors.New(err.Error() + ": " + string(out))
			}
			return nil
		}
	}
	r := hooks.New(nil)
	ctx := context.Background()
	h := dotmesh.Hook{Stage: dotmesh.HookQuiesce, Kind: dotmesh.HookMySQL, URL: m.URL("app"), Timeout: 30 * time.Second}
	if err := r.Check(h); err != nil {
		t.Fatalf("Check: %v", err)
	}
	release, err := r.Quiesce(ctx, h, dotmesh.HookCall{})
	if err != nil {
		t.Fatalf("Quiesce: %v", err)
	}
	waiting, done := blocked(time.Second, insert("2"))
	if !waiting {
		release(ctx)
		t.Fatalf("an INSERT went through while the hook held the lock: %v", <-done)
	}
	start := time.Now()
	if err := release(ctx); err != nil {
		t.Fatalf("release: %v", err)
	}
	waitDone(t, "the INSERT after the release", done)
	t.Logf("the INSERT waited for the lock and finished %s after the release", time.Since(start).Round(time.Millisecond))
	if got := m.SQL(t, "app", "SELECT count(*) FROM t;"); got != "2" {
		t.Errorf("rows after the release: %s, want 2", got)
	}

	// Past its timeout the hook lets go by itself.
	h.Timeout = 500 * time.Millisecond
	release, err = r.Quiesce(ctx, h, dotmesh.HookCall{})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(h.Timeout)
	waiting, done = blocked(10*time.Second, insert("3"))
	if waiting {
		release(ctx)
		t.Fatal("the lock was still held 10s after the hook's timeout")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := release(ctx); err == nil || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("release after the timeout: %v, want it to say the lock went at the timeout", err)
	}
	// A server that is not there: refused, nothing held.
	h.URL = "mysql://root@unix(" + filepath.Join(t.TempDir(), "none.sock") + ")/app"
	if _, err := r.Quiesce(ctx, h, dotmesh.HookCall{}); err == nil {
		t.Error("Quiesce against no server succeeded")
	}
}

// loopFS mounts a fresh ext4 image at a new directory and returns it;
// it is thawed and unmounted when the test ends.
func loopFS(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the fsfreeze test mounts a loop device and freezes it: it needs root")
	}
	for _, tool := range []string{"mkfs.ext4", "mount", "umount", "fsfreeze"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed (e2fsprogs, util-linux): %v", tool, err)
		}
	}
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "fs.img"), filepath.Join(dir, "data")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("truncate", "-s", "64M", img).CombinedOutput(); err != nil {
		t.Fatalf("truncate: %v: %s", err, out)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount -o loop (loop devices are needed): %v: %s", err, out)
	}
	t.Cleanup(func() {
		exec.Command("fsfreeze", "-u", mnt).Run() // only if a failed test left it frozen
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	return mnt
}

// TestFSFreezeHook: the fsfreeze hook freezes a subdot that is a file
// system of its own (a loop-mounted ext4): a write there waits until the
// release thaws it; past its timeout it thaws by itself; a subdot on its
// parent's file system is refused, frozen nothing.
func TestFSFreezeHook(t *testing.T) {
	mnt := loopFS(t)
	r := hooks.New(nil)
	ctx := context.Background()
	h := dotmesh.Hook{Stage: dotmesh.HookQuiesce, Kind: dotmesh.HookFSFreeze, Subdot: "data", Timeout: 30 * time.Second}
	call := dotmesh.HookCall{Subdots: map[string]string{"data": mnt}}
	write := func(name string) func() error {
		return func() error { return os.WriteFile(filepath.Join(mnt, name), []byte("x"), 0o644) }
	}
	release, err := r.Quiesce(ctx, h, call)
	if err != nil {
		t.Fatalf("Quiesce: %v", err)
	}
	waiting, done := blocked(time.Second, write("during"))
	if !waiting {
		release(ctx)
		t.Fatalf("a write went through while the file system was frozen: %v", <-done)
	}
	if err := release(ctx); err != nil {
		t.Fatalf("release: %v", err)
	}
	waitDone(t, "the write after the thaw", done)

	h.Timeout = 500 * time.Millisecond
	release, err = r.Quiesce(ctx, h, call)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(h.Timeout)
	if waiting, done = blocked(10*time.Second, write("after-timeout")); waiting {
		release(ctx)
		t.Fatal("the file system was still frozen 10s after the hook's timeout")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := release(ctx); err == nil || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("release after the timeout: %v, want it to say it thawed at the timeout", err)
	}

	plain := dotmesh.HookCall{Subdots: map[string]string{"data": t.TempDir()}}
	if _, err := r.Quiesce(ctx, h, plain); err == nil || !strings.Contains(err.Error(), "file system of its own") {
		t.Errorf("fsfreeze of a directory on its parent's file system: %v, want a refusal", err)
	}
}
