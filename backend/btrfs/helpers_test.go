//go:build linux && cgo

package btrfs

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Tests use real btrfs: loop-mounted image files. Most share one image per
// test binary (a fresh directory in it per backend, which Open uses
// directly since it is on btrfs); tests of the image handling make their
// own. Every mount is undone at the end, also when tests fail.

func TestMain(m *testing.M) {
	code := m.Run()
	shared.teardown()
	os.Exit(code)
}

var shared sharedMount

type sharedMount struct {
	once sync.Once
	dir  string // mount point
	undo func()
	err  error
}

func (s *sharedMount) teardown() {
	if s.undo != nil {
		s.undo()
	}
}

// requireTools fails the test when the real btrfs tools are missing.
func requireTools(t testing.TB) {
	t.Helper()
	for _, n := range []string{"btrfs", "mkfs.btrfs"} {
		if _, err := exec.LookPath(n); err != nil {
			t.Fatalf("%s not found: btrfs-progs is not installed (apt-get install btrfs-progs); these tests need real btrfs", n)
		}
	}
	for _, n := range []string{"losetup", "mount", "umount"} {
		if _, err := exec.LookPath(n); err != nil {
			t.Fatalf("%s not found (apt-get install util-linux mount)", n)
		}
	}
}

// mountImage makes a sparse btrfs image in dir and loop-mounts it; the
// returned function unmounts and detaches it.
func mountImage(dir string, size int64) (string, func(), error) {
	img, mnt := filepath.Join(dir, "test.img"), filepath.Join(dir, "mnt")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return "", nil, err
	}
	f, err := os.Create(img)
	if err != nil {
		return "", nil, err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return "", nil, err
	}
	f.Close()
	if out, err := exec.Command("mkfs.btrfs", "-q", img).CombinedOutput(); err != nil {
		return "", nil, fmt.Errorf("mkfs.btrfs: %v: %s", err, out)
	}
	out, err := exec.Command("losetup", "--find", "--show", img).CombinedOutput()
	if err != nil {
		return "", nil, fmt.Errorf("losetup: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	if out, err := exec.Command("mount", "-o", "noatime", dev, mnt).CombinedOutput(); err != nil {
		exec.Command("losetup", "-d", dev).Run()
		return "", nil, fmt.Errorf("mount: %v: %s", err, out)
	}
	return mnt, func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			exec.Command("umount", "-l", mnt).Run()
			fmt.Fprintf(os.Stderr, "umount %s: %v: %s\n", mnt, err, out)
		}
		exec.Command("losetup", "-d", dev).Run()
		os.RemoveAll(dir)
	}, nil
}

// sharedRoot returns a fresh directory on the shared btrfs mount.
func sharedRoot(t testing.TB) string {
	t.Helper()
	requireTools(t)
	shared.once.Do(func() {
		dir, err := os.MkdirTemp("", "dm-btrfs-test-")
		if err != nil {
			shared.err = err
			return
		}
		shared.dir, shared.undo, shared.err = mountImage(dir, 4<<30)
	})
	if shared.err != nil {
		t.Fatalf("shared btrfs mount: %v", shared.err)
	}
	d, err := os.MkdirTemp(shared.dir, "t-")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// openShared opens a backend in a fresh directory of the shared mount.
func openShared(t testing.TB) *Guarded {
	t.Helper()
	return openAt(t, sharedRoot(t))
}

func openAt(t testing.TB, dir string) *Guarded {
	t.Helper()
	b, err := Open(context.Background(), Options{DataDir: dir})
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func newBranch(dot dotmesh.DotID, name string) dotmesh.BranchRef {
	return dotmesh.BranchRef{Dot: dot, Branch: name}
}

func commitRef(br dotmesh.BranchRef) dotmesh.CommitRef {
	return dotmesh.CommitRef{BranchRef: br, ID: dotmesh.NewCommitID()}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func writeFile(t testing.TB, path, data string) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(path), 0o755))
	must(t, os.WriteFile(path, []byte(data), 0o644))
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func subdot(t testing.TB, b *Guarded, br dotmesh.BranchRef, s string) string {
	t.Helper()
	p, err := b.SubdotPath(context.Background(), br, s)
	must(t, err)
	return p
}

func commit(t testing.TB, b *Guarded, br dotmesh.BranchRef) dotmesh.CommitRef {
	t.Helper()
	c := commitRef(br)
	_, err := b.Commit(context.Background(), c)
	must(t, err)
	return c
}

func usage(t testing.TB, b *Guarded, br dotmesh.BranchRef, head *dotmesh.CommitRef) dotmesh.Usage {
	t.Helper()
	u, err := b.Usage(context.Background(), br, head)
	must(t, err)
	return u
}

func sendBytes(t testing.TB, b *Guarded, c dotmesh.CommitRef, base *dotmesh.CommitRef) []byte {
	t.Helper()
	var buf bytes.Buffer
	must(t, b.Send(context.Background(), c, base, &buf))
	return buf.Bytes()
}
