package zfs_test

import (
	"context"
	"log/slog"
	"os"
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/backendtest"
	"github.com/dotmesh-io/dotmesh/backend/zfs"
	"github.com/dotmesh-io/dotmesh/backend/zfs/zfstest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// testPoolSize is small: the file is sparse, and zfs-fuse is happy with it.
const testPoolSize = 1 << 30

func logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// openBackend opens a backend that creates its own pool, unique to the test
// and destroyed when it ends.
func openBackend(t *testing.T) (*zfs.Guarded, zfs.Options) {
	t.Helper()
	pool, dir := zfstest.Pool(t)
	opts := zfs.Options{Pool: pool, DataDir: dir, PoolSize: testPoolSize, Logger: logger()}
	b, err := zfs.Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("zfs.Open: %v", err)
	}
	// Before the pool goes (cleanups run last-first): Close waits for
	// work that finishes operations after they returned.
	t.Cleanup(func() { b.Close() })
	return b, opts
}

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) dotmesh.StorageBackend {
		b, _ := openBackend(t)
		return b
	})
}

// Cluster mode with one pool per node: replication uses zfs send/receive.
// With three nodes one pool sends to two others at once, which deadlocked
// zfs-fuse (twice in five runs) until the backend ran one send at a time.
func TestCluster(t *testing.T) {
	backendtest.RunCluster(t, 3, func(t *testing.T, _ string) dotmesh.StorageBackend {
		b, _ := openBackend(t)
		return b
	})
}

// Renamed branches and tags through real nodes, one pool per node.
func TestRefs(t *testing.T) {
	backendtest.RunRefs(t, func(t *testing.T, _ string) dotmesh.StorageBackend {
		b, _ := openBackend(t)
		return b
	})
}
