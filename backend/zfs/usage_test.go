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
