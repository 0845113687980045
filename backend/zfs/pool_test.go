package zfs_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	bt "github.com/dotmesh-io/dotmesh/backend/backendtest"
	"github.com/dotmesh-io/dotmesh/backend/zfs"
	"github.com/dotmesh-io/dotmesh/backend/zfs/zfstest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// TestPoolCreateAndReimport: without a pool, Open makes a sparse
// file-backed one in the data directory; after an export (what a reboot or
// daemon restart looks like) Open imports it again, with the data, the
// commits and the mount paths as they were.
func TestPoolCreateAndReimport(t *testing.T) {
	ctx := context.Background()
	pool, dir := zfstest.Pool(t)
	opts := zfs.Options{Pool: pool, DataDir: dir, PoolSize: 2 << 30, Logger: logger()}
	b, err := zfs.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, zfs.PoolFile)
	st, err := os.Stat(file)
	if err != nil {
		t.Fatalf("pool file: %v", err)
	}
	if st.Size() != opts.PoolSize || st.Mode().Perm() != 0o600 {
		t.Errorf("pool file is %d bytes, mode %v; want %d, 0600", st.Size(), st.Mode().Perm(), opts.PoolSize)
	}
	if used := st.Sys().(*syscall.Stat_t).Blocks * 512; used > opts.PoolSize/4 {
		t.Errorf("pool file uses %d bytes on disk: not sparse", used)
	}
	if b.Root() != pool+"/dmfs" || b.Mountpoint() != filepath.Join(dir, "mnt") {
		t.Errorf("root %s, mountpoint %s; want the defaults", b.Root(), b.Mountpoint())
	}

	ref := dotmesh.BranchRef{Dot: dotmesh.NewDotID(), Branch: "master"}
	if err := b.CreateBranch(ctx, ref, nil); err != nil {
		t.Fatal(err)
	}
	root, err := b.SubdotPath(ctx, ref, dotmesh.RootSubdot)
	if err != nil {
		t.Fatal(err)
	}
	tree := bt.Tree{"db": bt.Dir(0o755), "db/f": bt.File(0o644, "persisted")}
	bt.WriteTree(t, root, tree)
	c := dotmesh.CommitRef{BranchRef: ref, ID: dotmesh.NewCommitID()}
	if _, err := b.Commit(ctx, c); err != nil {
		t.Fatal(err)
	}
	bt.WriteTree(t, root, bt.Tree{"db/g": bt.File(0o644, "uncommitted")})
	b.Close()

	zfstest.Export(t, pool)
	b, err = zfs.Open(ctx, opts)
	if err != nil {
		t.Fatalf("Open after export: %v", err)
	}
	defer b.Close()
	again, err := b.SubdotPath(ctx, ref, dotmesh.RootSubdot)
	if err != nil || again != root {
		t.Fatalf("SubdotPath after re-import = %q, %v; want %q", again, err, root)
	}
	bt.AssertTree(t, root, tree.Clone().Merge(bt.Tree{"db/g": bt.File(0o644, "uncommitted")}))
	if ids, err := b.Commits(ctx, ref); err != nil || len(ids) != 1 || ids[0] != c.ID {
		t.Errorf("Commits after re-import = %v, %v; want [%s]", ids, err, c.ID)
	}
	if err := b.Rollback(ctx, ref, c); err != nil {
		t.Fatal(err)
	}
	bt.AssertTree(t, root, tree)
}

// TestOpenErrors: bad options and a missing pool without a data directory
// are refused clearly, before anything is created.
func TestOpenErrors(t *testing.T) {
	zfstest.Require(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		opts zfs.Options
		want error
	}{
		{"pool name", zfs.Options{Pool: "-R", DataDir: t.TempDir()}, dotmesh.ErrInvalidName},
		{"pool name with slash", zfs.Options{Pool: "a/b", DataDir: t.TempDir()}, dotmesh.ErrInvalidName},
		{"reserved pool name", zfs.Options{Pool: "mirror1", DataDir: t.TempDir()}, dotmesh.ErrInvalidName},
		{"root outside the pool", zfs.Options{Pool: "p", Root: "q/dmfs", DataDir: t.TempDir()}, dotmesh.ErrInvalidArgument},
		{"root is the pool", zfs.Options{Pool: "p", Root: "p", DataDir: t.TempDir()}, dotmesh.ErrInvalidArgument},
		{"root with a snapshot", zfs.Options{Pool: "p", Root: "p/x@y", DataDir: t.TempDir()}, dotmesh.ErrInvalidName},
		{"tiny pool", zfs.Options{Pool: "p", PoolSize: 1 << 20, DataDir: t.TempDir()}, dotmesh.ErrInvalidArgument},
		{"nowhere to mount", zfs.Options{Pool: "p"}, dotmesh.ErrInvalidArgument},
		{"missing pool, no data directory", zfs.Options{Pool: "dmt-missing-pool", Mountpoint: t.TempDir()}, dotmesh.ErrNotFound},
	} {
		_, err := zfs.Open(ctx, tc.opts)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: Open = %v, want an error wrapping %v", tc.name, err, tc.want)
		}
	}
}
