package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/dotmesh-io/dotmesh/daemon"
	"github.com/dotmesh-io/dotmesh/server"
)

// The pid file DIR/dm.pid both names the node's process and proves it is
// alive: daemon.Run holds an exclusive flock on it for the node's whole
// life. The kernel drops the lock when the process dies, even by SIGKILL,
// so a stale file never counts as a running node, and a reused PID is
// never signalled as one.

const (
	pidFileName = daemon.PIDFile
	keyFileName = server.AdminKeyFile
	logFileName = "dm.log"
)

// nodeRunning reports the PID of the node whose pid file in dir is locked,
// or false when no node runs there.
func nodeRunning(dir string) (int, bool, error) {
	path := filepath.Join(dir, pidFileName)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
	if err == nil {
		return 0, false, nil // nobody holds it; closing drops our lock
	}
	if !errors.Is(err, syscall.EWOULDBLOCK) {
		return 0, false, fmt.Errorf("checking pid file %s: %w", path, err)
	}
	pid, err := readPid(path)
	if err != nil {
		return 0, true, fmt.Errorf("a node runs in %s but its pid file is unreadable: %w", dir, err)
	}
	return pid, true, nil
}

func readPid(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("pid file %s holds %q, not a process id", path, strings.TrimSpace(string(b)))
	}
	return pid, nil
}
