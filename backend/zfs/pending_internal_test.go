package zfs

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/zfs/zfstest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// A switch put off behind a Rollback waits for a quiet moment, holding
// the dot: it is made at once when somebody wants the dot or the backend
// closes, and by itself once no foreground command ran for switchQuiet.
func TestDeferredSwitchWaitsForQuiet(t *testing.T) {
	zfstest.Require(t)
	f := newCrashFixture(t)
	if f.b.z.lock == nil {
		t.Fatal("this test needs zfs-fuse's command lock (OpenZFS has none)")
	}
	ref := dotmesh.BranchRef{Dot: f.ref.Dot, Branch: "mirror"}
	f.must(f.b.CreateBranch(f.ctx, ref, &f.c1)) // unmounted, pristine at C1
	container := f.b.container(ref.Dot).name
	exists := func(d dataset) bool {
		out := zfstest.ZFS(t, "list", "-H", "-o", "name", "-r", container)
		return slices.Contains(strings.Split(strings.TrimSpace(out), "\n"), d.name)
	}
	// rollback switches ref to c, deferred, and returns the new working
	// state's name.
	rollback := func(c dotmesh.CommitRef) dataset {
		t.Helper()
		next := f.b.genDataset(ref, f.inv().nextGen(ref.Branch))
		f.must(f.b.Rollback(f.ctx, ref, c))
		return next
	}

	// A foreground command in flight: no quiet moment.
	done := f.b.z.lock.busy(f.ctx)
	next := rollback(f.c2)
	time.Sleep(3 * switchQuiet)
	if exists(next) {
		t.Fatalf("%s was made while a foreground command ran", next)
	}
	start := time.Now()
	unlock := f.b.lockDot(ref.Dot) // wants the dot: the switch is made first
	waited := time.Since(start)
	if !exists(next) {
		t.Errorf("the dot's lock was taken before the switch to %s", next)
	}
	unlock()
	if waited > quietMax/2 {
		t.Errorf("the lock came after %v: the switch did not hurry", waited)
	}
	if live := f.inv().live(ref.Branch); live == nil || live.ds != next || !live.pristineAt(f.c2.ID) {
		t.Errorf("working state after the switch: %+v, want %s pristine at %s", live, next, f.c2.ID)
	}

	// Still busy: Close makes the switch at once.
	next = rollback(f.c1)
	closed := make(chan struct{})
	go func() { f.b.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(quietMax / 2):
		t.Fatal("Close waited for a quiet moment")
	}
	if !exists(next) {
		t.Errorf("Close returned before the switch to %s", next)
	}
	done()

	// Quiet: the switch is made by itself.
	f.reopen()
	next = rollback(f.c2)
	deadline := time.Now().Add(10 * time.Second)
	for !exists(next) {
		if time.Now().After(deadline) {
			t.Fatalf("%s not made 10 s after the last command", next)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
