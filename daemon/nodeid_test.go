package daemon_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/cluster/etcd/etcdtest"
	"github.com/dotmesh-io/dotmesh/daemon"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/server/servertest"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// A node starting under the id of a live node of its cluster (real etcd)
// is refused, naming the live node's address and --node-id, and changes
// nothing: the live node stays registered at its address.
func TestNodeIDOfLiveNodeRefused(t *testing.T) {
	etcd := etcdtest.Start(t, 1)
	d1 := t.TempDir()
	cfg := daemon.Config{DataDir: d1, Listen: freeAddr(t), Store: daemon.StoreEtcd, EtcdEndpoints: etcd.Endpoints(), NodeID: "n1"}
	r1 := startWith(t, cfg)
	key, err := os.ReadFile(filepath.Join(d1, "admin-api-key"))
	if err != nil {
		t.Fatal(err)
	}
	cfg2 := cfg
	cfg2.DataDir, cfg2.Listen, cfg2.ClusterKey = t.TempDir(), freeAddr(t), strings.TrimSpace(string(key))
	cfg2.Logger = servertest.Logger(t)
	second := cfg2
	started := make(chan string, 1)
	second.Ready = func(addr string) { started <- addr }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- daemon.Run(ctx, second) }()
	select {
	case err = <-done:
	case addr := <-started:
		cancel()
		<-done
		t.Fatalf("a second node started under the id of the live node at %s (on %s)", r1.addr, addr)
	}
	cancel()
	var held *dotmesh.NodeIDInUseError
	if !errors.As(err, &held) || !errors.Is(err, dotmesh.ErrInUse) || !strings.Contains(err.Error(), "http://"+r1.addr) || !strings.Contains(err.Error(), "--node-id") {
		t.Fatalf("second node under id n1: %v", err)
	}
	c := connect(t, r1, d1)
	nodes, err := c.Nodes(context.Background())
	if err != nil || len(nodes.Nodes) != 1 || nodes.Nodes[0].Address != "http://"+r1.addr {
		t.Fatalf("nodes after the refusal: %+v %v", nodes, err)
	}
	if err := r1.stop(); err != nil {
		t.Fatal(err)
	}
	// Stopped, its id is free again.
	r2 := startWith(t, cfg2)
	r2.stop()
}
