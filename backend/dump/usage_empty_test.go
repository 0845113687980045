package dump

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// emptyDir is true only for a real directory without entries: the usage
// of such a tree before its first commit skips the scan.
func TestEmptyDir(t *testing.T) {
	d := t.TempDir()
	empty := filepath.Join(d, "empty")
	full := filepath.Join(d, "full")
	hidden := filepath.Join(d, "hidden")
	for _, p := range []string{empty, full, hidden, filepath.Join(full, "sub")} {
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(hidden, ".x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(empty, filepath.Join(d, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{"empty": true, "full": false, "hidden": false, "link": false, "file": false, "missing": false} {
		if got := emptyDir(filepath.Join(d, name)); got != want {
			t.Errorf("emptyDir(%s) = %v, want %v", name, got, want)
		}
	}
}

// emptyDirs remembers a directory seen empty and learns of every change
// that may have made it non-empty, whatever the path of the write (here
// through a symlink to it, and by rename): a file, a directory, a
// symlink, a hard link or an entry moved in; the tree replaced by a
// rename over it; the backend's own forget. Every answer is emptyDir's.
func TestEmptyDirsRemembers(t *testing.T) {
	root := t.TempDir()
	d := filepath.Join(root, "branch", "tree")
	alias := filepath.Join(root, "alias") // another path to the same tree
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(d, alias); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(root, "outside")
	if err := os.WriteFile(outside, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	var e emptyDirs
	defer e.close()
	// drained: as in a listing, the notifications are read once first.
	check := func(what string, drained bool) {
		t.Helper()
		if drained {
			e.mu.Lock()
			e.drainLocked()
			e.mu.Unlock()
		}
		want := emptyDir(d)
		if got := e.empty(d, drained); got != want {
			t.Fatalf("%s: empty = %v, emptyDir = %v", what, got, want)
		}
		if want && len(e.byDir) != 1 {
			t.Fatalf("%s: an empty tree is not remembered (%d)", what, len(e.byDir))
		}
	}
	check("new", false)
	changes := []struct {
		what      string
		add, undo func() error
	}{
		{"file", func() error { return os.WriteFile(filepath.Join(alias, "f"), nil, 0o644) }, func() error { return os.Remove(filepath.Join(d, "f")) }},
		{"dir", func() error { return os.Mkdir(filepath.Join(alias, "sub"), 0o755) }, func() error { return os.Remove(filepath.Join(d, "sub")) }},
		{"symlink", func() error { return os.Symlink("nowhere", filepath.Join(alias, "l")) }, func() error { return os.Remove(filepath.Join(d, "l")) }},
		{"hard link", func() error { return os.Link(outside, filepath.Join(alias, "h")) }, func() error { return os.Remove(filepath.Join(d, "h")) }},
		{"moved in", func() error { return os.Rename(outside, filepath.Join(alias, "m")) }, func() error { return os.Rename(filepath.Join(d, "m"), outside) }},
	}
	for round, drained := range []bool{false, true} {
		for _, c := range changes {
			if err := c.add(); err != nil {
				t.Fatal(err)
			}
			check(fmt.Sprintf("round %d: %s added", round, c.what), drained)
			if err := c.undo(); err != nil {
				t.Fatal(err)
			}
			check(fmt.Sprintf("round %d: %s removed", round, c.what), drained)
		}
	}
	// A full tree renamed over the empty one, which a process holds open
	// (so it lives on: the notification is of its link count).
	full := filepath.Join(root, "full")
	if err := os.Mkdir(full, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(full, "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	check("before the rename over", true)
	held, err := os.Open(d)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if err := unix.Rename(full, d); err != nil { // os.Rename refuses it
		t.Fatal(err)
	}
	check("renamed over", true)
	if err := os.Remove(filepath.Join(d, "f")); err != nil {
		t.Fatal(err)
	}
	check("emptied", true)
	// The tree's parent moved (no notification on the tree) and a full
	// tree made in its place: the backend forgets the path itself.
	if err := os.Rename(filepath.Dir(d), filepath.Join(root, "trash")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(d, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.forget(d)
	check("made again", true)
	if e.empty(alias, true) {
		t.Fatal("a symlink to an empty directory is empty")
	}
}
