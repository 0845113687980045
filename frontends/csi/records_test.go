package csi_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"

	plugin "github.com/dotmesh-io/dotmesh/frontends/csi"
)

// A node upgraded from a version that wrote CSI records at csi/ in the
// registry keeps its volumes and snapshots: New moves them into the
// node's FrontendRecords, once.
func TestLegacyRecordsAreMoved(t *testing.T) {
	ctx := context.Background()
	node, store := openNode(t, t.TempDir())
	t.Cleanup(func() { node.Close() })

	// As the older version wrote them: volumes by a hash of the CSI name.
	h := sha256.Sum256([]byte("pvc-old"))
	volKey := "volumes/" + hex.EncodeToString(h[:16])
	for key, v := range map[string]string{
		"csi/" + volKey:    `{"name":"pvc-old","id":"admin/pvc-old@master","namespace":"admin","dot":"pvc-old","capacity":2097152,"state":"ready","created":"2026-01-02T03:04:05Z"}`,
		"csi/snapshots/c1": `{"name":"snap-old","id":"admin/pvc-old@master#c1","volume":"admin/pvc-old@master","commit":"c1","size":1048576,"created":"2026-01-02T03:04:05Z"}`,
	} {
		if _, err := store.Put(ctx, key, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}

	for range 2 { // the second start finds nothing left to move
		s, err := plugin.New(plugin.Options{Node: node, NodeID: "test-node"})
		if err != nil {
			t.Fatal(err)
		}
		// A retry of the old CreateVolume finds the record: its capacity,
		// and no new dot.
		vol, err := s.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-old", VolumeCapabilities: rwo, CapacityRange: &csi.CapacityRange{RequiredBytes: 1 << 20}})
		if err != nil || vol.Volume.VolumeId != "admin/pvc-old@master" || vol.Volume.CapacityBytes != 2<<20 {
			t.Fatalf("the old volume after New: %v %v", vol, err)
		}
		if dots, err := node.ListDots(ctx); err != nil || len(dots) != 0 {
			t.Fatalf("a retry of an existing volume made a dot: %v %v", dots, err)
		}
		snaps, err := s.ListSnapshots(ctx, &csi.ListSnapshotsRequest{})
		if err != nil || len(snaps.Entries) != 1 || snaps.Entries[0].Snapshot.SnapshotId != "admin/pvc-old@master#c1" {
			t.Fatalf("the old snapshot after New: %v %v", snaps, err)
		}
		if left, err := store.List(ctx, "csi/"); err != nil || len(left) != 0 {
			t.Fatalf("old keys left: %v %v", left, err)
		}
		if _, err := store.Get(ctx, "frontend/csi/"+volKey); err != nil {
			t.Fatalf("the record is not in the namespace: %v", err)
		}
	}
}
