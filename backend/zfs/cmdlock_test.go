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
)

// These tests need no ZFS.

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
