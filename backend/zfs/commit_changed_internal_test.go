package zfs

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	bt "github.com/dotmesh-io/dotmesh/backend/backendtest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// fsyncTree fsyncs every file and directory under root, so the changes
// go through the ZFS intent log as a database's would.
func fsyncTree(t *testing.T, root string) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Sync()
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestHeadUsedTellsChanges: head's own space says changed for every kind
// of change CommitIfChanged keeps a commit for (so no stream is read), and
// never for an unchanged state; CommitIfChanged agrees either way.
func TestHeadUsedTellsChanges(t *testing.T) {
	f := newCrashFixture(t) // C1, C2 and uncommitted changes
	head := f.c2
	changes := []struct {
		name string
		tree bt.Tree
	}{
		{"new file", bt.Tree{"db/new": bt.File(0o644, "new")}},
		{"overwrite same size", bt.Tree{"db/new": bt.File(0o644, "NEW")}},
		{"mode", bt.Tree{"db/new": bt.File(0o600, "NEW")}},
		{"new dir", bt.Tree{"db/d": bt.Dir(0o755)}},
	}
	check := func(name string, want bool) {
		t.Helper()
		c := dotmesh.CommitRef{BranchRef: f.ref, ID: dotmesh.NewCommitID()}
		_, changed, err := f.b.CommitIfChanged(f.ctx, c, head)
		f.must(err)
		if changed != want {
			t.Fatalf("%s: CommitIfChanged says changed %v", name, changed)
		}
		if !changed {
			return
		}
		used, err := f.b.headUsed(f.ctx, f.inv().snaps[string(head.ID)].snap())
		f.must(err)
		if !used {
			t.Fatalf("%s: head holds no space of its own after a change", name)
		}
		head = c
	}
	check("uncommitted changes", true)
	check("nothing changed", false)
	for _, ch := range changes {
		bt.WriteTree(t, f.root(), ch.tree)
		fsyncTree(t, f.root()) // log blocks too, which the commit must not count
		check(ch.name, true)
		check(ch.name+", then nothing", false)
	}
	// Changes rolled back are no change.
	bt.WriteTree(t, f.root(), bt.Tree{"db/rolled": bt.File(0o644, "back")})
	fsyncTree(t, f.root())
	f.must(f.b.Rollback(f.ctx, f.ref, head))
	check("rolled back", false)
}
