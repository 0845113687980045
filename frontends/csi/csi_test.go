package csi_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/frontends/internal/bindmount"
)

type clients struct {
	csi.ControllerClient
	node csi.NodeClient
}

func dial(t *testing.T, socket string) clients {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return clients{csi.NewControllerClient(conn), csi.NewNodeClient(conn)}
}

var rwo = []*csi.VolumeCapability{{
	AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
	AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
}}

// publish bind-mounts a volume in a temp dir, unmounted again at the end
// even when the test fails.
func publish(t *testing.T, c clients, id string, ro bool) string {
	t.Helper()
	target := filepath.Join(t.TempDir(), "mnt")
	t.Cleanup(func() { _ = bindmount.Unmount(target) })
	if _, err := c.node.NodePublishVolume(context.Background(), &csi.NodePublishVolumeRequest{
		VolumeId: id, TargetPath: target, VolumeCapability: rwo[0], Readonly: ro,
	}); err != nil {
		t.Fatalf("publishing %s: %v", id, err)
	}
	return target
}

func unpublish(t *testing.T, c clients, id, target string) {
	t.Helper()
	if _, err := c.node.NodeUnpublishVolume(context.Background(), &csi.NodeUnpublishVolumeRequest{VolumeId: id, TargetPath: target}); err != nil {
		t.Fatalf("unpublishing %s: %v", id, err)
	}
	if info, err := bindmount.Stat(target); err != nil || info.Mounted {
		t.Fatalf("%s still mounted after unpublish: %+v %v", target, info, err)
	}
}

// TestSnapshotRestoreAndClone checks data really travels: a file written
// through a published volume is in its snapshot's restore and its clone,
// and a snapshot outlives its source volume.
func TestSnapshotRestoreAndClone(t *testing.T) {
	socket, node := startPlugin(t)
	c := dial(t, socket)
	ctx := context.Background()

	vol, err := c.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-1f2e", VolumeCapabilities: rwo,
		Parameters: map[string]string{"subdot": "db"}})
	if err != nil {
		t.Fatal(err)
	}
	id := vol.Volume.VolumeId
	if id != "pvc-1f2e@master.db" {
		t.Fatalf("volume id %q", id)
	}
	target := publish(t, c, id, false)
	// A retry of the same publish is fine.
	if _, err := c.node.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: id, TargetPath: target, VolumeCapability: rwo[0]}); err != nil {
		t.Fatalf("repeated publish: %v", err)
	}
	if err := os.WriteFile(filepath.Join(target, "rows"), []byte("v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	snap, err := c.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "snap-1", SourceVolumeId: id})
	if err != nil {
		t.Fatal(err)
	}
	log, err := node.Log(ctx, dotmesh.DotName{Namespace: "admin", Name: "pvc-1f2e"}, "", 0)
	if err != nil || len(log) != 1 || log[0].Metadata["csi-snapshot"] != "snap-1" {
		t.Fatalf("the snapshot is not a commit of the dot: %+v %v", log, err)
	}
	if err := os.WriteFile(filepath.Join(target, "rows"), []byte("v2"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: id}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("deleting a published volume: %v; want FailedPrecondition", err)
	}
	unpublish(t, c, id, target)

	restored, err := c.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-restored", VolumeCapabilities: rwo,
		Parameters:          map[string]string{"subdot": "db"},
		VolumeContentSource: &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: snap.Snapshot.SnapshotId}}}})
	if err != nil {
		t.Fatal(err)
	}
	clone, err := c.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-clone", VolumeCapabilities: rwo,
		Parameters:          map[string]string{"subdot": "db"},
		VolumeContentSource: &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: id}}}})
	if err != nil {
		t.Fatal(err)
	}
	// The source goes first; its dot stays while its snapshot needs it.
	if _, err := c.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := node.Dot(ctx, dotmesh.DotName{Namespace: "admin", Name: "pvc-1f2e"}); err != nil {
		t.Fatalf("the dot of a deleted volume with a snapshot is gone: %v", err)
	}
	for vid, want := range map[string]string{restored.Volume.VolumeId: "v1", clone.Volume.VolumeId: "v2"} {
		mnt := publish(t, c, vid, true)
		if b, err := os.ReadFile(filepath.Join(mnt, "rows")); err != nil || string(b) != want {
			t.Errorf("%s holds %q, %v; want %q", vid, b, err, want)
		}
		if err := os.WriteFile(filepath.Join(mnt, "x"), nil, 0o644); err == nil {
			t.Errorf("a read-only publish of %s is writable", vid)
		}
		unpublish(t, c, vid, mnt)
	}
	if _, err := c.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: snap.Snapshot.SnapshotId}); err != nil {
		t.Fatal(err)
	}
	if _, err := node.Dot(ctx, dotmesh.DotName{Namespace: "admin", Name: "pvc-1f2e"}); err == nil {
		t.Fatal("the dot of a deleted volume outlived its last snapshot")
	}
	dots, _ := node.ListDots(ctx)
	if len(dots) != 2 {
		t.Fatalf("%d dots left; want the restore and the clone", len(dots))
	}
}

func TestVolumeNames(t *testing.T) {
	socket, node := startPlugin(t)
	c := dial(t, socket)
	ctx := context.Background()
	long := "a.name/with odd:chars-" + "0123456789012345678901234567890123456789012345678901234567890123456789"
	v1, err := c.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: long, VolumeCapabilities: rwo})
	if err != nil {
		t.Fatal(err)
	}
	v2, err := c.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: long, VolumeCapabilities: rwo})
	if err != nil || v2.Volume.VolumeId != v1.Volume.VolumeId {
		t.Fatalf("retry: %v %v", v2, err)
	}
	v, err := dotmesh.ParseVolumeName(v1.Volume.VolumeId)
	if err != nil {
		t.Fatalf("volume id %q is not in the shared syntax: %v", v1.Volume.VolumeId, err)
	}
	if _, err := node.Dot(ctx, v.Dot); err != nil {
		t.Fatal(err)
	}
	if _, err := node.CreateDot(ctx, dotmesh.DotName{Namespace: "admin", Name: "taken"}, dotmesh.CreateDotOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "taken", VolumeCapabilities: rwo}); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("a volume over an existing dot: %v; want AlreadyExists", err)
	}
	if _, err := c.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "x", VolumeCapabilities: rwo, Parameters: map[string]string{"subdot": "_bad"}}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("a reserved subdot: %v; want InvalidArgument", err)
	}
	// Deleting a volume the plugin did not make (a static PV) leaves the dot.
	if _, err := c.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: "taken"}); err != nil {
		t.Fatal(err)
	}
	if _, err := node.Dot(ctx, dotmesh.DotName{Namespace: "admin", Name: "taken"}); err != nil {
		t.Fatalf("DeleteVolume of a static volume deleted the dot: %v", err)
	}
}
