package zfs_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	bt "github.com/dotmesh-io/dotmesh/backend/backendtest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// TestUsageDetectsEveryChange checks the send-stream based dirty detection
// on changes that sizes and mtimes cannot reveal, and on a branch whose
// head is its origin on another branch.
func TestUsageDetectsEveryChange(t *testing.T) {
	x := newH(t)
	master := dotmesh.BranchRef{Dot: dotmesh.NewDotID(), Branch: "master"}
	x.must(x.b.CreateBranch(x.ctx, master, nil), "CreateBranch")
	base := bt.Tree{
		"db":      bt.Dir(0o755),
		"db/big":  bt.RandomFile(0o644, 1<<20, 1),
		"db/keep": bt.File(0o644, "keep"),
		"db/dir":  bt.Dir(0o755),
	}
	x.write(master, base)
	c := x.commit(master)
	feature := dotmesh.BranchRef{Dot: master.Dot, Branch: "feature"}
	x.must(x.b.CreateBranch(x.ctx, feature, &c), "CreateBranch from c")

	// Head is the origin, a snapshot of another filesystem.
	if u, err := x.b.Usage(x.ctx, feature, &c); err != nil || u.Dirty {
		t.Errorf("fresh branch: Usage = %+v, %v; want clean", u, err)
	}
	x.write(feature, bt.Tree{"db/keep": bt.File(0o644, "KEEP")})
	if u, err := x.b.Usage(x.ctx, feature, &c); err != nil || !u.Dirty {
		t.Errorf("branch changed from its origin: Usage = %+v, %v; want dirty", u, err)
	}
	x.must(x.b.Rollback(x.ctx, feature, c), "Rollback to the origin")
	if u, err := x.b.Usage(x.ctx, feature, &c); err != nil || u.Dirty {
		t.Errorf("after rollback to the origin: Usage = %+v, %v; want clean", u, err)
	}

	for _, ref := range []dotmesh.BranchRef{master, feature} {
		root := x.root(ref)
		p := func(rel string) string { return filepath.Join(root, rel) }
		mtime := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
		x.must(os.Chtimes(p("db/big"), mtime, mtime), "chtimes")
		c := x.commit(ref)
		changes := []struct {
			name string
			do   func() error
			min  int64 // DirtyBytes at least
		}{
			{"one byte overwritten, size and mtime kept", func() error {
				f, err := os.OpenFile(p("db/big"), os.O_WRONLY, 0)
				if err != nil {
					return err
				}
				_, err = f.WriteAt([]byte{'!'}, 500_000)
				f.Close()
				if err != nil {
					return err
				}
				return os.Chtimes(p("db/big"), mtime, mtime)
			}, 1},
			{"1 MiB rewritten", func() error { return os.WriteFile(p("db/big"), bt.RandomBytes(1<<20, 2), 0) }, 1 << 20},
			{"truncate", func() error { return os.Truncate(p("db/big"), 10) }, 0},
			{"chown", func() error { return os.Lchown(p("db/keep"), 1234, 1234) }, 0},
			{"mtime only", func() error { return os.Chtimes(p("db/keep"), time.Now(), time.Now()) }, 0},
			{"rename", func() error { return os.Rename(p("db/keep"), p("db/kept")) }, 0},
			{"hard link", func() error { return os.Link(p("db/keep"), p("db/keep2")) }, 0},
			{"empty file", func() error { return os.WriteFile(p("db/dir/empty"), nil, 0o644) }, 0},
			{"rmdir", func() error { return os.Remove(p("db/dir")) }, 0},
			{"xattr", func() error { return syscall.Setxattr(p("db/keep"), "user.dotmesh", []byte("x"), 0) }, 0},
		}
		for _, ch := range changes {
			if err := ch.do(); err != nil {
				if ch.name == "xattr" && (err == syscall.ENOTSUP || err == syscall.EOPNOTSUPP) {
					t.Logf("%s: xattrs not supported here", ref)
					continue
				}
				t.Fatalf("%s: change %q: %v", ref, ch.name, err)
			}
			u, err := x.b.Usage(x.ctx, ref, &c)
			x.must(err, "Usage")
			if !u.Dirty || u.DirtyBytes < max(ch.min, 1) {
				t.Errorf("%s: after %q: Usage = %+v, want dirty with at least %d bytes", ref, ch.name, u, ch.min)
			}
			x.must(x.b.Rollback(x.ctx, ref, c), "Rollback")
			// Reading everything leaves it clean (atime is off).
			bt.ReadTree(t, root)
			if u, err := x.b.Usage(x.ctx, ref, &c); err != nil || u.Dirty {
				t.Errorf("%s: after %q and a rollback: Usage = %+v, %v; want clean", ref, ch.name, u, err)
			}
		}
	}
}

