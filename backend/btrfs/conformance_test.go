//go:build linux && cgo

package btrfs

import (
	"context"
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/backendtest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// TestConformance runs the shared suite; every backend gets a fresh
// directory on the test binary's btrfs image (a loop image per backend
// is tested in mount_test.go).
func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) dotmesh.StorageBackend {
		b, err := Open(context.Background(), Options{DataDir: sharedRoot(t)})
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

// Cluster mode with one btrfs root per node: replication uses btrfs
// send/receive.
func TestCluster(t *testing.T) {
	backendtest.RunCluster(t, 3, func(t *testing.T, _ string) dotmesh.StorageBackend {
		b, err := Open(context.Background(), Options{DataDir: sharedRoot(t)})
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

// Renamed branches and tags through real nodes.
func TestRefs(t *testing.T) {
	backendtest.RunRefs(t, func(t *testing.T, _ string) dotmesh.StorageBackend {
		b, err := Open(context.Background(), Options{DataDir: sharedRoot(t)})
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}
