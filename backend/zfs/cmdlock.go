package zfs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

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

	// Foreground commands (all but those with a behind context) in
	// flight or waiting, and when the last one ended: work written
	// behind the caller waits for a quiet moment (waitQuiet).
	mu     sync.Mutex
	active int
	last   time.Time
}

// behindKey marks the context of a command run behind the caller (the
// kept registry records, records.go).
type behindKey struct{}

func behind(ctx context.Context) context.Context { return context.WithValue(ctx, behindKey{}, true) }

func isBehind(ctx context.Context) bool { return ctx.Value(behindKey{}) != nil }

// Work written behind waits until no foreground command, listings
// included, ran for quietFor, until it is quietMax old: on zfs-fuse a
// record's `zfs set` holds the lock for 50-150 ms (it waits for a txg
// sync), which a commit arriving meanwhile waits for, and even a raw
// `zfs snapshot` without the lock is slowed by. quietFor is longer than
// the pause of a script between two commands (a loop that writes a file,
// syncs and commits left 330-450 ms on this 2-core machine under load
// 9, so a 400 ms wait put the records' writes right in front of the next
// commit); quietMax bounds how far behind the copies can fall while the
// pool never rests (at 5 s, such a loop met a burst of every record
// written back to back about every other iteration).
const (
	quietFor = time.Second
	quietMax = 30 * time.Second
)

// switchQuiet is how long a switch of working state put off behind an
// operation (finishInBackground) waits without foreground commands:
// longer than the rest of the operation's answer takes to reach its
// client (a few ms, 10-25 ms under load 4), shorter than a script's pause
// between two commands (see quietFor).
const switchQuiet = 100 * time.Millisecond

// waitQuiet waits until no foreground command has run for quiet, or
// until deadline, ctx's end, wake's closing, or hurry says so (a nil
// hurry never does; it is asked every 50 ms).
func (l *cmdLock) waitQuiet(ctx context.Context, quiet time.Duration, deadline time.Time, hurry func() bool, wake <-chan struct{}) {
	if l == nil {
		return
	}
	for time.Now().Before(deadline) && (hurry == nil || !hurry()) {
		l.mu.Lock()
		wait := quiet - time.Since(l.last)
		if l.active > 0 {
			wait = quiet
		}
		l.mu.Unlock()
		if wait <= 0 {
			return
		}
		t := time.NewTimer(min(wait, 50*time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-wake:
			t.Stop()
			return
		case <-t.C:
		}
	}
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
	if !isBehind(ctx) {
		l.mu.Lock()
		l.active++
		l.mu.Unlock()
		defer func() {
			if err != nil {
				l.foregroundDone()
			} else {
				inner := unlock
				unlock = func() {
					inner()
					l.foregroundDone()
				}
			}
		}()
	}
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

// busy marks a foreground command that takes no lock (a zfs send or
// receive, which may run for minutes) as running until done is called, so
// that work written behind waits for it: a push right after a commit
// otherwise met that commit's record writes, which slowed its stream.
func (l *cmdLock) busy(ctx context.Context) (done func()) {
	if l == nil || isBehind(ctx) {
		return func() {}
	}
	l.mu.Lock()
	l.active++
	l.mu.Unlock()
	return l.foregroundDone
}

func (l *cmdLock) foregroundDone() {
	l.mu.Lock()
	l.active--
	l.last = time.Now()
	l.mu.Unlock()
}

// defaultFuseSocket is the socket Open takes snapshots, and makes direct
// streams, through: zfs-fuse's, when there is no kernel module's /dev/zfs
// and the socket exists.
func defaultFuseSocket() string {
	if _, err := os.Stat("/dev/zfs"); err == nil {
		return ""
	}
	if fi, err := os.Stat(DefaultFuseSocket); err != nil || fi.Mode().Type() != os.ModeSocket {
		return ""
	}
	return DefaultFuseSocket
}

// defaultCommandLock is the lock Open uses with zfs-fuse, recognised by
// the absence of the kernel module's /dev/zfs.
func defaultCommandLock() string {
	if _, err := os.Stat("/dev/zfs"); err == nil {
		return ""
	}
	return DefaultCommandLock
}
