package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/kubernetes-csi/csi-test/v5/pkg/sanity"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/dotmesh-io/dotmesh/cluster/etcd/etcdtest"
)

// csiClusterNodes is two `dm serve --store etcd --csi-socket` nodes sharing
// a real etcd: n1 (Kubernetes node k8s-a) and n2 (k8s-b).
func csiClusterNodes(t *testing.T) (c *etcdNodes, socks []string, conns []*grpc.ClientConn) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the CSI cluster test bind-mounts and needs root")
	}
	dir := t.TempDir()
	socks = []string{filepath.Join(dir, "a.sock"), filepath.Join(dir, "b.sock")}
	c = startEtcdNodesWith(t, etcdtest.Start(t, 1), 2, func(i int) []string {
		return []string{"--csi-socket", socks[i], "--csi-node-id", "k8s-" + string(rune('a'+i))}
	})
	for _, s := range socks {
		conn, err := grpc.NewClient("unix://"+s, grpc.WithTransportCredentials(insecure.NewCredentials()))
		must(t, err)
		t.Cleanup(func() { conn.Close() })
		conns = append(conns, conn)
	}
	return c, socks, conns
}

// TestCSIClusterSanity runs the official CSI sanity suite with the
// controller on one node and the node service on the other: every volume
// the suite publishes moves from the node that made it.
func TestCSIClusterSanity(t *testing.T) {
	_, socks, _ := csiClusterNodes(t)
	dir := t.TempDir()
	cfg := sanity.NewTestConfig()
	cfg.ControllerAddress = "unix://" + socks[0]
	cfg.Address = "unix://" + socks[1]
	cfg.TargetPath = filepath.Join(dir, "target")
	cfg.StagingPath = filepath.Join(dir, "staging")
	sanity.Test(t, cfg)
}

var mountCap = &csi.VolumeCapability{
	AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
	AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
}

// TestCSIClusterMove: a volume made and written on node A is published on
// node B. Its branch moves to B with A's committed and uncommitted data,
// A no longer masters it, a pod still using it on A holds it there, and a
// master that died answers Unavailable with what to do.
func TestCSIClusterMove(t *testing.T) {
	c, _, conns := csiClusterNodes(t)
	e, n1 := c.e, c.nodes[0]
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ccA := csi.NewControllerClient(conns[0])
	ncA, ncB := csi.NewNodeClient(conns[0]), csi.NewNodeClient(conns[1])

	// The scheduler's choice (B's topology) binds nothing: any node serves.
	infoB, err := ncB.NodeGetInfo(ctx, &csi.NodeGetInfoRequest{})
	must(t, err)
	vol, err := ccA.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-move", VolumeCapabilities: []*csi.VolumeCapability{mountCap},
		AccessibilityRequirements: &csi.TopologyRequirement{Requisite: []*csi.Topology{infoB.AccessibleTopology}}})
	must(t, err)
	if len(vol.Volume.AccessibleTopology) != 0 {
		t.Fatalf("a cluster volume is pinned to %v; it must be usable on every node", vol.Volume.AccessibleTopology)
	}
	id := vol.Volume.VolumeId
	publish := func(nc csi.NodeClient, target string) error {
		t.Cleanup(func() { syscall.Unmount(target, syscall.MNT_DETACH) })
		_, err := nc.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: id, TargetPath: target, VolumeCapability: mountCap})
		return err
	}
	targetA, targetB := filepath.Join(t.TempDir(), "a", "mount"), filepath.Join(t.TempDir(), "b", "mount")

	must(t, publish(ncA, targetA))
	writeFile(t, filepath.Join(targetA, "table"), "committed on A\n")
	_, err = ccA.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "snap-a", SourceVolumeId: id})
	must(t, err)
	writeFile(t, filepath.Join(targetA, "wal"), "uncommitted on A\n")

	// The pod on A still has it: B must wait.
	err = publish(ncB, targetB)
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "stop them there first") {
		t.Fatalf("publish on B while A uses the volume: %v; want FailedPrecondition naming the use on n1", err)
	}
	if s := c.show(n1, "pvc-move"); s.Branch.Master != "n1" {
		t.Fatalf("a refused move changed the master: %+v", s.Branch)
	}
	_, err = ncA.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: id, TargetPath: targetA})
	must(t, err)

	must(t, publish(ncB, targetB))
	for file, want := range map[string]string{"table": "committed on A\n", "wal": "uncommitted on A\n"} {
		if got := readFile(t, filepath.Join(targetB, file)); got != want {
			t.Fatalf("%s on B after the move: %q, want %q", file, got, want)
		}
	}
	if s := c.show(n1, "pvc-move"); s.Branch.Master != "n2" {
		t.Fatalf("after publishing on B, n1 reports master %q, want n2", s.Branch.Master)
	}
	l := e.logOn(n1, "pvc-move")
	if len(l) < 2 || l[0].Message != "Automatic commit while moving from n1 to n2" || l[1].Message != "CSI snapshot snap-a" {
		t.Fatalf("log after the move: %+v", l)
	}
	// Publishing again on B is a retry: nothing moves.
	must(t, publish(ncB, targetB))
	_, err = ncB.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: id, TargetPath: targetB})
	must(t, err)

	// Back to A (its master now B), then A dies: B cannot take the
	// branch without losing A's uncommitted changes, and says so.
	targetA2 := filepath.Join(t.TempDir(), "a2", "mount")
	must(t, publish(ncA, targetA2))
	_, err = ncA.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: id, TargetPath: targetA2})
	must(t, err)
	n1.kill()
	deadline := time.Now().Add(60 * time.Second)
	for {
		err = publish(ncB, filepath.Join(t.TempDir(), "b2", "mount"))
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("publish on B with its master A dead: %v; want Unavailable", err)
		}
		if strings.Contains(err.Error(), "dm dot take-over admin/pvc-move master") {
			break // A's registration expired: the message says what to do
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60s, publish on B still says %v; want the take-over hint", err)
		}
		time.Sleep(time.Second)
	}
}
