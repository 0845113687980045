package zfstest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorder holds back a test's cleanups and errors, so that the test can
// run them early and look at what they said.
type recorder struct {
	testing.TB
	cleanups []func()
	errs     []string
}

func (r *recorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, strings.TrimSpace(fmt.Sprintf(format, args...)))
}

func (r *recorder) runCleanups() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
	r.cleanups = nil
}

// TestCrashedDaemonIsReplaced kills the tests' zfs-fuse while a test pool
// is mounted: that test is told, its dead mount is detached, and the next
// Require starts a daemon that works. Test binaries that use ZFS at the
// same time lose their pools with it: make test runs them one at a time.
func TestCrashedDaemonIsReplaced(t *testing.T) {
	rec := &recorder{TB: t}
	name, dir := NewPool(rec, 64<<20)
	pid, ours := ourDaemon()
	if !ours {
		rec.runCleanups()
		t.Fatalf("this test kills the zfs-fuse the tests started (pidfile %s), but the running one is someone else's", pidfile())
	}
	mnt := filepath.Join(dir, "mnt")
	ZFS(t, "create", "-o", "mountpoint="+mnt, name+"/fs")
	if err := os.WriteFile(filepath.Join(mnt, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := killDaemon(pid); err != nil {
		t.Fatal(err)
	}
	rec.runCleanups()
	if len(rec.errs) != 1 || !strings.Contains(rec.errs[0], "exited during this test") {
		t.Fatalf("the test under the crash was told %q, want one error saying zfs-fuse exited", rec.errs)
	}
	if m, _ := os.ReadFile("/proc/self/mounts"); strings.Contains(string(m), mnt) {
		t.Fatalf("the dead daemon's mount %s is still there", mnt)
	}

	Require(t)
	if now, ours := ourDaemon(); !ours || now == pid {
		t.Fatalf("after the crash the daemon is %d (ours: %v), want a new one of the tests'", now, ours)
	}
	name, dir = NewPool(t, 64<<20)
	mnt = filepath.Join(dir, "mnt")
	ZFS(t, "create", "-o", "mountpoint="+mnt, name+"/fs")
	if err := os.WriteFile(filepath.Join(mnt, "f"), []byte("y"), 0o644); err != nil {
		t.Fatalf("the new daemon does not take a write: %v", err)
	}
}
