package csi

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// dotName maps a CSI volume name (Kubernetes sends pvc-<uuid>; the spec
// allows 128 arbitrary bytes) to a dot name. Valid dot names are kept as
// they are, so `dm list` shows pvc-<uuid>; anything else keeps its valid
// characters, truncated, plus a hash of the whole name, so the mapping is
// deterministic (idempotent retries find the same dot) and collision-free
// in practice.
func dotName(name string) string {
	if dotmesh.ValidateName("dot", name) == nil {
		return name
	}
	var b strings.Builder
	for i := 0; i < len(name) && b.Len() < 47; i++ {
		c := name[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' {
			b.WriteByte(c)
		} else {
			b.WriteByte('-')
		}
	}
	h := sha256.Sum256([]byte(name))
	return b.String() + "-" + hex.EncodeToString(h[:8])
}

// nameKey turns any CSI name into one clean registry key segment.
func nameKey(name string) string {
	h := sha256.Sum256([]byte(name))
	return hex.EncodeToString(h[:16])
}

// parseVolumeID parses a volume id (the shared volume syntax).
func parseVolumeID(id string) (dotmesh.VolumeName, error) {
	v, err := dotmesh.ParseVolumeName(id)
	if err != nil {
		return v, fmt.Errorf("volume id %q: %w", id, err)
	}
	return v, nil
}

// snapshotID renders a snapshot id: the volume id and the commit id.
func snapshotID(volumeID string, c dotmesh.CommitID) string {
	return volumeID + "#" + string(c)
}

// parseSnapshotID splits a snapshot id; ok is false when it is not one of
// ours (which callers treat as "no such snapshot").
func parseSnapshotID(id string) (volumeID string, commit dotmesh.CommitID, ok bool) {
	i := strings.LastIndexByte(id, '#')
	if i < 0 {
		return "", "", false
	}
	volumeID, c := id[:i], id[i+1:]
	if dotmesh.ValidateID("commit", c, false) != nil {
		return "", "", false
	}
	if _, err := dotmesh.ParseVolumeName(volumeID); err != nil {
		return "", "", false
	}
	return volumeID, dotmesh.CommitID(c), true
}
