package csi_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Volume sizes on the backends that bound them: a zfs refquota and a
// btrfs qgroup limit. These make a zfs pool or loop-mount an image: run
// them under `flock -o /tmp/dm-heavy-tests.lock`.
func TestExpandZFS(t *testing.T)   { testExpand(t, openZFS(t)) }
func TestExpandBtrfs(t *testing.T) { testExpand(t, openBtrfs(t)) }

// fill writes n MiB to path, syncing, and returns the first error.
func fill(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i * 7) // not all zeros: nothing may compress it away
	}
	for range n {
		if _, err = f.Write(buf); err != nil {
			break
		}
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// wantFull checks that writing n MiB to path fails because the volume is
// full, and removes what was written.
func wantFull(t *testing.T, path string, n int) {
	t.Helper()
	err := fill(path, n)
	if !errors.Is(err, syscall.EDQUOT) && !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("writing %d MiB to %s: %v; want EDQUOT or ENOSPC", n, path, err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

func testExpand(t *testing.T, be dotmesh.StorageBackend) {
	socket, node := startPluginOn(t, be)
	c := dial(t, socket)
	ctx := context.Background()
	const mib = 1 << 20

	caps, err := c.ControllerGetCapabilities(ctx, &csi.ControllerGetCapabilitiesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	offered := false
	for _, cp := range caps.Capabilities {
		offered = offered || cp.GetRpc().GetType() == csi.ControllerServiceCapability_RPC_EXPAND_VOLUME
	}
	if !offered {
		t.Fatalf("%s offers no expansion", be.Name())
	}
	capy, err := c.GetCapacity(ctx, &csi.GetCapacityRequest{})
	room, rerr := node.Capacity(ctx, "")
	if err != nil || rerr != nil || capy.AvailableCapacity <= 0 || capy.AvailableCapacity > room.TotalBytes || !room.SizeLimits {
		t.Fatalf("GetCapacity: %v %v; the backend says %+v %v", capy, err, room, rerr)
	}

	v, err := c.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-quota", VolumeCapabilities: rwo,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 16 * mib}})
	if err != nil {
		t.Fatal(err)
	}
	id := v.Volume.VolumeId
	dot := dotmesh.DotName{Namespace: "admin", Name: "pvc-quota"}
	if n, err := node.BranchSize(ctx, dot, ""); err != nil || n != 16*mib {
		t.Fatalf("the new volume's bound: %d %v; want 16 MiB", n, err)
	}
	target := publish(t, c, id, false)
	wantFull(t, filepath.Join(target, "big"), 24)

	st, err := c.node.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: id, VolumePath: target})
	if err != nil {
		t.Fatal(err)
	}
	if b := usage(t, st, csi.VolumeUsage_BYTES); b.Total > 16*mib || b.Total < 8*mib || b.Available > b.Total {
		t.Fatalf("stats of a 16 MiB volume: %v", b)
	}

	// Online: the pod keeps its mount.
	exp, err := c.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: id, CapacityRange: &csi.CapacityRange{RequiredBytes: 64 * mib}})
	if err != nil || exp.CapacityBytes != 64*mib || exp.NodeExpansionRequired {
		t.Fatalf("ControllerExpandVolume to 64 MiB: %v %v", exp, err)
	}
	nexp, err := c.node.NodeExpandVolume(ctx, &csi.NodeExpandVolumeRequest{VolumeId: id, VolumePath: target, CapacityRange: &csi.CapacityRange{RequiredBytes: 64 * mib}})
	if err != nil || nexp.CapacityBytes != 64*mib {
		t.Fatalf("NodeExpandVolume to 64 MiB: %v %v", nexp, err)
	}
	if err := fill(filepath.Join(target, "big"), 24); err != nil {
		t.Fatalf("writing 24 MiB to the expanded volume: %v", err)
	}
	// Never shrinks: a smaller size is already satisfied.
	exp, err = c.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: id, CapacityRange: &csi.CapacityRange{RequiredBytes: 32 * mib}})
	if err != nil || exp.CapacityBytes != 64*mib {
		t.Fatalf("expanding to less: %v %v; want 64 MiB kept", exp, err)
	}
	if g, err := c.ControllerGetVolume(ctx, &csi.ControllerGetVolumeRequest{VolumeId: id}); err != nil || g.Volume.CapacityBytes != 64*mib {
		t.Fatalf("ControllerGetVolume after expansion: %v %v", g, err)
	}

	// The bound belongs to the branch: a reset to an older commit, which
	// puts a new file system or subvolume in place, keeps it.
	s1, err := c.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "s1", SourceVolumeId: id})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(target, "later"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "s2", SourceVolumeId: id}); err != nil {
		t.Fatal(err)
	}
	unpublish(t, c, id, target)
	if _, err := node.Reset(ctx, dot, "", s1.Snapshot.SnapshotId[len(id)+1:], dotmesh.ResetOptions{}); err != nil {
		t.Fatal(err)
	}
	if n, err := node.BranchSize(ctx, dot, ""); err != nil || n != 64*mib {
		t.Fatalf("the bound after a reset: %d %v; want 64 MiB", n, err)
	}
	target = publish(t, c, id, false)
	if _, err := os.Stat(filepath.Join(target, "later")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the reset did not happen: %v", err)
	}
	wantFull(t, filepath.Join(target, "bigger"), 80)
	unpublish(t, c, id, target)
}
