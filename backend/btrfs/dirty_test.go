//go:build linux && cgo

package btrfs

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
	"golang.org/x/sys/unix"
)

// TestDirtyPerChangeKind checks every kind of change makes a committed
// branch dirty, and that rolling back makes it clean again.
func TestDirtyPerChangeKind(t *testing.T) {
	ctx := context.Background()
	b := openShared(t)
	br := newBranch(dotmesh.NewDotID(), "master")
	must(t, b.CreateBranch(ctx, br, nil))
	p := subdot(t, b, br, dotmesh.DefaultSubdot)
	writeFile(t, p+"/f", "content")
	writeFile(t, p+"/big", strings.Repeat("x", 1<<20))
	writeFile(t, p+"/d/inner", "inner")
	must(t, os.Mkdir(p+"/empty", 0o755))
	c1 := commit(t, b, br)
	if u := usage(t, b, br, &c1); u.Dirty || u.DirtyBytes != 0 {
		t.Fatalf("dirty right after commit: %+v", u)
	}

	kinds := []struct {
		name     string
		change   func() error
		minBytes int64
	}{
		{"write new file", func() error { return os.WriteFile(p+"/new", []byte("new"), 0o644) }, 1},
		{"overwrite same size", func() error { return os.WriteFile(p+"/f", []byte("CONTENT"), 0o644) }, 1},
		{"append", func() error {
			f, err := os.OpenFile(p+"/big", os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.Write([]byte(strings.Repeat("y", 256<<10)))
			return err
		}, 256 << 10},
		{"truncate", func() error { return os.Truncate(p+"/big", 10) }, 512 << 10},
		{"delete file", func() error { return os.Remove(p + "/big") }, 512 << 10},
		{"delete small file", func() error { return os.Remove(p + "/f") }, 0},
		{"chmod", func() error { return os.Chmod(p+"/f", 0o600) }, 0},
		{"chown", func() error { return os.Chown(p+"/f", 1234, 1234) }, 0},
		{"touch mtime", func() error {
			old := time.Now().Add(-time.Hour)
			return os.Chtimes(p+"/f", old, old)
		}, 0},
		{"mkdir", func() error { return os.Mkdir(p+"/newdir", 0o755) }, 0},
		{"rmdir", func() error { return os.Remove(p + "/empty") }, 0},
		{"rename", func() error { return os.Rename(p+"/f", p+"/g") }, 0},
		{"rename dir", func() error { return os.Rename(p+"/d", p+"/e") }, 0},
		{"symlink", func() error { return os.Symlink("f", p+"/link") }, 0},
		{"hardlink", func() error { return os.Link(p+"/f", p+"/hard") }, 0},
		{"xattr", func() error { return unix.Setxattr(p+"/f", "user.k", []byte("v"), 0) }, 0},
		{"new subdot", func() error { return os.Mkdir(filepath.Dir(p)+"/other", 0o755) }, 0},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			must(t, k.change())
			u := usage(t, b, br, &c1)
			if !u.Dirty {
				t.Fatalf("%s not detected: %+v", k.name, u)
			}
			if u.DirtyBytes < k.minBytes {
				t.Errorf("%s: dirty bytes %d, want at least %d", k.name, u.DirtyBytes, k.minBytes)
			}
			if !commitIfChanged(t, b, br, c1) {
				t.Fatalf("%s not detected by CommitIfChanged", k.name)
			}
			must(t, b.Rollback(ctx, br, c1))
			if u := usage(t, b, br, &c1); u.Dirty {
				t.Fatalf("dirty after rolling back %s: %+v", k.name, u)
			}
			if commitIfChanged(t, b, br, c1) {
				t.Fatalf("CommitIfChanged found a change after rolling back %s", k.name)
			}
			if got := readFile(t, p+"/f"); got != "content" {
				t.Fatalf("rollback did not restore f: %q", got)
			}
		})
	}

	t.Run("reads are not changes", func(t *testing.T) {
		readFile(t, p+"/f")
		readFile(t, p+"/big")
		os.ReadDir(p)
		if u := usage(t, b, br, &c1); u.Dirty {
			t.Fatalf("reading made the branch dirty: %+v", u)
		}
		if commitIfChanged(t, b, br, c1) {
			t.Fatal("reading made CommitIfChanged commit")
		}
	})
	t.Run("clone is clean", func(t *testing.T) {
		other := newBranch(br.Dot, "clone")
		must(t, b.CreateBranch(ctx, other, &c1))
		if u := usage(t, b, other, &c1); u.Dirty {
			t.Fatalf("fresh clone dirty: %+v", u)
		}
		if commitIfChanged(t, b, other, c1) {
			t.Fatal("CommitIfChanged committed a fresh clone")
		}
		// Cloning again from c1 changes c1's generation; neither branch
		// may turn dirty or clean because of it.
		must(t, b.CreateBranch(ctx, newBranch(br.Dot, "clone2"), &c1))
		if u := usage(t, b, br, &c1); u.Dirty {
			t.Fatalf("master dirty after another clone: %+v", u)
		}
		writeFile(t, p+"/x", "x")
		must(t, b.CreateBranch(ctx, newBranch(br.Dot, "clone3"), &c1))
		if u := usage(t, b, br, &c1); !u.Dirty {
			t.Fatalf("master's change hidden by a later clone: %+v", u)
		}
		if !commitIfChanged(t, b, br, c1) {
			t.Fatal("master's change hidden from CommitIfChanged by a later clone")
		}
		must(t, b.Rollback(ctx, br, c1))
	})
	t.Run("commit then clean, change then dirty", func(t *testing.T) {
		writeFile(t, p+"/y", "y")
		c2 := commit(t, b, br)
		if u := usage(t, b, br, &c2); u.Dirty {
			t.Fatalf("dirty after commit: %+v", u)
		}
		if commitIfChanged(t, b, br, c2) {
			t.Fatal("CommitIfChanged committed right after a commit")
		}
		if !commitIfChanged(t, b, br, c1) {
			t.Fatal("CommitIfChanged found no change relative to an older head")
		}
		if u := usage(t, b, br, &c1); !u.Dirty {
			t.Fatalf("clean relative to an older head: %+v", u)
		}
		// Rolled back to c1, the branch differs from c2.
		must(t, b.Rollback(ctx, br, c1))
		if u := usage(t, b, br, &c2); !u.Dirty {
			t.Fatalf("rolled back to c1 but clean relative to c2: %+v", u)
		}
		if !commitIfChanged(t, b, br, c2) {
			t.Fatal("rolled back to c1 but CommitIfChanged finds no change relative to c2")
		}
	})
	t.Run("before the first commit", func(t *testing.T) {
		nb := newBranch(dotmesh.NewDotID(), "master")
		must(t, b.CreateBranch(ctx, nb, nil))
		if u := usage(t, b, nb, nil); u.Dirty {
			t.Fatalf("empty branch dirty: %+v", u)
		}
		sp := subdot(t, b, nb, "db")
		if u := usage(t, b, nb, nil); u.Dirty {
			t.Fatalf("empty subdot dirty: %+v", u)
		}
		writeFile(t, sp+"/a", "abc")
		if u := usage(t, b, nb, nil); !u.Dirty || u.DirtyBytes == 0 || u.Size == 0 {
			t.Fatalf("file not dirty: %+v", u)
		}
	})
}

