//go:build linux && cgo

package btrfs

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// newPlainDir returns a temp directory that is not on btrfs, so Open makes
// and mounts an image; cleanup unmounts whatever is still mounted there.
func newPlainDir(t *testing.T) string {
	t.Helper()
	requireTools(t)
	dir := t.TempDir()
	if on, err := isBtrfs(dir); err != nil || on {
		t.Fatalf("temp dir %s must not be on btrfs for this test (%v)", dir, err)
	}
	t.Cleanup(func() {
		mnt := filepath.Join(dir, "btrfs")
		if m, _ := isMountedBtrfs(mnt, dir); m {
			exec.Command("umount", mnt).Run()
		}
		if out, _ := exec.Command("losetup", "-j", filepath.Join(dir, "btrfs.img")).Output(); len(out) > 0 {
			dev, _, _ := strings.Cut(string(out), ":")
			exec.Command("losetup", "-d", dev).Run()
		}
	})
	return dir
}

func loopDevices(t *testing.T, image string) string {
	out, err := exec.Command("losetup", "-j", image).Output()
	must(t, err)
	return strings.TrimSpace(string(out))
}

// TestImageRemountedOnRestart: Open on a plain directory makes a sparse
// image, Close unmounts and detaches it, and the next Open mounts it again
// with the data in place.
func TestImageRemountedOnRestart(t *testing.T) {
	ctx := context.Background()
	dir := newPlainDir(t)
	b, err := Open(ctx, Options{DataDir: dir, PoolSize: 512 << 20})
	must(t, err)
	img := filepath.Join(dir, "btrfs.img")
	st, err := os.Stat(img)
	must(t, err)
	if st.Size() != 512<<20 {
		t.Fatalf("image size %d", st.Size())
	}
	if used := st.Sys().(*syscall.Stat_t).Blocks * 512; used > 64<<20 {
		t.Fatalf("image not sparse: %d bytes allocated", used)
	}
	if b.Root() != filepath.Join(dir, "btrfs") {
		t.Fatalf("root %s", b.Root())
	}
	br := newBranch(dotmesh.NewDotID(), "master")
	must(t, b.CreateBranch(ctx, br, nil))
	writeFile(t, subdot(t, b, br, "data")+"/f", "persisted")
	c1 := commit(t, b, br)
	writeFile(t, subdot(t, b, br, "data")+"/g", "uncommitted but written")
	must(t, b.Close())

	if m, _ := isMountedBtrfs(filepath.Join(dir, "btrfs"), dir); m {
		t.Fatal("Close left the image mounted")
	}
	if l := loopDevices(t, img); l != "" {
		t.Fatalf("Close left a loop device: %s", l)
	}

	b = openAt(t, dir)
	ids, err := b.Commits(ctx, br)
	must(t, err)
	if len(ids) != 1 || ids[0] != c1.ID {
		t.Fatalf("commits after restart: %v", ids)
	}
	p := subdot(t, b, br, "data")
	if readFile(t, p+"/f") != "persisted" || readFile(t, p+"/g") != "uncommitted but written" {
		t.Fatal("data lost across restart")
	}
	if u := usage(t, b, br, &c1); !u.Dirty {
		t.Fatalf("uncommitted file not dirty after restart: %+v", u)
	}

	// A second backend on the same directory is refused while one is open.
	if _, err := Open(ctx, Options{DataDir: dir}); !errors.Is(err, dotmesh.ErrInUse) {
		t.Fatalf("second Open: %v, want ErrInUse", err)
	}
}

// TestImageLeftMountedIsReused: after a crash the image stays mounted;
// Open uses it and Close leaves it as found.
func TestImageLeftMountedIsReused(t *testing.T) {
	ctx := context.Background()
	dir := newPlainDir(t)
	p, err := openPool(ctx, dir, 256<<20)
	must(t, err)
	b := openAt(t, dir)
	if b.b.pool.mounted {
		t.Fatal("Open claims to have mounted an image that was mounted already")
	}
	must(t, b.Close())
	if m, _ := isMountedBtrfs(p.root, dir); !m {
		t.Fatal("Close unmounted what it did not mount")
	}
	must(t, p.close())
}

func TestMissingProgs(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := Open(context.Background(), Options{DataDir: t.TempDir()})
	if !errors.Is(err, dotmesh.ErrUnavailable) || !strings.Contains(err.Error(), "btrfs-progs is not installed (apt-get install btrfs-progs)") {
		t.Fatalf("Open without btrfs-progs: %v", err)
	}
}

func TestBadOptions(t *testing.T) {
	for _, o := range []Options{{}, {DataDir: t.TempDir(), PoolSize: 1 << 20}} {
		if _, err := Open(context.Background(), o); !errors.Is(err, dotmesh.ErrInvalidArgument) {
			t.Errorf("Open(%+v): %v, want ErrInvalidArgument", o, err)
		}
	}
}
