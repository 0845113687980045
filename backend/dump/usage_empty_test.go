package dump

import (
	"os"
	"path/filepath"
	"testing"
	"time"
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

// emptyDirs remembers a directory seen empty once its ctime is settled,
// and sees every entry added or removed after (each moves the ctime),
// also within the same second; a symlink to an empty directory is not one.
func TestEmptyDirsRemembers(t *testing.T) {
	d := filepath.Join(t.TempDir(), "tree")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	var e emptyDirs
	if !e.empty(d) {
		t.Fatal("a new empty directory is not empty")
	}
	if len(e.m) != 0 {
		t.Fatal("a directory changed within emptySettle was remembered")
	}
	time.Sleep(emptySettle + 100*time.Millisecond)
	if !e.empty(d) || len(e.m) != 1 {
		t.Fatalf("a settled empty directory: remembered %d", len(e.m))
	}
	f := filepath.Join(d, "f")
	for i := 0; i < 3; i++ {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if e.empty(d) {
			t.Fatalf("round %d: a directory with a file is empty", i)
		}
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
		if !e.empty(d) {
			t.Fatalf("round %d: the directory emptied again is not empty", i)
		}
	}
	link := filepath.Join(filepath.Dir(d), "link")
	if err := os.Symlink(d, link); err != nil {
		t.Fatal(err)
	}
	if e.empty(link) {
		t.Fatal("a symlink to an empty directory is empty")
	}
}
