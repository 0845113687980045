// Package zfstest gives tests real ZFS: it starts the zfs-fuse daemon
// when no ZFS answers, and makes file-backed pools that are destroyed when
// the test ends, also when it fails.
//
// The daemon is a system service shared by every test binary running at
// the time, so a daemon started here is left running afterwards; it
// holds nothing once the pools are destroyed. Pools are named
// "dmt-<pid>-<random>"; pools of test processes that died without cleaning
// up are destroyed by the next caller of Require.
//
// zfs-fuse can deadlock: it then answers zpool but no file system
// request. Require probes for that. A daemon this package started (its
// PID is in the pidfile) is restarted once; one started by someone else is
// left alone. zfs-fuse can also crash: the test it crashed under fails
// saying so, and the next Require starts a new daemon, so one crash does
// not fail every later test of the binary. Without ZFS tools, when the
// daemon cannot be started, or when it stays deadlocked, tests fail (not
// skip) with a message naming zfs-fuse.
//
// Test pools are created with cachefile=none, so a restarted daemon never
// brings back pools of earlier runs.
package zfstest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/internal/fdleak"
)

const poolPrefix = "dmt-"

var (
	mu       sync.Mutex
	ready    bool  // ZFS answered and passed the probe
	readyErr error // why it did not: lasting for the binary
	watched  int   // PID of the tests' own daemon that passed, 0 if not ours
)

// Require fails the test unless ZFS tools are installed and ZFS answers,
// starting zfs-fuse when needed, also when the tests' daemon has exited
// since the last call.
func Require(t testing.TB) {
	t.Helper()
	if _, err := require(); err != nil {
		t.Fatalf("real ZFS is needed for this test: %v", err)
	}
}

// require makes sure ZFS works and returns the PID of the tests' daemon
// serving it (0 when it is not theirs).
func require() (int, error) {
	mu.Lock()
	defer mu.Unlock()
	if readyErr != nil {
		return 0, readyErr
	}
	if ready && watched != 0 && !isZFSFuse(watched) {
		fmt.Fprintf(os.Stderr, "zfstest: zfs-fuse (pid %d), which the tests started, has exited; starting a new one\n", watched)
		ready = false
	}
	if !ready {
		if readyErr = ensureZFS(); readyErr != nil {
			return 0, readyErr
		}
		ready = true
		watched, _ = ourDaemon()
	}
	return watched, nil
}

func tool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if p := filepath.Join(dir, name); isFile(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found: install zfs-fuse (apt-get install zfs-fuse)", name)
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// run runs zfs or zpool and returns combined output. A deadline keeps a
// wedged daemon from hanging the test binary.
func run(name string, args ...string) (string, error) {
	p, err := tool(name)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, p, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	err = cmd.Run()
	if err != nil {
		err = fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), err
}

func answers() bool {
	_, err := run("zpool", "list", "-H", "-o", "name")
	return err == nil
}

func ensureZFS() error {
	if _, err := tool("zfs"); err != nil {
		return err
	}
	if _, err := tool("zpool"); err != nil {
		return err
	}
	if !answers() {
		if _, err := os.Stat("/dev/zfs"); err == nil {
			return fmt.Errorf("/dev/zfs exists but zpool does not answer: %v", lastErr())
		}
		if err := startDaemon(); err != nil {
			return err
		}
	}
	destroyStalePools()
	err := probeIO()
	if !errors.Is(err, errDeadlocked) {
		return err
	}
	pid, ours := ourDaemon()
	if !ours {
		return fmt.Errorf("%w; this zfs-fuse was not started by the tests, so they leave it alone: restart it (kill zfs-fuse, umount -l its mounts, start zfs-fuse again)", err)
	}
	fmt.Fprintf(os.Stderr, "zfstest: %v; restarting zfs-fuse (pid %d), which the tests started\n", err, pid)
	if rerr := restartDaemon(pid); rerr != nil {
		return fmt.Errorf("%w; restarting it failed: %v", err, rerr)
	}
	destroyStalePools()
	return probeIO()
}

// errDeadlocked marks a zfs-fuse that answers zpool but not file system
// requests.
var errDeadlocked = errors.New("zfs-fuse answers zpool but not file system requests within 30s (deadlocked)")

// pidfile is where startDaemon has zfs-fuse record its PID, so that later
// test binaries know the daemon is the tests' own.
func pidfile() string { return filepath.Join(os.TempDir(), "dotmesh-zfstest-zfs-fuse.pid") }

// ourDaemon returns the PID of a running zfs-fuse started by startDaemon.
func ourDaemon() (int, bool) {
	b, err := os.ReadFile(pidfile())
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 || !isZFSFuse(pid) {
		return 0, false
	}
	return pid, true
}

// isZFSFuse reports whether process pid runs and is zfs-fuse.
func isZFSFuse(pid int) bool {
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return err == nil && strings.TrimSpace(string(comm)) == "zfs-fuse"
}

// restartDaemon kills the tests' deadlocked zfs-fuse by PID and starts a
// new daemon.
func restartDaemon(pid int) error {
	if err := killDaemon(pid); err != nil {
		return err
	}
	_ = os.Remove(pidfile())
	return startDaemon()
}

// killDaemon SIGKILLs zfs-fuse pid and waits until it is gone.
func killDaemon(pid int) error {
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("killing zfs-fuse %d: %v", pid, err)
	}
	for deadline := time.Now().Add(10 * time.Second); isZFSFuse(pid); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("zfs-fuse %d did not exit after SIGKILL", pid)
		}
	}
	return nil
}

