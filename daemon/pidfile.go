package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// PIDFile is the name of the file in the data directory that holds the
// PID of the `dm serve` using it.
const PIDFile = "dm.pid"

// pidFile is held, with an exclusive flock, while Run uses a data
// directory. The lock, not the PID, decides whether another server is
// alive: the kernel drops it when that process dies, however it dies, so
// a stale file or a reused PID never blocks a restart.
type pidFile struct {
	path string
	f    *os.File
}

func lockPIDFile(dataDir string) (*pidFile, error) {
	path := filepath.Join(dataDir, PIDFile)
	for range 10 {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("opening %s: %w", path, err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			pid := readPID(f)
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, fmt.Errorf("%w: another dm serve (pid %s) uses %s; stop it first or choose another data directory", dotmesh.ErrInUse, pid, dataDir)
			}
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		// The holder before us may have removed the file between our open
		// and our lock; then we locked a file nobody else will see.
		if !sameFile(f, path) {
			f.Close()
			continue
		}
		if err := f.Truncate(0); err != nil {
			f.Close()
			return nil, fmt.Errorf("writing %s: %w", path, err)
		}
		if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
			f.Close()
			return nil, fmt.Errorf("writing %s: %w", path, err)
		}
		return &pidFile{path: path, f: f}, nil
	}
	return nil, fmt.Errorf("%w: %s keeps changing; is another dm serve starting on %s?", dotmesh.ErrConflict, path, dataDir)
}

func readPID(f *os.File) string {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	if pid := strings.TrimSpace(string(b[:n])); pid != "" {
		return pid
	}
	return "unknown"
}

func sameFile(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	return err == nil && os.SameFile(a, b)
}

// release removes the file while still holding the lock, then unlocks.
func (p *pidFile) release() error {
	err := os.Remove(p.path)
	if cerr := p.f.Close(); err == nil {
		err = cerr
	}
	return err
}
