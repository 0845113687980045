package zfs

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/zfs/zfstest"
)

// These tests need no ZFS but the last, which runs the real zfs.

func TestCmdLockOneAtATime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "lock", "lock") // its directory is made
	a, b := cmdLockAt(path), cmdLockAt(path)
	if a != b {
		t.Fatal("two backends with one lock file got different locks")
	}
	var inside atomic.Int32
	var overlap atomic.Bool
	done := make(chan error)
	for range 4 {
		go func() {
			unlock, err := a.lock(context.Background())
			if err == nil {
				if inside.Add(1) > 1 {
					overlap.Store(true)
				}
				time.Sleep(20 * time.Millisecond)
				inside.Add(-1)
				unlock()
			}
			done <- err
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if overlap.Load() {
		t.Fatal("two commands held the lock at once")
	}
}

// TestCmdLockAcrossProcesses holds the lock file in another process (the
// flock tool): the lock waits for it; a waiter in this process gives up
// with its context.
func TestCmdLockAcrossProcesses(t *testing.T) {
	flock, err := exec.LookPath("flock")
	if err != nil {
		t.Fatalf("this test needs util-linux's flock: %v", err)
	}
	dir := t.TempDir()
	path, ready := filepath.Join(dir, "lock"), filepath.Join(dir, "ready")
	holder := exec.Command(flock, path, "sh", "-c", "touch "+ready+"; sleep 0.5")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer holder.Wait()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("flock did not take the lock")
		}
	}
	l := cmdLockAt(path)
	start := time.Now()
	unlock, err := l.lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 200*time.Millisecond {
		t.Fatalf("took the lock after %v while another process held it for 0.5s", waited)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := l.lock(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting behind a held lock past the deadline: %v", err)
	}
	unlock()
}

// TestCmdLockWaitQuiet: work behind the caller waits until no foreground
// command has run for quietFor, not for its own commands, and stops
// waiting at its deadline or when hurried.
func TestCmdLockWaitQuiet(t *testing.T) {
	l := cmdLockAt(filepath.Join(t.TempDir(), "lock"))
	ctx := context.Background()
	never := func() bool { return false }
	unlock, err := l.lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	released := make(chan time.Time, 1)
	go func() {
		time.Sleep(100 * time.Millisecond)
		unlock()
		released <- time.Now()
	}()
	l.waitQuiet(ctx, quietFor, time.Now().Add(time.Minute), never, nil)
	if waited := time.Since(<-released); waited < quietFor-10*time.Millisecond {
		t.Fatalf("waitQuiet returned %v after the foreground command ended, want >= %v", waited, quietFor)
	}
	// A command run behind does not make the next one wait.
	unlock, err = l.lock(behind(ctx))
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	start := time.Now()
	l.waitQuiet(ctx, quietFor, time.Now().Add(time.Minute), never, nil)
	if d := time.Since(start); d > quietFor/2 {
		t.Fatalf("waitQuiet waited %v after a command run behind", d)
	}
	// Busy: the deadline and hurry end the wait.
	unlock, err = l.lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	start = time.Now()
	l.waitQuiet(ctx, quietFor, time.Now().Add(100*time.Millisecond), never, nil)
	if d := time.Since(start); d < 90*time.Millisecond || d > 2*time.Second {
		t.Fatalf("waitQuiet with a 100ms deadline took %v", d)
	}
	start = time.Now()
	l.waitQuiet(ctx, quietFor, time.Now().Add(time.Minute), func() bool { return true }, nil)
	if d := time.Since(start); d > quietFor/2 {
		t.Fatalf("a hurried waitQuiet took %v", d)
	}
	woken := make(chan struct{})
	close(woken)
	start = time.Now()
	l.waitQuiet(ctx, quietFor, time.Now().Add(time.Minute), never, woken)
	if d := time.Since(start); d > quietFor/2 {
		t.Fatalf("a woken waitQuiet took %v", d)
	}
	var nilLock *cmdLock // OpenZFS: no lock, no waiting
	nilLock.waitQuiet(ctx, quietFor, time.Now().Add(time.Minute), never, nil)
}

// TestCmdLockBusy: a send or receive (busy, no lock taken) makes work
// behind the caller wait until quietFor after it ended; one run behind
// does not; a nil lock (OpenZFS) marks nothing.
func TestCmdLockBusy(t *testing.T) {
	l := cmdLockAt(filepath.Join(t.TempDir(), "lock"))
	ctx := context.Background()
	never := func() bool { return false }
	done := l.busy(ctx)
	ended := make(chan time.Time, 1)
	go func() {
		time.Sleep(100 * time.Millisecond)
		done()
		ended <- time.Now()
	}()
	l.waitQuiet(ctx, quietFor, time.Now().Add(time.Minute), never, nil)
	if waited := time.Since(<-ended); waited < quietFor-10*time.Millisecond {
		t.Fatalf("waitQuiet returned %v after the send ended, want >= %v", waited, quietFor)
	}
	// Long after: a busy run behind the caller changes nothing.
	l.mu.Lock()
	l.last = time.Now().Add(-time.Hour)
	l.mu.Unlock()
	l.busy(behind(ctx))()
	start := time.Now()
	l.waitQuiet(ctx, quietFor, time.Now().Add(time.Minute), never, nil)
	if d := time.Since(start); d > quietFor/2 {
		t.Fatalf("waitQuiet waited %v after a send run behind", d)
	}
	var nilLock *cmdLock
	nilLock.busy(ctx)()
}

// TestCmdLockListingIsBusy: a listing (here a real `zfs get` on a real
// pool) takes no lock but is foreground work, so work behind the caller
// waits until quietFor after it ended; a listing run behind the caller
// makes nothing wait.
func TestCmdLockListingIsBusy(t *testing.T) {
	pool, _ := zfstest.NewPool(t, 64<<20)
	c, err := findTools(time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	l := cmdLockAt(filepath.Join(t.TempDir(), "lock"))
	c.lock = l
	ctx := context.Background()
	never := func() bool { return false }
	if _, err := c.run(ctx, c.zfs, "get", "-H", "all", pool); err != nil {
		t.Fatal(err)
	}
	ended := time.Now()
	l.waitQuiet(ctx, quietFor, time.Now().Add(time.Minute), never, nil)
	if waited := time.Since(ended); waited < quietFor-50*time.Millisecond {
		t.Fatalf("waitQuiet returned %v after a listing ended, want about %v", waited, quietFor)
	}
	l.mu.Lock()
	l.last = time.Now().Add(-time.Hour)
	l.mu.Unlock()
	if _, err := c.run(behind(ctx), c.zfs, "get", "-H", "all", pool); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	l.waitQuiet(ctx, quietFor, time.Now().Add(time.Minute), never, nil)
	if d := time.Since(start); d > quietFor/2 {
		t.Fatalf("waitQuiet waited %v after a listing run behind", d)
	}
}
