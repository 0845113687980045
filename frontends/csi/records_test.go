package csi

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/dotmesh-io/dotmesh/backend/dump"
	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// A node upgraded from a version that wrote CSI records at csi/ in the
// registry keeps its volumes and snapshots: New moves them into the
// node's FrontendRecords, once.
func TestLegacyRecordsAreMoved(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := bboltstore.Open(filepath.Join(dir, "registry.db"), bboltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	be, err := dump.Open(filepath.Join(dir, "dump"), dump.Options{})
	if err != nil {
		t.Fatal(err)
	}
	node, err := dotmesh.NewNode(ctx, dotmesh.Options{Store: store, Backends: []dotmesh.StorageBackend{be}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })

	vol := volumeRecord{Name: "pvc-old", ID: "admin/pvc-old@master", Namespace: "admin", Dot: "pvc-old", Capacity: 1 << 20, State: stateReady, Created: time.Unix(1700000000, 0).UTC()}
	snap := snapshotRecord{Name: "snap-old", ID: "admin/pvc-old@master#c1", Volume: vol.ID, Commit: "c1", Size: 1 << 20, Created: vol.Created}
	for key, v := range map[string]any{"csi/volumes/" + nameKey(vol.Name): vol, "csi/snapshots/c1": snap} {
		b, _ := json.Marshal(v)
		if _, err := store.Put(ctx, key, b); err != nil {
			t.Fatal(err)
		}
	}

	for range 2 { // the second start finds nothing left to move
		s, err := New(Options{Node: node, NodeID: "test-node"})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.volumeByName(ctx, "pvc-old")
		if err != nil || got == nil || got.ID != vol.ID || got.Capacity != vol.Capacity {
			t.Fatalf("the old volume record after New: %+v %v", got, err)
		}
		list, err := s.ListSnapshots(ctx, &csi.ListSnapshotsRequest{})
		if err != nil || len(list.Entries) != 1 || list.Entries[0].Snapshot.SnapshotId != snap.ID {
			t.Fatalf("the old snapshot after New: %v %v", list, err)
		}
		if left, err := store.List(ctx, "csi/"); err != nil || len(left) != 0 {
			t.Fatalf("old keys left: %v %v", left, err)
		}
		if _, err := store.Get(ctx, "frontend/csi/volumes/"+nameKey(vol.Name)); err != nil {
			t.Fatalf("the record is not in the namespace: %v", err)
		}
	}
}
