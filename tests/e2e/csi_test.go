package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// TestServeCSI starts `dm serve --csi-socket` and provisions, snapshots
// and publishes through the socket, as the CSI sidecars and kubelet do;
// the dot shows in `dm list`. (The sanity suite runs in frontends/csi.)
func TestServeCSI(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the CSI test bind-mounts and needs root")
	}
	e := newEnv(t)
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	sock := filepath.Join(t.TempDir(), "csi.sock")
	logPath := filepath.Join(t.TempDir(), "serve.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(dmBin, "serve", "--data-dir", e.data, "--listen", addr, "--docker-socket", "",
		"--csi-socket", sock, "--csi-node-id", "node-a")
	cmd.Env = e.environ()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill() // our own child, by PID
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("dm serve log:\n%s", b)
		}
	})
	waitHealthy(t, addr, exited)
	if st, err := os.Stat(sock); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("CSI socket: %v %v; want mode 0600", st, err)
	}
	key, err := os.ReadFile(filepath.Join(e.data, "admin-api-key"))
	if err != nil {
		t.Fatal(err)
	}
	e.extra = []string{"DOTMESH_PASSWORD=" + string(key)}
	e.ok("remote", "add", "local", "admin@"+addr)
	e.extra = nil

	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	info, err := csi.NewIdentityClient(conn).GetPluginInfo(ctx, &csi.GetPluginInfoRequest{})
	if err != nil || info.Name != "dotmesh.io" {
		t.Fatalf("GetPluginInfo: %v %v", info, err)
	}
	ni, err := csi.NewNodeClient(conn).NodeGetInfo(ctx, &csi.NodeGetInfoRequest{})
	if err != nil || ni.NodeId != "node-a" || ni.AccessibleTopology.Segments["dotmesh.io/node"] != "node-a" {
		t.Fatalf("NodeGetInfo: %v %v", ni, err)
	}
	cc := csi.NewControllerClient(conn)
	capab := &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
	}
	vol, err := cc.CreateVolume(ctx, &csi.CreateVolumeRequest{
		Name: "pvc-5b1c0e7a-1d2e-4f3a-9b8c-0123456789ab", VolumeCapabilities: []*csi.VolumeCapability{capab},
		CapacityRange: &csi.CapacityRange{RequiredBytes: 1 << 30},
	})
	if err != nil {
		t.Fatal(err)
	}
	if vol.Volume.AccessibleTopology[0].Segments["dotmesh.io/node"] != "node-a" {
		t.Fatalf("volume topology %v", vol.Volume.AccessibleTopology)
	}
	target := filepath.Join(t.TempDir(), "pod", "mount")
	t.Cleanup(func() { syscall.Unmount(target, syscall.MNT_DETACH) })
	nc := csi.NewNodeClient(conn)
	if _, err := nc.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: vol.Volume.VolumeId, TargetPath: target, VolumeCapability: capab,
		VolumeContext: map[string]string{"csi.storage.k8s.io/pod.name": "db-0", "csi.storage.k8s.io/pod.namespace": "shop"}}); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(target, "table"), "rows\n")
	if out := e.ok("list"); !strings.Contains(out, "pvc-5b1c0e7a") || !strings.Contains(out, "db-0") {
		t.Fatalf("dm list does not show the volume used by pod db-0:\n%s", out)
	}
	if _, err := cc.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "snapshot-1", SourceVolumeId: vol.Volume.VolumeId}); err != nil {
		t.Fatal(err)
	}
	if out := e.ok("log", "--dot", "pvc-5b1c0e7a-1d2e-4f3a-9b8c-0123456789ab"); !strings.Contains(out, "CSI snapshot snapshot-1") {
		t.Fatalf("dm log does not show the snapshot's commit:\n%s", out)
	}
	if _, err := nc.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: vol.Volume.VolumeId, TargetPath: target}); err != nil {
		t.Fatal(err)
	}
	if mountedAt(t, target) != 0 {
		t.Fatal("still mounted after NodeUnpublishVolume")
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatal("dm serve did not stop on SIGTERM")
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("the CSI socket outlived dm serve: %v", err)
	}
}
