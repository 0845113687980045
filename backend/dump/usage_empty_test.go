package dump

import (
	"os"
	"path/filepath"
	"testing"
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
