package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dotmesh-io/dotmesh/internal/node"
)

// supervisedEnv makes the test binary a node StartNode runs (see
// TestSupervisedProcess): "MODE:DIR".
const supervisedEnv = "DOTMESH_TEST_SUPERVISED"

// TestSupervisedProcess is not a test: run by StartNode with supervisedEnv
// set, it behaves as a node in DIR would. Modes: serve holds the pid file
// until SIGTERM; stubborn holds it and ignores SIGTERM; fail logs an error
// and exits.
func TestSupervisedProcess(t *testing.T) {
	mode, dir, ok := strings.Cut(os.Getenv(supervisedEnv), ":")
	if !ok {
		return
	}
	if mode == "fail" {
		fmt.Fprintln(os.Stderr, "dm: the backend zfs cannot start: no zpool")
		os.Exit(1)
	}
	term := make(chan os.Signal, 1)
	if mode == "stubborn" {
		signal.Ignore(syscall.SIGTERM)
	} else {
		signal.Notify(term, syscall.SIGTERM)
	}
	p, err := lockPIDFile(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dm:", err)
		os.Exit(1)
	}
	select {
	case <-term:
	case <-time.After(time.Minute):
	}
	p.release()
	os.Exit(0)
}

// startSupervised starts the test binary in mode on a fresh data dir, as
// StartNode starts `dm serve`; ready is its readiness probe (default: it
// holds the pid file).
func startSupervised(t *testing.T, mode string, timeout time.Duration, ready func(context.Context) error) (dir string, pid int, err error) {
	dir = t.TempDir()
	t.Setenv(supervisedEnv, mode+":"+dir)
	if ready == nil {
		ready = func(context.Context) error {
			if _, running, err := NodeRunning(dir); err != nil || !running {
				return fmt.Errorf("not running yet (%v)", err)
			}
			return nil
		}
	}
	pid, err = StartNode(context.Background(), node.StartSpec{
		DataDir: dir,
		Args:    []string{"-test.run=^TestSupervisedProcess$", "-test.count=1"},
		Addr:    "127.0.0.1:1",
		Timeout: timeout,
		Ready:   ready,
	})
	if pid > 0 {
		t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	}
	return dir, pid, err
}

// A node started in the background runs detached until StopNode stops it
// with SIGTERM; stopping it again finds none.
func TestStartAndStopNode(t *testing.T) {
	dir, pid, err := startSupervised(t, "serve", 30*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, running, err := NodeRunning(dir); err != nil || !running || got != pid {
		t.Fatalf("after StartNode = pid %d: NodeRunning = %d %v %v", pid, got, running, err)
	}
	if sid, err := unix.Getsid(pid); err != nil || sid != pid {
		t.Errorf("the node is not in a session of its own: sid %d, %v", sid, err)
	}
	st, err := StopNode(dir, 10*time.Second)
	if err != nil || st != (node.Stopped{PID: pid}) {
		t.Fatalf("StopNode = %+v, %v; want pid %d stopped, not killed", st, err, pid)
	}
	if _, running, err := NodeRunning(dir); err != nil || running {
		t.Fatalf("after StopNode: running %v, %v", running, err)
	}
	if st, err := StopNode(dir, time.Second); err != nil || st != (node.Stopped{}) {
		t.Fatalf("StopNode with none running = %+v, %v", st, err)
	}
}

// A node that ignores SIGTERM is killed after the timeout.
func TestStopNodeKillsAfterTimeout(t *testing.T) {
	dir, pid, err := startSupervised(t, "stubborn", 30*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := StopNode(dir, 300*time.Millisecond)
	if err != nil || st != (node.Stopped{PID: pid, Killed: true}) {
		t.Fatalf("StopNode = %+v, %v; want pid %d killed", st, err, pid)
	}
	if _, running, _ := NodeRunning(dir); running {
		t.Fatal("still running after SIGKILL")
	}
}

// A node that exits at once is reported with the last line of its log.
func TestStartNodeThatExits(t *testing.T) {
	dir, _, err := startSupervised(t, "fail", 30*time.Second, nil)
	if err == nil {
		t.Fatal("StartNode succeeded for a node that exits")
	}
	for _, want := range []string{"the node did not start (exit status 1): the backend zfs cannot start: no zpool", "(see " + filepath.Join(dir, LogFile) + ")"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// A node that never answers is killed after the timeout, and the error
// says the probe's last complaint.
func TestStartNodeTimesOut(t *testing.T) {
	dir, _, err := startSupervised(t, "serve", 500*time.Millisecond, func(context.Context) error { return errors.New("connection refused") })
	if err == nil || !strings.Contains(err.Error(), "the node did not answer on 127.0.0.1:1 within 500ms (last error: connection refused)") {
		t.Fatalf("StartNode of a node that never answers: %v", err)
	}
	if _, running, err := NodeRunning(dir); err != nil || running {
		t.Fatalf("the node was left running: %v %v", running, err)
	}
}
