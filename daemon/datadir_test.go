package daemon

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMakeDataDirAdvice: a data directory that cannot be made gets an
// error naming it and what to do, not only "mkdir ...: operation not
// permitted"; one that is a file says so.
func TestMakeDataDirAdvice(t *testing.T) {
	locked := filepath.Join(t.TempDir(), "locked")
	if err := os.Mkdir(locked, 0o755); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// Mode bits do not stop root; an immutable directory does (EPERM).
		if out, err := exec.Command("chattr", "+i", locked).CombinedOutput(); err != nil {
			t.Fatalf("chattr +i (e2fsprogs, on a file system with attributes) is needed to refuse root a mkdir: %v: %s", err, out)
		}
		t.Cleanup(func() { exec.Command("chattr", "-i", locked).Run() })
	} else {
		os.Chmod(locked, 0o555)
		t.Cleanup(func() { os.Chmod(locked, 0o755) })
	}
	dir := filepath.Join(locked, "data")
	err := MakeDataDir(dir)
	if err == nil || !strings.Contains(err.Error(), "cannot create the data directory "+dir) || !strings.Contains(err.Error(), "choose a directory you own with --data-dir") {
		t.Fatalf("got %v", err)
	}

	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	if err := MakeDataDir(filepath.Join(file, "data")); err == nil || !strings.Contains(err.Error(), "is a file, not a directory") {
		t.Fatalf("under a file: %v", err)
	}
	if err := MakeDataDir(filepath.Join(t.TempDir(), "a", "b")); err != nil {
		t.Fatal(err)
	}
}
