package csi

import (
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func TestDotName(t *testing.T) {
	if got := dotName("pvc-5b1c0e7a-1d2e-4f3a-9b8c-0123456789ab"); got != "pvc-5b1c0e7a-1d2e-4f3a-9b8c-0123456789ab" {
		t.Errorf("a Kubernetes claim name was changed to %q", got)
	}
	a, b := dotName("a.b"), dotName("a:b")
	if a == b || !strings.HasPrefix(a, "a-b-") {
		t.Errorf("dotName(a.b) = %q, dotName(a:b) = %q; want distinct, readable names", a, b)
	}
}

// FuzzIDs: any CSI name maps to a valid dot name, deterministically, and
// snapshot ids parse back to what made them.
func FuzzIDs(f *testing.F) {
	f.Add("pvc-1", "app@master.db")
	f.Add(strings.Repeat("x", 128), "ns/app")
	f.Add("a/b.c#d", "k8s/pvc-1@master")
	f.Fuzz(func(t *testing.T, name, volumeID string) {
		d := dotName(name)
		if err := dotmesh.ValidateName("dot", d); err != nil || d != dotName(name) {
			t.Fatalf("dotName(%q) = %q: %v", name, d, err)
		}
		c := dotmesh.NewCommitID()
		v, got, ok := parseSnapshotID(snapshotID(volumeID, c))
		_, perr := dotmesh.ParseVolumeName(volumeID)
		if ok != (perr == nil) || (ok && (v != volumeID || got != c)) {
			t.Fatalf("snapshot id of %q: %q %q %v", volumeID, v, got, ok)
		}
	})
}
