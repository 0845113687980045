package bindmount

import (
	"os"
	"path/filepath"
	"testing"
)

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{`/a\040b`: "/a b", `/x\011y\134z`: "/x\ty\\z", `/plain`: "/plain", `/bad\09`: `/bad\09`, `/end\04`: `/end\04`} {
		if got := unescape(in); got != want {
			t.Errorf("unescape(%q) = %q; want %q", in, got, want)
		}
	}
}

// TestBindReadOnlyUnmount bind-mounts a directory whose name needs
// escaping in mountinfo, read-only, and unmounts it again.
func TestBindReadOnlyUnmount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("bind mounts need root")
	}
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "with space")
	t.Cleanup(func() { _ = Unmount(dst) })
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Bind(src, dst, true); err != nil {
		t.Fatal(err)
	}
	if info, err := Stat(dst); err != nil || !info.Mounted || !info.ReadOnly {
		t.Fatalf("after a read-only bind: %+v %v", info, err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "f")); err != nil || string(b) != "x" {
		t.Fatalf("reading through the bind mount: %q %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(dst, "g"), nil, 0o644); err == nil {
		t.Fatal("wrote through a read-only bind mount")
	}
	if err := Unmount(dst); err != nil {
		t.Fatal(err)
	}
	if info, err := Stat(dst); err != nil || info.Mounted {
		t.Fatalf("after Unmount: %+v %v", info, err)
	}
	if err := Unmount(dst); err != nil {
		t.Fatalf("a second Unmount: %v", err)
	}
}
