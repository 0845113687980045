package changewatch

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// tmpfsMount mounts a real tmpfs of its own (root only), so that no
// other process's writes reach the mark.
func tmpfsMount(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("changewatch tests need root: fanotify mount marks need CAP_SYS_ADMIN, and each test mounts a tmpfs")
	}
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs (the real part these tests need): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

func newWatcher(t *testing.T) *Watcher {
	t.Helper()
	w, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func write(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func before(t *testing.T, w *Watcher, key, path, base string) bool {
	t.Helper()
	changed, err := w.Before(key, path, base)
	if err != nil {
		t.Fatal(err)
	}
	return changed
}

func TestWriteAfterSettleProvesChange(t *testing.T) {
	dir := tmpfsMount(t)
	w := newWatcher(t)
	write(t, filepath.Join(dir, "a"), "1")
	if before(t, w, "k", dir, "") {
		t.Fatal("an unsettled key reported a change")
	}
	w.After("k", "c1")
	if before(t, w, "k", dir, "c1") {
		t.Fatal("no write since c1, but Before reported one")
	}
	w.After("k", "c1")
	for i := range 3 { // the first write unmarks; later ones are not needed
		write(t, filepath.Join(dir, "a"), string(rune('2'+i)))
	}
	if !before(t, w, "k", dir, "c1") {
		t.Fatal("a write after c1 was not reported")
	}
	w.After("k", "c2")
	if before(t, w, "k", dir, "c1") || before(t, w, "k", dir, "c2") {
		t.Fatal("a change was reported for c2, or against a base it is not settled at")
	}
	w.After("k", "c2")
	// The mark is armed again after it was removed by the first event.
	write(t, filepath.Join(dir, "b"), "x")
	if !before(t, w, "k", dir, "c2") {
		t.Fatal("a write after the mark was armed again was not reported")
	}
	w.After("k", "c3")
}

func TestWriteBetweenBeforeAndAfterLeavesUnsettled(t *testing.T) {
	dir := tmpfsMount(t)
	w := newWatcher(t)
	before(t, w, "k", dir, "")
	w.After("k", "c1")
	before(t, w, "k", dir, "c1")
	write(t, filepath.Join(dir, "a"), "in the snapshot, or not")
	w.After("k", "c2")
	if before(t, w, "k", dir, "c2") {
		t.Fatal("a write between Before and After counted as a change after c2")
	}
	w.After("k", "c2")
	write(t, filepath.Join(dir, "a"), "after")
	if !before(t, w, "k", dir, "c2") {
		t.Fatal("a write after a clean settle was not reported")
	}
}

func TestForgetDropsEventsAndFreesTheMount(t *testing.T) {
	dir := tmpfsMount(t)
	w := newWatcher(t)
	before(t, w, "k", dir, "")
	w.After("k", "c1")
	write(t, filepath.Join(dir, "a"), "1")
	w.Forget("k")
	if before(t, w, "k", dir, "c1") {
		t.Fatal("a forgotten key reported a change")
	}
	w.After("k", "c1")
	write(t, filepath.Join(dir, "a"), "2")
	w.Forget("k")
	// No queued event holds a file of the mount open.
	if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
		t.Fatalf("umount after Forget: %v: %s", err, out)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs again: %v: %s", err, out)
	}
	// A new mount at the same path: nothing carries over.
	if before(t, w, "k", dir, "c1") {
		t.Fatal("a new mount reported the old one's change")
	}
	w.After("k", "c1")
}

func TestKeysAreToldApart(t *testing.T) {
	a, b := tmpfsMount(t), tmpfsMount(t)
	w := newWatcher(t)
	for _, k := range []struct{ key, dir string }{{"a", a}, {"b", b}} {
		before(t, w, k.key, k.dir, "")
		w.After(k.key, "c")
	}
	write(t, filepath.Join(a, "f"), "1")
	if before(t, w, "b", b, "c") {
		t.Fatal("a write into a was reported for b")
	}
	w.After("b", "c")
	if !before(t, w, "a", a, "c") {
		t.Fatal("a write into a was not reported")
	}
	w.After("a", "d")
}

func TestBeforeRefusesAPathThatIsNotAMountpoint(t *testing.T) {
	dir := tmpfsMount(t)
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	w := newWatcher(t)
	if _, err := w.Before("k", sub, ""); err == nil {
		t.Fatal("Before armed a mark on a directory that is not a mountpoint")
	}
}
