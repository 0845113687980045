package csi_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/btrfs"
	"github.com/dotmesh-io/dotmesh/backend/zfs"
	"github.com/dotmesh-io/dotmesh/backend/zfs/zfstest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// openZFS opens a zfs backend on a fresh file-backed pool (zfs-fuse), and
// openBtrfs one on a loop-mounted image; the node closes them, before
// the pool or image goes. Missing tools fail the test, naming them.
func openZFS(t *testing.T) dotmesh.StorageBackend {
	t.Helper()
	zfstest.Require(t)
	pool, dir := zfstest.Pool(t)
	be, err := zfs.Open(context.Background(), zfs.Options{Pool: pool, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return be
}

func openBtrfs(t *testing.T) dotmesh.StorageBackend {
	t.Helper()
	for _, n := range []string{"btrfs", "mkfs.btrfs", "losetup", "mount", "umount"} {
		if _, err := exec.LookPath(n); err != nil {
			t.Fatalf("%s not found: these tests need real btrfs (apt-get install btrfs-progs util-linux mount)", n)
		}
	}
	be, err := btrfs.Open(context.Background(), btrfs.Options{DataDir: filepath.Join(t.TempDir(), "btrfs"), PoolSize: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	return be
}
