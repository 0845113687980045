package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/dotmesh-io/dotmesh/internal/node"
)

// LogFile is the file in the data directory that StartNode sends a
// background node's output to.
const LogFile = "dm.log"

// StartNode starts the running program again with spec.Args, detached in
// its own session so that it outlives the caller and the terminal, with
// its output appended to DataDir/dm.log, and polls spec.Ready until the
// node answers. On failure the started process is killed and the error
// names the log.
func StartNode(ctx context.Context, spec node.StartSpec) (pid int, err error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("finding the dm binary to start the node: %w", err)
	}
	logPath := filepath.Join(spec.DataDir, LogFile)
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return 0, fmt.Errorf("opening the node's log: %w", err)
	}
	defer logf.Close() // the child has its own copy
	cmd := exec.Command(exe, spec.Args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if spec.Stdin != nil {
		cmd.Stdin = bytes.NewReader(spec.Stdin) // a pipe, closed once written
	}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting dm serve: %w", err)
	}
	pid = cmd.Process.Pid
	// Closed when the child exits, so that every waiter sees it.
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()

	if err := waitReady(ctx, spec, logPath, exited, func() error { return waitErr }); err != nil {
		select {
		case <-exited:
		default:
			cmd.Process.Kill() // only the process we started
			<-exited
		}
		return 0, fmt.Errorf("%v (see %s)", err, logPath)
	}
	return pid, nil
}

// waitReady polls spec.Ready until it succeeds, the node exits or
// spec.Timeout passes.
func waitReady(ctx context.Context, spec node.StartSpec, logPath string, exited <-chan struct{}, exitErr func() error) error {
	ctx, cancel := context.WithTimeout(ctx, spec.Timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		select {
		case <-exited:
			return fmt.Errorf("the node did not start (%v): %s", exitErr(), strings.TrimPrefix(lastLogLine(logPath), "dm: "))
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) {
				return errors.New("interrupted while waiting for the node")
			}
			return fmt.Errorf("the node did not answer on %s within %s (last error: %v)", spec.Addr, spec.Timeout, lastErr)
		case <-tick.C:
		}
		if lastErr = spec.Ready(ctx); lastErr == nil {
			return nil
		}
	}
}

// lastLogLine returns the last non-empty line of the node's log, the most
// likely explanation of why it stopped.
func lastLogLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "no log"
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	l := strings.TrimSpace(lines[len(lines)-1])
	if l == "" {
		return "empty log"
	}
	if len(l) > 300 {
		l = l[:297] + "..."
	}
	return l
}

// StopNode stops the node in dataDir, if one runs: SIGTERM to the PID in
// its locked pid file, and SIGKILL when it has not exited after timeout.
// Only that PID is signalled. A node that does not run is no error
// (Stopped.PID 0).
func StopNode(dataDir string, timeout time.Duration) (node.Stopped, error) {
	pid, running, err := NodeRunning(dataDir)
	if err != nil || !running {
		return node.Stopped{}, err
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return node.Stopped{}, fmt.Errorf("stopping node (pid %d): %w", pid, err)
	}
	if waitStopped(dataDir, timeout) {
		return node.Stopped{PID: pid}, nil
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return node.Stopped{}, fmt.Errorf("killing node (pid %d): %w", pid, err)
	}
	if !waitStopped(dataDir, 10*time.Second) {
		return node.Stopped{}, fmt.Errorf("node (pid %d) in %s did not exit even after SIGKILL", pid, dataDir)
	}
	return node.Stopped{PID: pid, Killed: true}, nil
}

// waitStopped waits until nobody holds the pid file lock, which the kernel
// drops when the process exits (zombie or not).
func waitStopped(dataDir string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if _, running, _ := NodeRunning(dataDir); !running {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}
