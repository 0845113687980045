package csi_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
	return startPluginOn(t, nil)
}

// startPluginOn is startPlugin on backend be (nil: a dump backend in the
// temp dir), which the node closes.
func startPluginOn(t *testing.T, be dotmesh.StorageBackend) (socket string, node *dotmesh.Node) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the CSI tests bind-mount volumes and need root")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	node, _ = openNodeOn(t, dir, be)
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
	return openNodeOn(t, dir, nil)
}

// openNodeOn is openNode on backend be (nil: a dump backend in dir).
func openNodeOn(t *testing.T, dir string, be dotmesh.StorageBackend) (*dotmesh.Node, dotmesh.ClusterStore) {
	t.Helper()
	store, err := bboltstore.Open(filepath.Join(dir, "registry.db"), bboltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if be == nil {
		if be, err = dump.Open(filepath.Join(dir, "dump"), dump.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	node, err := dotmesh.NewNode(context.Background(), dotmesh.Options{Store: store, Backends: []dotmesh.StorageBackend{be}})
	if err != nil {
		t.Fatal(err)
	}
	return node, store
}

// TestSanity runs the official CSI sanity suite against the plugin on the
// files (dump) backend, which offers no expansion.
func TestSanity(t *testing.T) {
	runSanity(t, func(*testing.T) dotmesh.StorageBackend { return nil })
}

// TestSanityZFS and TestSanityBtrfs run the suite where volumes have size
// bounds, so expansion is offered and tested too. They make a zfs pool or
// loop-mount an image: run them under `flock -o /tmp/dm-heavy-tests.lock`.
func TestSanityZFS(t *testing.T) {
	runSanity(t, openZFS)
}

func TestSanityBtrfs(t *testing.T) {
	runSanity(t, openBtrfs)
}

// sanityChild names, in a child test process, the sanity test it runs.
const sanityChild = "DOTMESH_CSI_SANITY_CHILD"

// runSanity runs the suite on the backend open returns (nil: dump) in a
// child process of this test binary: Ginkgo runs one suite per process,
// and each backend gets its own run.
func runSanity(t *testing.T, open func(*testing.T) dotmesh.StorageBackend) {
	if os.Getenv(sanityChild) != t.Name() {
		args := []string{"-test.run", "^" + t.Name() + "$", "-test.count=1"}
		if d, ok := t.Deadline(); ok {
			args = append(args, "-test.timeout", time.Until(d).Round(time.Second).String())
		}
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = append(os.Environ(), sanityChild+"="+t.Name())
		out, err := cmd.CombinedOutput()
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, "Passed") { // Ginkgo's summary
				t.Log(strings.TrimSpace(line))
			}
		}
		if err != nil {
			t.Fatalf("the sanity suite failed (%v):\n%s", err, out)
		}
		return
	}
	socket, _ := startPluginOn(t, open(t))
	dir := t.TempDir()
	cfg := sanity.NewTestConfig()
	cfg.Address = "unix://" + socket
	cfg.TargetPath = filepath.Join(dir, "target")
	cfg.StagingPath = filepath.Join(dir, "staging")
	sanity.Test(t, cfg)
}
