package daemon

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// holderEnv makes the test binary a pid file holder (see
// TestPIDFileHolderProcess) for the data dir it names.
const holderEnv = "DOTMESH_TEST_PIDFILE_HOLDER"

// TestPIDFileHolderProcess is not a test: run with holderEnv set, it locks
// the pid file as a node does, keeps a large heap (its unmapping is what
// keeps a killed process's lock alive for a while), says "ready" and
// waits to be killed.
func TestPIDFileHolderProcess(t *testing.T) {
	dir := os.Getenv(holderEnv)
	if dir == "" {
		return
	}
	p, err := lockPIDFile(dir)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	heap := make([]byte, 256<<20)
	for i := 0; i < len(heap); i += 4096 {
		heap[i] = 1
	}
	fmt.Println("ready")
	time.Sleep(time.Minute)
	fmt.Println(heap[len(heap)-4096], p.path)
	os.Exit(0)
}

// startHolder starts a holder process on dir and waits until it holds the
// pid file.
func startHolder(t *testing.T, dir string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestPIDFileHolderProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), holderEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		t.Fatalf("pid file holder: %q", line)
	}
	return cmd
}

// A start right after kill -9 of the node is never refused: the dying
// holder is waited for (the lock outlives kill(2) by a few milliseconds).
func TestPIDFileKilledHolderNeverBlocks(t *testing.T) {
	dir := t.TempDir()
	for i := range 15 {
		cmd := startHolder(t, dir)
		if pid, running, err := NodeRunning(dir); err != nil || !running || pid != cmd.Process.Pid {
			t.Fatalf("round %d: NodeRunning with a live holder = %d %v %v; want pid %d", i, pid, running, err, cmd.Process.Pid)
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		check := NodeRunning
		if i%2 == 1 { // also a start, as dm serve does
			check = func(dir string) (int, bool, error) {
				p, err := lockPIDFile(dir)
				if err != nil {
					return 0, errors.Is(err, dotmesh.ErrInUse), err
				}
				return 0, false, p.release()
			}
		}
		start := time.Now()
		if pid, running, err := check(dir); err != nil || running {
			t.Fatalf("round %d: right after kill -9 of pid %d: %d %v %v", i, cmd.Process.Pid, pid, running, err)
		}
		if d := time.Since(start); d > exitWait {
			t.Fatalf("round %d: waited %s for a killed holder", i, d)
		}
		cmd.Wait()
	}
}

// A live node is refused at once (after aliveGrace), naming its PID; a
// pid file locked by another process than the one it names (a reused PID,
// an inherited descriptor) is an error naming the file, not "a node runs".
func TestPIDFileLiveAndForeignHolder(t *testing.T) {
	dir := t.TempDir()
	cmd := startHolder(t, dir)
	_, err := lockPIDFile(dir)
	if !errors.Is(err, dotmesh.ErrInUse) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(cmd.Process.Pid)) {
		t.Fatalf("lock while a node holds it: %v", err)
	}
	cmd.Process.Kill()
	cmd.Wait()

	// We hold the lock, and the file names PID 1 (alive, not holding it).
	f, err := os.OpenFile(filepath.Join(dir, PIDFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	f.Truncate(0)
	f.WriteAt([]byte("1\n"), 0)
	if os.Getuid() != 0 {
		t.Log("not root: /proc/1/fd is unreadable, so PID 1 counts as the holder")
		return
	}
	pid, running, err := NodeRunning(dir)
	if running || err == nil || !strings.Contains(err.Error(), "fuser -v "+f.Name()) {
		t.Fatalf("file naming pid 1, locked by us: %d %v %v", pid, running, err)
	}
}
