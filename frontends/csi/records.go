package csi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// RecordNamespace is the node's FrontendRecords namespace of CSI records.
// Before namespaces they were at csi/ in the registry; New moves them.
const RecordNamespace = "csi"

// Record keys. Volumes are keyed by a hash of their CSI name (CSI names
// are unique per plugin), snapshots by commit id.
const (
	volumesPrefix   = "volumes/"
	snapshotsPrefix = "snapshots/"
)

// State of a volume record.
const (
	stateCreating = "creating" // the dot may be half made; a retry redoes it
	stateReady    = "ready"
	// stateDeleted: Kubernetes deleted the volume, but snapshots of it
	// still live in its dot; the dot goes with the last of them.
	stateDeleted = "deleted"
)

// volumeRecord is what CreateVolume made, so that a retry with the same
// name finds it and one with other arguments is refused.
type volumeRecord struct {
	Name       string            `json:"name"`
	ID         string            `json:"id"`
	Namespace  string            `json:"namespace"`
	Dot        string            `json:"dot"`
	Capacity   int64             `json:"capacity"`
	Parameters map[string]string `json:"parameters,omitempty"`
	Source     string            `json:"source,omitempty"` // "snapshot:ID" or "volume:ID"
	State      string            `json:"state"`
	Created    time.Time         `json:"created"`
}

func (r *volumeRecord) dot() dotmesh.DotName {
	return dotmesh.DotName{Namespace: r.Namespace, Name: r.Dot}
}

// snapshotRecord is a commit that CreateSnapshot made.
type snapshotRecord struct {
	Name    string           `json:"name"`
	ID      string           `json:"id"`
	Volume  string           `json:"volume"` // source volume id
	Commit  dotmesh.CommitID `json:"commit"`
	Size    int64            `json:"size"`
	Created time.Time        `json:"created"`
}

func getRecord[T any](ctx context.Context, st *dotmesh.FrontendRecords, key string) (*T, error) {
	b, err := st.Get(ctx, key)
	if errors.Is(err, dotmesh.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("%w: CSI record %s: %w", dotmesh.ErrCorrupt, key, err)
	}
	return &v, nil
}

func listRecords[T any](ctx context.Context, st *dotmesh.FrontendRecords, prefix string) ([]*T, error) {
	kvs, err := st.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	out := make([]*T, 0, len(kvs))
	for _, kv := range kvs {
		var v T
		if err := json.Unmarshal(kv.Value, &v); err != nil {
			return nil, fmt.Errorf("%w: CSI record %s: %w", dotmesh.ErrCorrupt, kv.Key, err)
		}
		out = append(out, &v)
	}
	return out, nil
}

func putRecord(ctx context.Context, st *dotmesh.FrontendRecords, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return st.Put(ctx, key, b)
}

func (s *Server) volumeByName(ctx context.Context, name string) (*volumeRecord, error) {
	return getRecord[volumeRecord](ctx, s.records, volumesPrefix+nameKey(name))
}

func (s *Server) volumeByID(ctx context.Context, id string) (*volumeRecord, error) {
	all, err := listRecords[volumeRecord](ctx, s.records, volumesPrefix)
	if err != nil {
		return nil, err
	}
	for _, r := range all {
		if r.ID == id {
			return r, nil
		}
	}
	return nil, nil
}

func (s *Server) snapshots(ctx context.Context) ([]*snapshotRecord, error) {
	return listRecords[snapshotRecord](ctx, s.records, snapshotsPrefix)
}

func (s *Server) snapshotByID(ctx context.Context, id string) (*snapshotRecord, error) {
	_, c, ok := parseSnapshotID(id)
	if !ok {
		return nil, nil
	}
	r, err := getRecord[snapshotRecord](ctx, s.records, snapshotsPrefix+string(c))
	if err != nil || r == nil || r.ID != id {
		return nil, err
	}
	return r, nil
}