// detachDeadMounts lazily unmounts the file systems of test pools left by
// a daemon that is gone: requests to them hang forever or fail with
// "transport endpoint is not connected", also the removal of the test's
// temporary directory.
func detachDeadMounts() {
	mounts, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(mounts), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[2] != "fuse.zfs" || !strings.HasPrefix(f[0], poolPrefix) {
			continue
		}
		target := strings.ReplaceAll(f[1], `\040`, " ")
		if err := syscall.Unmount(target, syscall.MNT_DETACH); err != nil {
			fmt.Fprintf(os.Stderr, "zfstest: unmounting %s of a test pool: %v\n", target, err)
		}
	}
}

// probeIO writes and reads a file on a dataset of a small pool of its
// own, within a deadline: a zfs-fuse that still answers zpool can be
// deadlocked for file system requests, and a test would then hang until
// its binary times out instead of failing with a reason.
func probeIO() error {
	dir, err := os.MkdirTemp("", "dmt-probe-")
	if err != nil {
		return err
	}
	name := fmt.Sprintf("%s%d-probe%s", poolPrefix, os.Getpid(), randHex(4))
	img, mnt := filepath.Join(dir, "pool.img"), filepath.Join(dir, "mnt")
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			if err := os.WriteFile(img, nil, 0o600); err != nil {
				return err
			}
			if err := os.Truncate(img, 64<<20); err != nil {
				return err
			}
			if _, err := run("zpool", "create", "-o", "cachefile=none", "-m", "none", name, img); err != nil {
				return err
			}
			if _, err := run("zfs", "create", "-o", "mountpoint="+mnt, name+"/probe"); err != nil {
				return err
			}
			f := filepath.Join(mnt, "probe")
			if err := os.WriteFile(f, []byte("ok"), 0o644); err != nil {
				return err
			}
			if b, err := os.ReadFile(f); err != nil || string(b) != "ok" {
				return fmt.Errorf("reading back %s: %q, %v", f, b, err)
			}
			return nil
		}()
	}()
	select {
	case err := <-done:
		if derr := destroyPool(name); err == nil && derr != nil {
			err = derr
		}
		os.RemoveAll(dir)
		if err != nil {
			return fmt.Errorf("zfs-fuse fails a write to a new dataset: %v", err)
		}
		return nil
	case <-time.After(30 * time.Second):
		// Left behind: removing it would hang on the same requests. With
		// cachefile=none a restarted daemon forgets it.
		return fmt.Errorf("%w (the probe pool %s on %s stays behind)", errDeadlocked, name, img)
	}
}

func lastErr() error {
	_, err := run("zpool", "list")
	return err
}

