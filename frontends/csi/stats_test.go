package csi_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dotmesh-io/dotmesh/frontends/internal/bindmount"
)

func usage(t *testing.T, s *csi.NodeGetVolumeStatsResponse, u csi.VolumeUsage_Unit) *csi.VolumeUsage {
	t.Helper()
	for _, x := range s.GetUsage() {
		if x.Unit == u {
			return x
		}
	}
	t.Fatalf("no %s in %v", u, s)
	return nil
}

// Stats and health of a published volume on the files backend, which
// reports its file system's figures and refuses expansion.
func TestStatsAndNodeHealth(t *testing.T) {
	socket, _ := startPlugin(t)
	c := dial(t, socket)
	ctx := context.Background()
	v, err := c.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-stats", VolumeCapabilities: rwo})
	if err != nil {
		t.Fatal(err)
	}
	id := v.Volume.VolumeId
	target := publish(t, c, id, false)
	if err := os.WriteFile(filepath.Join(target, "data"), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := c.node.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: id, VolumePath: target})
	if err != nil {
		t.Fatal(err)
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(target, &fs); err != nil {
		t.Fatal(err)
	}
	b, in := usage(t, st, csi.VolumeUsage_BYTES), usage(t, st, csi.VolumeUsage_INODES)
	if b.Total != int64(fs.Blocks)*fs.Bsize || b.Used <= 0 || b.Available <= 0 || b.Used+b.Available > b.Total {
		t.Fatalf("bytes %v; statfs says %d blocks of %d", b, fs.Blocks, fs.Bsize)
	}
	if in.Total <= 0 || in.Used <= 0 || in.Used+in.Available != in.Total {
		t.Fatalf("inodes %v", in)
	}
	for path, want := range map[string]codes.Code{filepath.Join(target, "nosuch"): codes.NotFound, t.TempDir(): codes.NotFound, "": codes.InvalidArgument} {
		if _, err := c.node.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: id, VolumePath: path}); status.Code(err) != want {
			t.Errorf("stats at %q: %v; want %s", path, err, want)
		}
	}
	if _, err := c.node.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: "nosuch", VolumePath: target}); status.Code(err) != codes.NotFound {
		t.Errorf("stats of a missing volume: %v; want NotFound", err)
	}

	h, err := c.node.NodeGetVolumeHealth(ctx, &csi.NodeGetVolumeHealthRequest{VolumeId: id, VolumePublishPath: target})
	if err != nil || len(h.VolumeHealth.HealthStatuses) != 0 {
		t.Fatalf("health of a published volume: %v %v", h, err)
	}
	// The bind mount gone behind the plugin's back.
	if err := bindmount.Unmount(target); err != nil {
		t.Fatal(err)
	}
	h, err = c.node.NodeGetVolumeHealth(ctx, &csi.NodeGetVolumeHealthRequest{VolumeId: id, VolumePublishPath: target})
	if err != nil || len(h.VolumeHealth.HealthStatuses) != 1 || h.VolumeHealth.HealthStatuses[0].Reason != "MountMissing" {
		t.Fatalf("health of a volume whose mount went: %v %v", h, err)
	}
	sh, err := c.node.NodeGetStorageHealth(ctx, &csi.NodeGetStorageHealthRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if low := float64(fs.Bavail) < 0.05*float64(fs.Blocks); low != (len(sh.BackendHealth) == 1) {
		t.Fatalf("storage health %v with %d of %d blocks free", sh, fs.Bavail, fs.Blocks)
	}

	// No expansion on files: not offered, and refused when asked.
	caps, err := c.ControllerGetCapabilities(ctx, &csi.ControllerGetCapabilitiesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, cp := range caps.Capabilities {
		if cp.GetRpc().GetType() == csi.ControllerServiceCapability_RPC_EXPAND_VOLUME {
			t.Fatal("the files backend offers expansion")
		}
	}
	if _, err := c.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: id, CapacityRange: &csi.CapacityRange{RequiredBytes: 1 << 30}}); status.Code(err) != codes.OutOfRange {
		t.Fatalf("expanding a files volume: %v; want OutOfRange", err)
	}
}

func TestGetCapacity(t *testing.T) {
	socket, node := startPlugin(t)
	c := dial(t, socket)
	ctx := context.Background()
	got, err := c.GetCapacity(ctx, &csi.GetCapacityRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want, err := node.Capacity(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	// The dump store's file system, give or take what others write meanwhile.
	if d := got.AvailableCapacity - want.AvailableBytes; got.AvailableCapacity <= 0 || d > 64<<20 || d < -64<<20 {
		t.Fatalf("GetCapacity %d; the file system has %d free", got.AvailableCapacity, want.AvailableBytes)
	}
	if want.Backend != "dump" || want.SizeLimits || want.TotalBytes < want.AvailableBytes {
		t.Fatalf("capacity %+v", want)
	}
	other := &csi.Topology{Segments: map[string]string{"dotmesh.io/node": "other-node"}}
	if r, err := c.GetCapacity(ctx, &csi.GetCapacityRequest{AccessibleTopology: other}); err != nil || r.AvailableCapacity != 0 {
		t.Fatalf("capacity on another node's topology: %v %v; want 0", r, err)
	}
	block := []*csi.VolumeCapability{{AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}}, AccessMode: rwo[0].AccessMode}}
	if r, err := c.GetCapacity(ctx, &csi.GetCapacityRequest{VolumeCapabilities: block}); err != nil || r.AvailableCapacity != 0 {
		t.Fatalf("capacity for block volumes: %v %v; want 0", r, err)
	}
	if _, err := c.GetCapacity(ctx, &csi.GetCapacityRequest{Parameters: map[string]string{"bogus": "1"}}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("an unknown parameter: %v; want InvalidArgument", err)
	}
}
