package zfs

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"

	bt "github.com/dotmesh-io/dotmesh/backend/backendtest"
	"github.com/dotmesh-io/dotmesh/backend/zfs/zfstest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// crashFixture is a branch with commits C1, C2 and uncommitted changes,
// on a backend that can be "restarted" (Open again on the same pool).
type crashFixture struct {
	t      *testing.T
	ctx    context.Context
	opts   Options
	b      *Backend
	ref    dotmesh.BranchRef
	c1, c2 dotmesh.CommitRef
	v1, vw bt.Tree // C1's tree, the working tree
}

func newCrashFixture(t *testing.T) *crashFixture {
	pool, dir := zfstest.Pool(t)
	f := &crashFixture{t: t, ctx: context.Background(),
		opts: Options{Pool: pool, DataDir: dir, PoolSize: 1 << 30, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}}
	f.reopen()
	f.ref = dotmesh.BranchRef{Dot: dotmesh.NewDotID(), Branch: "master"}
	f.must(f.b.CreateBranch(f.ctx, f.ref, nil))
	f.v1 = bt.Tree{"db": bt.Dir(0o755), "db/f": bt.File(0o644, "one")}
	bt.WriteTree(t, f.root(), f.v1)
	f.c1 = f.commit()
	bt.WriteTree(t, f.root(), bt.Tree{"db/f": bt.File(0o644, "two")})
	f.c2 = f.commit()
	f.vw = f.v1.Clone().Merge(bt.Tree{"db/f": bt.File(0o644, "two"), "db/w": bt.File(0o644, "uncommitted")})
	bt.WriteTree(t, f.root(), f.vw)
	return f
}

func (f *crashFixture) must(err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *crashFixture) reopen() {
	f.t.Helper()
	b, err := Open(f.ctx, f.opts)
	f.must(err)
	f.t.Cleanup(func() { b.Close() }) // before the pool goes
	f.b = b.b
}

func (f *crashFixture) root() string {
	f.t.Helper()
	p, err := f.b.SubdotPath(f.ctx, f.ref, dotmesh.RootSubdot)
	f.must(err)
	return p
}

func (f *crashFixture) commit() dotmesh.CommitRef {
	f.t.Helper()
	c := dotmesh.CommitRef{BranchRef: f.ref, ID: dotmesh.NewCommitID()}
	_, err := f.b.Commit(f.ctx, c)
	f.must(err)
	return c
}

func (f *crashFixture) inv() *dotInv {
	f.t.Helper()
	inv, err := f.b.inventory(f.ctx, f.ref.Dot)
	f.must(err)
	return inv
}

// check verifies the state after the restart: the working tree, the
// commits, and that nothing but live filesystems and holders remain.
func (f *crashFixture) check(tree bt.Tree, commits ...dotmesh.CommitRef) {
	f.t.Helper()
	bt.AssertTree(f.t, f.root(), tree)
	ids, err := f.b.Commits(f.ctx, f.ref)
	f.must(err)
	var want []dotmesh.CommitID
	for _, c := range commits {
		want = append(want, c.ID)
	}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		f.t.Errorf("Commits = %v, want %v", ids, want)
	}
	inv := f.inv()
	for _, fs := range inv.fss {
		if fs.state != stateLive && fs.state != stateOld || fs.state == stateLive && inv.live(fs.branch) != fs {
			f.t.Errorf("left after recovery: %s in state %q", fs.ds, fs.state)
		}
		if fs.state == stateOld && (fs.mounted || fs.mountpoint != "none" || len(fs.snaps) == 0) {
			f.t.Errorf("holder %s not tidied: mounted %v, mountpoint %s, %d snapshots", fs.ds, fs.mounted, fs.mountpoint, len(fs.snaps))
		}
		for _, s := range fs.snaps {
			if strings.HasPrefix(s.name, tempSnapPrefix) || s.isCommit() && s.tag == "" && s.fs.branch != f.ref.Branch {
				f.t.Errorf("left after recovery: snapshot %s (tag %q)", s.snap(), s.tag)
			}
		}
	}
	// Still fully usable.
	f.must(f.b.Rollback(f.ctx, f.ref, commits[0]))
}

func (f *crashFixture) snap(c dotmesh.CommitRef) snapshot {
	f.t.Helper()
	s := f.inv().commit(c.ID)
	if s == nil {
		f.t.Fatalf("no snapshot for %s", c.ID)
	}
	return s.snap()
}

