package zfs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// zfs-fuse deadlocks, and has crashed, when several commands that change
// datasets run at once. Eight shell loops of write, snapshot, rollback and
// clone, each on its own dataset, wedged it within 30 rounds in each of
// three tries (also without the rollbacks); the same loops with the zfs
// commands taken one at a time ran clean, with the writes still
// concurrent. OpenZFS needs no such care.

// cmdLock makes the commands that change ZFS state run one at a time: in
// this process through sem, across the processes that share the daemon
// through an flock on a file.
type cmdLock struct {
	sem  chan struct{}
	path string
}

var (
	cmdLocksMu sync.Mutex
	cmdLocks   = map[string]*cmdLock{}
)

// cmdLockAt returns the process's lock for path, shared by every backend
// using that path; nil for no path.
func cmdLockAt(path string) *cmdLock {
	if path == "" {
		return nil
	}
	cmdLocksMu.Lock()
	defer cmdLocksMu.Unlock()
	l := cmdLocks[path]
	if l == nil {
		l = &cmdLock{sem: make(chan struct{}, 1), path: path}
		cmdLocks[path] = l
	}
	return l
}

// lock waits for the lock, or for ctx; the caller runs unlock when its
// command has ended.
func (l *cmdLock) lock(ctx context.Context) (unlock func(), err error) {
	select {
	case l.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE, 0o600)
	if errors.Is(err, fs.ErrNotExist) { // a minimal system or container without /run/lock
		if err = os.MkdirAll(filepath.Dir(l.path), 0o755); err == nil {
			f, err = os.OpenFile(l.path, os.O_RDWR|os.O_CREATE, 0o600)
		}
	}
	if err != nil {
		<-l.sem
		return nil, fmt.Errorf("zfs command lock: %w", err)
	}
	// Only other processes can hold it now; a dead one's lock is gone
	// with its file descriptors.
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		<-l.sem
		return nil, fmt.Errorf("zfs command lock %s: %w", l.path, err)
	}
	return func() {
		f.Close() // releases the flock
		<-l.sem
	}, nil
}

// defaultCommandLock is the lock Open uses with zfs-fuse, recognised by
// the absence of the kernel module's /dev/zfs.
func defaultCommandLock() string {
	if _, err := os.Stat("/dev/zfs"); err == nil {
		return ""
	}
	return DefaultCommandLock
}
