package csi_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kubernetes-csi/csi-test/v5/pkg/sanity"

	"github.com/dotmesh-io/dotmesh/backend/dump"
	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/frontends/csi"
)

// startPlugin runs the real plugin (bbolt registry, dump backend) on a
// unix socket in a temp dir until the test ends.
func startPlugin(t *testing.T) (socket string, node *dotmesh.Node) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the CSI tests bind-mount volumes and need root")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	node, _ = openNode(t, dir)
	srv, err := csi.New(csi.Options{Node: node, NodeID: "test-node", Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	socket = filepath.Join(dir, "csi.sock")
	done := make(chan error, 1)
	go func() { done <- srv.ListenAndServe(ctx, socket) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		node.Close()
	})
	for i := 0; ; i++ {
		if _, err := os.Stat(socket); err == nil {
			break
		}
		if i > 100 {
			t.Fatal("the CSI socket did not appear")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return socket, node
}

// openNode opens a node (bbolt registry, dump backend) in dir and returns
// it with its store; the caller closes the node.
func openNode(t *testing.T, dir string) (*dotmesh.Node, dotmesh.ClusterStore) {
	t.Helper()
	store, err := bboltstore.Open(filepath.Join(dir, "registry.db"), bboltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	be, err := dump.Open(filepath.Join(dir, "dump"), dump.Options{})
	if err != nil {
		t.Fatal(err)
	}
	node, err := dotmesh.NewNode(context.Background(), dotmesh.Options{Store: store, Backends: []dotmesh.StorageBackend{be}})
	if err != nil {
		t.Fatal(err)
	}
	return node, store
}

// TestSanity runs the official CSI sanity suite against the plugin.
func TestSanity(t *testing.T) {
	socket, _ := startPlugin(t)
	dir := t.TempDir()
	cfg := sanity.NewTestConfig()
	cfg.Address = "unix://" + socket
	cfg.TargetPath = filepath.Join(dir, "target")
	cfg.StagingPath = filepath.Join(dir, "staging")
	sanity.Test(t, cfg)
}