// Each case performs the first steps of an operation, as the code does,
// then "crashes" (stops) and opens the backend again.
func TestRecoverAfterCrash(t *testing.T) {
	zfstest.Require(t)
	t.Run("rollback before the switch", func(t *testing.T) {
		f := newCrashFixture(t)
		next := f.b.genDataset(f.ref, f.inv().nextGen(f.ref.Branch))
		f.must(f.b.z.clone(f.ctx, f.snap(f.c1), next, mustProp(stateProp, stateStaged), mustProp("mountpoint", "none")))
		f.must(f.b.umount(f.ctx, f.inv().live(f.ref.Branch).ds))
		f.reopen()
		f.check(f.vw, f.c1, f.c2) // the old state
	})
	t.Run("rollback after the switch", func(t *testing.T) {
		f := newCrashFixture(t)
		cur := f.inv().live(f.ref.Branch)
		next := f.b.genDataset(f.ref, f.inv().nextGen(f.ref.Branch))
		f.must(f.b.z.clone(f.ctx, f.snap(f.c1), next, mustProp(stateProp, stateStaged), mustProp("mountpoint", "none")))
		f.must(f.b.umount(f.ctx, cur.ds))
		f.must(f.b.setState(f.ctx, next, stateLive))
		f.reopen()
		f.check(f.v1, f.c1, f.c2) // the new state
	})
	// The path is read without asking (a shell in it, a container's
	// bind mount): after the restart it must show the working state.
	livePath := func(f *crashFixture) string {
		f.t.Helper()
		p := f.b.livePath(f.ref)
		if live := f.inv().live(f.ref.Branch); live == nil || !live.mounted || !isMountpoint(p) {
			f.t.Fatalf("after recovery the working state is not mounted at %s: %+v", p, live)
		}
		return p
	}
	t.Run("rollback after the unmount", func(t *testing.T) {
		f := newCrashFixture(t)
		f.must(f.b.umount(f.ctx, f.inv().live(f.ref.Branch).ds))
		f.reopen()
		bt.AssertTree(t, livePath(f), f.vw) // the old state, mounted again
		f.check(f.vw, f.c1, f.c2)
	})
	t.Run("rollback after the unmount, rolled forward", func(t *testing.T) {
		// The Node repeats a journalled restore after the restart
		// (dotmesh/restore.go): the new state goes to the path.
		f := newCrashFixture(t)
		f.must(f.b.umount(f.ctx, f.inv().live(f.ref.Branch).ds))
		f.reopen()
		f.must(f.b.Rollback(f.ctx, f.ref, f.c1))
		bt.AssertTree(t, livePath(f), f.v1)
		f.check(f.v1, f.c1, f.c2)
	})
	t.Run("rollback after the clone", func(t *testing.T) {
		f := newCrashFixture(t)
		cur := f.inv().live(f.ref.Branch)
		f.must(f.b.umount(f.ctx, cur.ds))
		next := f.b.genDataset(f.ref, f.inv().nextGen(f.ref.Branch))
		f.must(f.b.z.clone(f.ctx, f.snap(f.c1), next, mustProp(stateProp, stateLive), mustProp("mountpoint", "none"), mustProp(pristineProp, string(f.c1.ID))))
		f.reopen()
		// The new state, still unmounted and known clean.
		if u, err := f.b.Usage(f.ctx, f.ref, &f.c1); err != nil || u.Dirty {
			t.Errorf("Usage after recovery = %+v, %v; want clean", u, err)
		}
		if live := f.inv().live(f.ref.Branch); live == nil || live.ds != next || live.mounted {
			t.Errorf("live after recovery: %+v; want %s, unmounted", live, next)
		}
		f.check(f.v1, f.c1, f.c2)
	})
	t.Run("deferred rollback recorded, not made", func(t *testing.T) {
		f := newCrashFixture(t)
		cur := f.inv().live(f.ref.Branch)
		f.must(f.b.umount(f.ctx, cur.ds))
		next := f.b.genDataset(f.ref, f.inv().nextGen(f.ref.Branch))
		f.must(f.b.recordSwitch(f.ref, pendingSwitch{snap: f.snap(f.c1), next: next}))
		f.reopen() // makes the clone
		if live := f.inv().live(f.ref.Branch); live == nil || live.ds != next {
			t.Errorf("live after recovery: %+v; want %s", live, next)
		}
		if u, err := f.b.Usage(f.ctx, f.ref, &f.c1); err != nil || u.Dirty {
			t.Errorf("Usage after recovery = %+v, %v; want clean", u, err)
		}
		if ents, _ := os.ReadDir(f.b.pendingDir()); len(ents) != 0 {
			t.Errorf("records left: %v", ents)
		}
		f.check(f.v1, f.c1, f.c2) // the new state
	})
	t.Run("deferred rollback failed at run time", func(t *testing.T) {
		f := newCrashFixture(t)
		cur := f.inv().live(f.ref.Branch)
		f.must(f.b.umount(f.ctx, cur.ds))
		next := f.b.genDataset(f.ref, f.inv().nextGen(f.ref.Branch))
		ps := pendingSwitch{snap: f.snap(f.c1), next: next}
		f.must(f.b.recordSwitch(f.ref, ps))
		f.b.failed = map[dotmesh.DotID]map[dotmesh.BranchRef]pendingSwitch{f.ref.Dot: {f.ref: ps}}
		// The next operation on the dot makes the switch first.
		ids, err := f.b.Commits(f.ctx, f.ref)
		f.must(err)
		if len(ids) != 2 {
			t.Errorf("Commits = %v", ids)
		}
		inv := f.inv()
		if live := inv.live(f.ref.Branch); live == nil || live.ds != next {
			t.Errorf("live after the retry: %+v; want %s", live, next)
		}
		for _, fs := range inv.fss {
			if fs.state == stateLive && fs.ds != next {
				t.Errorf("%s still live", fs.ds)
			}
		}
		if ents, _ := os.ReadDir(f.b.pendingDir()); len(ents) != 0 {
			t.Errorf("records left: %v", ents)
		}
		f.check(f.v1, f.c1, f.c2)
	})
	t.Run("receive after promote", func(t *testing.T) {
		f := newCrashFixture(t)
		st := f.b.genDataset(f.ref, f.inv().nextGen(f.ref.Branch))
		f.must(f.b.z.clone(f.ctx, f.snap(f.c1), st, mustProp(stateProp, stateRecv), mustProp("mountpoint", "none")))
		f.must(f.b.z.promote(f.ctx, st)) // C1 now lives on st
		f.reopen()
		f.check(f.vw, f.c1, f.c2)
	})
	t.Run("complete stream received, not switched", func(t *testing.T) {
		f := newCrashFixture(t)
		st := f.b.recvDataset(f.ref)
		f.must(f.b.z.create(f.ctx, st))
		s, _ := st.Snapshot(string(dotmesh.NewCommitID()))
		f.must(f.b.z.snapshot(f.ctx, s))
		f.reopen()
		f.check(f.vw, f.c1, f.c2)
	})
	t.Run("branch delete", func(t *testing.T) {
		f := newCrashFixture(t)
		other := dotmesh.BranchRef{Dot: f.ref.Dot, Branch: "other"}
		f.must(f.b.CreateBranch(f.ctx, other, &f.c1)) // keeps C1 alive
		cur := f.inv().live(f.ref.Branch)
		f.must(f.b.umount(f.ctx, cur.ds))
		f.must(f.b.setState(f.ctx, cur.ds, stateDel))
		f.reopen()
		if _, err := f.b.Commits(f.ctx, f.ref); !errors.Is(err, dotmesh.ErrNotFound) {
			t.Errorf("Commits of the deleted branch: %v, want ErrNotFound", err)
		}
		p, err := f.b.SubdotPath(f.ctx, other, dotmesh.RootSubdot)
		f.must(err)
		bt.AssertTree(t, p, f.v1)
		f.must(f.b.DeleteBranch(f.ctx, other))
		if inv := f.inv(); inv.exists || len(inv.fss) > 0 {
			t.Errorf("datasets left after deleting both branches: %d", len(inv.fss))
		}
	})
	t.Run("usage snapshot and untagged commit", func(t *testing.T) {
		f := newCrashFixture(t)
		cur := f.inv().live(f.ref.Branch)
		tmp, _ := cur.ds.Snapshot(tempSnapPrefix + "usage-deadbeef")
		f.must(f.b.z.snapshot(f.ctx, tmp))
		c3 := dotmesh.CommitRef{BranchRef: f.ref, ID: dotmesh.NewCommitID()}
		s3, _ := cur.ds.Snapshot(string(c3.ID))
		f.must(f.b.z.snapshot(f.ctx, s3)) // as a receive leaves it before tagging
		f.reopen()
		f.check(f.vw, f.c1, f.c2, c3)
	})
}