// startDaemon starts zfs-fuse, which forks into the background, and waits
// until it answers.
func startDaemon() error {
	bin, err := tool("zfs-fuse")
	if err != nil {
		return fmt.Errorf("ZFS does not answer and zfs-fuse is not installed: apt-get install zfs-fuse (%v)", lastErr())
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return fmt.Errorf("zfs-fuse needs /dev/fuse: %v", err)
	}
	// zfs-fuse silently exits 1 when its pidfile exists, also when the
	// daemon that wrote it is long gone.
	if _, running := ourDaemon(); !running {
		_ = os.Remove(pidfile())
	}
	// Only called when no daemon answers: what test pools still have
	// mounted is dead.
	detachDeadMounts()
	// The daemon outlives this test binary: it must not inherit what the
	// binary inherited (a wrapper's `flock` lock fd would stay locked
	// for the daemon's whole life).
	fdleak.CloseInheritedOnExec()
	var out bytes.Buffer
	cmd := exec.Command(bin, "--pidfile", pidfile())
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		// Another test binary may have started one just now.
		if _, running := ourDaemon(); !running {
			return fmt.Errorf("starting zfs-fuse: %v: %s", err, out.String())
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for !answers() {
		if time.Now().After(deadline) {
			return fmt.Errorf("zfs-fuse was started but does not answer: %v", lastErr())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

// destroyStalePools destroys test pools whose process is gone.
func destroyStalePools() {
	out, err := run("zpool", "list", "-H", "-o", "name")
	if err != nil {
		return
	}
	for _, name := range strings.Fields(out) {
		rest, ok := strings.CutPrefix(name, poolPrefix)
		if !ok {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() || syscall.Kill(pid, 0) == nil {
			continue
		}
		_ = destroyPool(name)
	}
}

// Pool reserves a unique pool name and a directory for its file, and
// destroys the pool at the end of the test if it exists then. It does not
// create the pool: the backend under test does, from Options{Pool, DataDir}.
func Pool(t testing.TB) (name, dir string) {
	t.Helper()
	daemon, err := require()
	if err != nil {
		t.Fatalf("real ZFS is needed for this test: %v", err)
	}
	name = fmt.Sprintf("%s%d-%s", poolPrefix, os.Getpid(), randHex(6))
	dir = t.TempDir() // registered first, so removed after the pool is gone
	t.Cleanup(func() {
		if daemon != 0 && !isZFSFuse(daemon) {
			// The pool went with it (cachefile=none); its mounts are
			// detached, or removing dir would fail on them.
			detachDeadMounts()
			t.Errorf("zfs-fuse (pid %d) exited during this test: it crashed, or something killed it; the next test starts a new one", daemon)
			return
		}
		if err := destroyPool(name); err != nil {
			t.Errorf("destroying test pool: %v", err)
		}
	})
	return name, dir
}

// NewPool creates a pool on a sparse file of size bytes, as Pool but made
// here.
func NewPool(t testing.TB, size int64) (name, dir string) {
	t.Helper()
	name, dir = Pool(t)
	file := filepath.Join(dir, "pool.img")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := run("zpool", "create", "-o", "cachefile=none", "-m", "none", name, file); err != nil {
		t.Fatal(err)
	}
	return name, dir
}

func exists(pool string) bool {
	_, err := run("zpool", "list", "-H", "-o", "name", pool)
	return err == nil
}

// destroyPool destroys a pool, retrying while zfs-fuse calls it busy.
func destroyPool(name string) error {
	var err error
	for i := 0; i < 50; i++ {
		if !exists(name) {
			return nil
		}
		if _, err = run("zpool", "destroy", "-f", name); err == nil {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return err
}

// Export exports a pool, retrying while busy: a restart as the daemon
// sees it.
func Export(t testing.TB, name string) {
	t.Helper()
	var err error
	for i := 0; i < 50; i++ {
		if _, err = run("zpool", "export", name); err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("exporting pool %s: %v", name, err)
}

// ZFS runs a zfs command for test assertions and returns its output.
func ZFS(t testing.TB, args ...string) string {
	t.Helper()
	out, err := run("zfs", args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// Ensure is Require for programs that are not tests (the torture run): it
// returns why ZFS cannot be used instead of failing a test.
func Ensure() error {
	_, err := require()
	return err
}

// NewPoolName returns a unique pool name that Ensure of a later process
// destroys once this process is gone, should it not destroy the pool itself.
func NewPoolName() string {
	return fmt.Sprintf("%s%d-%s", poolPrefix, os.Getpid(), randHex(6))
}

// DestroyPool destroys pool name if it exists, retrying while zfs-fuse
// calls it busy.
func DestroyPool(name string) error { return destroyPool(name) }
