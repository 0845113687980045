package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// PIDFile is the name of the file in the data directory that holds the
// PID of the `dm serve` using it.
const PIDFile = "dm.pid"

// The pid file DIR/dm.pid both names the node's process and proves it is
// alive: Run holds an exclusive flock on it for the node's whole life, and
// the kernel drops the lock when the process dies, however it dies, so a
// stale file never blocks a start.
//
// The kernel drops it only at the end of the process's exit, though: after
// kill -9 returns, a node still holds its lock for milliseconds (longer on
// a busy machine or with a large heap, whose unmapping comes first), and a
// restart in that window was refused for a dead node. So a held lock
// counts only while the process named in the file is alive, not exiting,
// and holds the file open; otherwise a start waits up to exitWait for the
// lock to go.

// exitWait bounds how long a start or a check waits for a dying node to
// release its pid file.
const exitWait = 10 * time.Second

// aliveGrace is how long the holder must look alive before it counts as
// running: a SIGKILL just sent may not show in /proc for a moment.
const aliveGrace = 100 * time.Millisecond

// pollEvery is how often a wait looks at the lock again.
const pollEvery = 10 * time.Millisecond

// pidFile is held, with an exclusive flock, while Run uses a data
// directory.
type pidFile struct {
	path string
	f    *os.File
}

// lockPIDFile takes the pid file of dataDir, waiting for a node that is
// exiting to let go of it; a live node there is refused, naming its PID.
func lockPIDFile(dataDir string) (*pidFile, error) {
	path := filepath.Join(dataDir, PIDFile)
	for range 10 {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("opening %s: %w", path, err)
		}
		pid, running, err := waitLock(f, syscall.LOCK_EX)
		if err != nil || running {
			f.Close()
			if running {
				return nil, fmt.Errorf("%w: another dm serve (pid %d) uses %s; stop it first or choose another data directory", dotmesh.ErrInUse, pid, dataDir)
			}
			return nil, err
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

// NodeRunning reports the PID of the live node that holds the pid file of
// dataDir, or running false when none does. A node that is exiting (killed,
// say) is waited for, up to exitWait, and then does not count.
func NodeRunning(dataDir string) (pid int, running bool, err error) {
	f, err := os.Open(filepath.Join(dataDir, PIDFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("checking the pid file: %w", err)
	}
	defer f.Close() // drops our shared lock too
	return waitLock(f, syscall.LOCK_SH)
}

// waitLock takes the flock how on f. When another process holds it,
// waitLock returns running with the PID in the file if that process is
// alive and holds the file; while the holder is exiting or the file names
// no process yet, it waits up to exitWait.
func waitLock(f *os.File, how int) (pid int, running bool, err error) {
	deadline := time.Now().Add(exitWait)
	var aliveSince time.Time
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			return 0, false, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return 0, false, fmt.Errorf("locking %s: %w", f.Name(), err)
		}
		pid = readPID(f)
		if pid > 0 && holds(pid, f) {
			if aliveSince.IsZero() {
				aliveSince = time.Now()
			} else if time.Since(aliveSince) >= aliveGrace {
				return pid, true, nil
			}
		} else {
			aliveSince = time.Time{}
		}
		if time.Now().After(deadline) {
			if pid <= 0 {
				return 0, false, fmt.Errorf("%w: %s is locked but names no process; `fuser -v %s` shows who holds it", dotmesh.ErrInUse, f.Name(), f.Name())
			}
			return 0, false, fmt.Errorf("%w: %s is still locked %s after its node (pid %d) exited; `fuser -v %s` shows which process holds it", dotmesh.ErrInUse, f.Name(), exitWait, pid, f.Name())
		}
		time.Sleep(pollEvery)
	}
}

// readPID returns the PID written in f, or 0 when it holds none (yet).
func readPID(f *os.File) int {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// PF_EXITING in /proc/PID/stat's flags: the process is tearing itself down.
const pfExiting = 0x4

// holds reports whether process pid is alive, not exiting, and has f's file
// open (when its descriptors are readable to us). A dead PID, one reused
// by another program and a killed node on its way out all give false.
func holds(pid int, f *os.File) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ppid pgrp session tty tpgid flags ...; comm may hold
	// spaces and parentheses, so fields count from the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return false
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 7 || fields[0] == "Z" || fields[0] == "X" || fields[0] == "x" {
		return false
	}
	if flags, err := strconv.ParseUint(fields[6], 10, 64); err != nil || flags&pfExiting != 0 {
		return false
	}
	if killPending(pid) {
		return false
	}
	return hasOpen(pid, f)
}

// killPending reports whether a SIGKILL waits for process pid: sent, and
// not yet acted on.
func killPending(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "SigPnd" && k != "ShdPnd") {
			continue
		}
		if mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64); err == nil && mask&(1<<(uint(syscall.SIGKILL)-1)) != 0 {
			return true
		}
	}
	return false
}

// hasOpen reports whether process pid has f's file open. When its
// descriptors cannot be read (another user's process), it trusts the lock
// and says yes.
func hasOpen(pid int, f *os.File) bool {
	want, err := f.Stat()
	if err != nil {
		return true
	}
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	for _, e := range ents {
		if st, err := os.Stat(filepath.Join(dir, e.Name())); err == nil && os.SameFile(st, want) {
			return true
		}
	}
	return false
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