func TestUsageSize(t *testing.T) {
	ctx := context.Background()
	b := openShared(t)
	br := newBranch(dotmesh.NewDotID(), "master")
	must(t, b.CreateBranch(ctx, br, nil))
	p := subdot(t, b, br, dotmesh.DefaultSubdot)
	writeFile(t, p+"/big", strings.Repeat("z", 3<<20))
	must(t, os.Link(p+"/big", p+"/big2")) // counted once
	u := usage(t, b, br, nil)
	if u.Size < 3<<20 || u.Size > 4<<20 {
		t.Fatalf("size %d, want about 3 MiB", u.Size)
	}
}

// commitIfChanged runs CommitIfChanged against head and reports whether
// it committed; a commit it made is deleted again, and one it says it did
// not make must not be stored.
func commitIfChanged(t *testing.T, b *Guarded, br dotmesh.BranchRef, head dotmesh.CommitRef) bool {
	t.Helper()
	ctx := context.Background()
	c := commitRef(br)
	_, changed, err := b.CommitIfChanged(ctx, c, head)
	must(t, err)
	ids, err := b.Commits(ctx, br)
	must(t, err)
	if stored := slices.Contains(ids, c.ID); stored != changed {
		t.Fatalf("CommitIfChanged said changed=%v but the commit is stored=%v", changed, stored)
	}
	if changed {
		must(t, b.DeleteCommit(ctx, c))
	}
	return changed
}