// TestUsageOfAnUnmountedRollback: a branch made from a commit is left
// unmounted until used, and so is what a rollback makes of it; while it
// is, Usage and Dirty know it clean without mounting it. Once mounted and
// changed it is dirty as ever, and a mounted working state stays mounted
// through a rollback.
func TestUsageOfAnUnmountedRollback(t *testing.T) {
	x := newH(t)
	master := dotmesh.BranchRef{Dot: dotmesh.NewDotID(), Branch: "master"}
	x.must(x.b.CreateBranch(x.ctx, master, nil), "CreateBranch")
	v1 := bt.Tree{"db": bt.Dir(0o755), "db/a": bt.RandomFile(0o644, 256<<10, 1)}
	x.write(master, v1)
	c1 := x.commit(master)
	x.write(master, bt.Tree{"db/b": bt.File(0o644, "b")})
	c2 := x.commit(master)

	feature := dotmesh.BranchRef{Dot: master.Dot, Branch: "feature"}
	x.must(x.b.CreateBranch(x.ctx, feature, &c2), "CreateBranch from C2")
	mounted := func(ref dotmesh.BranchRef) bool {
		live := filepath.Join(x.b.Mountpoint(), string(ref.Dot), ref.Branch)
		var st, pst syscall.Stat_t
		return syscall.Stat(live, &st) == nil && syscall.Stat(filepath.Dir(live), &pst) == nil && st.Dev != pst.Dev
	}
	clean := func(when string, head dotmesh.CommitRef) {
		t.Helper()
		u, err := x.b.Usage(x.ctx, feature, &head)
		if err != nil || u.Dirty || u.Size < 256<<10 {
			t.Errorf("%s: Usage = %+v, %v; want clean, at least 256 KiB", when, u, err)
		}
		if d, err := x.b.Dirty(x.ctx, feature, &head); err != nil || d.Dirty {
			t.Errorf("%s: Dirty = %+v, %v; want clean", when, d, err)
		}
	}
	clean("new branch", c2)
	x.must(x.b.Rollback(x.ctx, feature, c1), "Rollback feature to C1")
	clean("after a rollback", c1)
	if mounted(feature) {
		t.Errorf("the untouched working state got mounted")
	}

	x.must(x.b.Rollback(x.ctx, master, c1), "Rollback master to C1")
	if !mounted(master) {
		t.Errorf("master's mounted working state is not mounted after a rollback")
	}

	x.assertTree(feature, v1) // mounts it
	if u, err := x.b.Usage(x.ctx, feature, &c1); err != nil || u.Dirty {
		t.Errorf("Usage once mounted = %+v, %v; want clean", u, err)
	}
	x.write(feature, bt.Tree{"db/a": bt.RandomFile(0o644, 256<<10, 2)})
	for _, f := range []func() (dotmesh.Usage, error){
		func() (dotmesh.Usage, error) { return x.b.Usage(x.ctx, feature, &c1) },
		func() (dotmesh.Usage, error) { return x.b.Dirty(x.ctx, feature, &c1) },
	} {
		if u, err := f(); err != nil || !u.Dirty || u.DirtyBytes < 128<<10 {
			t.Errorf("after a change: %+v, %v; want dirty by at least 128 KiB", u, err)
		}
	}
}

// TestFollowHead: an untouched working state at another commit than the
// head (a crash between a switch and the Node recording it) follows the
// head; a working state that was used is left alone.
func TestFollowHead(t *testing.T) {
	x := newH(t)
	master := dotmesh.BranchRef{Dot: dotmesh.NewDotID(), Branch: "master"}
	x.must(x.b.CreateBranch(x.ctx, master, nil), "CreateBranch")
	v1 := bt.Tree{"db": bt.Dir(0o755), "db/a": bt.File(0o644, "one")}
	x.write(master, v1)
	c1 := x.commit(master)
	v2 := bt.Tree{"db": bt.Dir(0o755), "db/a": bt.File(0o644, "two")}
	x.write(master, v2)
	c2 := x.commit(master)

	feature := dotmesh.BranchRef{Dot: master.Dot, Branch: "feature"}
	x.must(x.b.CreateBranch(x.ctx, feature, &c2), "CreateBranch from C2")
	x.must(x.b.Rollback(x.ctx, feature, c1), "Rollback to C1")
	x.must(x.b.FollowHead(x.ctx, feature, c2), "FollowHead C2")
	if u, err := x.b.Usage(x.ctx, feature, &c2); err != nil || u.Dirty {
		t.Errorf("after following C2: Usage = %+v, %v; want clean", u, err)
	}
	x.assertTree(feature, v2) // mounted from here on
	x.must(x.b.FollowHead(x.ctx, feature, c1), "FollowHead C1 of a used working state")
	x.assertTree(feature, v2)
	x.must(x.b.FollowHead(x.ctx, master, c1), "FollowHead of master")
	x.assertTree(master, v2) // mounted, never marked: left alone
}
