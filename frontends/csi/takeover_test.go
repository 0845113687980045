package csi_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dotmesh-io/dotmesh/backend/dump"
	etcdstore "github.com/dotmesh-io/dotmesh/cluster/etcd"
	"github.com/dotmesh-io/dotmesh/cluster/etcd/etcdtest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	csidrv "github.com/dotmesh-io/dotmesh/frontends/csi"
)

// peers reaches in-process nodes (the daemon's peers are the HTTP
// client; tests/e2e TestCSICluster* run dm serve nodes, and the sanity
// suite across two of them: Ginkgo runs one suite per test binary).
type peers struct {
	mu    sync.Mutex
	nodes map[string]*dotmesh.Node
}

type peer struct {
	dotmesh.Transport
	n *dotmesh.Node
}

func (p *peers) Peer(ni dotmesh.NodeInfo) (dotmesh.Peer, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n, ok := p.nodes[ni.ID]
	if !ok {
		return nil, dotmesh.ErrUnavailable
	}
	return peer{dotmesh.LocalTransport(n), n}, nil
}

func (p peer) Release(ctx context.Context, dot dotmesh.DotName, branch, to string) (*dotmesh.ReleaseResult, error) {
	return p.n.Cluster().Release(ctx, dot, branch, to)
}

// clusterPlugins runs the plugin on two clustered nodes n1 and n2
// (Kubernetes nodes k8s-a and k8s-b) sharing a real etcd.
func clusterPlugins(t *testing.T) (nodes []*dotmesh.Node, cs []clients) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the CSI tests bind-mount volumes and need root")
	}
	etcd := etcdtest.Start(t, 1)
	ps := &peers{nodes: map[string]*dotmesh.Node{}}
	for i, id := range []string{"n1", "n2"} {
		st, err := etcdstore.Open(context.Background(), etcdstore.Options{Endpoints: etcd.Endpoints()})
		if err != nil {
			t.Fatal(err)
		}
		be, err := dump.Open(filepath.Join(t.TempDir(), "dump"), dump.Options{})
		if err != nil {
			t.Fatal(err)
		}
		n, err := dotmesh.NewNode(context.Background(), dotmesh.Options{Store: st, Backends: []dotmesh.StorageBackend{be},
			Cluster: &dotmesh.ClusterOptions{NodeID: id, Address: "inproc://" + id, Peers: ps}})
		if err != nil {
			t.Fatal(err)
		}
		ps.mu.Lock()
		ps.nodes[id] = n
		ps.mu.Unlock()
		srv, err := csidrv.New(csidrv.Options{Node: n, NodeID: "k8s-" + string(rune('a'+i)), Version: "test"})
		if err != nil {
			t.Fatal(err)
		}
		sock := filepath.Join(t.TempDir(), "csi.sock")
		ln, err := srv.Listen(sock)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ctx, ln) }()
		t.Cleanup(func() {
			cancel()
			<-done
			n.Close()
		})
		nodes = append(nodes, n)
		cs = append(cs, dial(t, sock))
	}
	return nodes, cs
}

func masterOf(t *testing.T, n *dotmesh.Node, dot string) string {
	t.Helper()
	bs, err := n.Branches(context.Background(), dotmesh.DotName{Namespace: "admin", Name: dot})
	if err != nil {
		t.Fatal(err)
	}
	return bs[0].Master
}

// In a cluster a volume is usable on every node: it carries no topology,
// any node's topology is accepted, and publishing on another node moves
// its branch there with its data; a pod on the master holds it, and a
// master that stopped answers Unavailable with what to do.
func TestClusterPublishMovesBranch(t *testing.T) {
	ctx := context.Background()
	nodes, cs := clusterPlugins(t)
	a, b := cs[0], cs[1]
	infoB, err := b.node.NodeGetInfo(ctx, &csi.NodeGetInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	vol, err := a.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-x", VolumeCapabilities: rwo,
		AccessibilityRequirements: &csi.TopologyRequirement{Requisite: []*csi.Topology{infoB.AccessibleTopology}}})
	if err != nil {
		t.Fatalf("creating on k8s-a a volume the scheduler wants on k8s-b: %v", err)
	}
	if len(vol.Volume.AccessibleTopology) != 0 {
		t.Fatalf("a cluster volume is pinned: %v", vol.Volume.AccessibleTopology)
	}
	id := vol.Volume.VolumeId
	ta := publish(t, a, id, false)
	if err := os.WriteFile(filepath.Join(ta, "rows"), []byte("from a"), 0o644); err != nil {
		t.Fatal(err)
	}
	tb := filepath.Join(t.TempDir(), "mnt")
	_, err = b.node.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: id, TargetPath: tb, VolumeCapability: rwo[0]})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "moving volume") {
		t.Fatalf("publish on k8s-b while k8s-a uses it: %v; want FailedPrecondition", err)
	}
	unpublish(t, a, id, ta)
	tb = publish(t, b, id, false)
	if got, err := os.ReadFile(filepath.Join(tb, "rows")); err != nil || string(got) != "from a" {
		t.Fatalf("k8s-b reads %q, %v; want what k8s-a wrote", got, err)
	}
	if m := masterOf(t, nodes[0], "pvc-x"); m != "n2" {
		t.Fatalf("master after publishing on k8s-b: %q", m)
	}
	unpublish(t, b, id, tb)

	// n2, the master now, stops: n1 must not drop its uncommitted data.
	if err := nodes[1].Close(); err != nil {
		t.Fatal(err)
	}
	_, err = a.node.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: id, TargetPath: filepath.Join(t.TempDir(), "mnt"), VolumeCapability: rwo[0]})
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "dm dot take-over admin/pvc-x master") {
		t.Fatalf("publish with the master stopped: %v; want Unavailable naming the take-over", err)
	}
}

// On a single node volumes keep their node's topology and publishing
// moves nothing.
func TestSingleNodeTopology(t *testing.T) {
	sock, _ := startPlugin(t)
	c := dial(t, sock)
	vol, err := c.CreateVolume(context.Background(), &csi.CreateVolumeRequest{Name: "pvc-y", VolumeCapabilities: rwo})
	if err != nil {
		t.Fatal(err)
	}
	if tp := vol.Volume.AccessibleTopology; len(tp) != 1 || tp[0].Segments[csidrv.TopologyKey] != "test-node" {
		t.Fatalf("single-node volume topology %v", tp)
	}
	_, err = c.CreateVolume(context.Background(), &csi.CreateVolumeRequest{Name: "pvc-z", VolumeCapabilities: rwo,
		AccessibilityRequirements: &csi.TopologyRequirement{Requisite: []*csi.Topology{{Segments: map[string]string{csidrv.TopologyKey: "other"}}}}})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("a single node accepted a volume for another node: %v", err)
	}
	unpublish(t, c, vol.Volume.VolumeId, publish(t, c, vol.Volume.VolumeId, false))
}
