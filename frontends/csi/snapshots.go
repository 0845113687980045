package csi

import (
	"context"
	"errors"
	"sort"
	"strconv"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// SnapshotMetadataKey is the commit metadata key holding the CSI snapshot
// name, so `dm log` shows which commits Kubernetes made.
const SnapshotMetadataKey = "csi-snapshot"

func (r *snapshotRecord) csi() *csi.Snapshot {
	return &csi.Snapshot{
		SnapshotId:     r.ID,
		SourceVolumeId: r.Volume,
		SizeBytes:      r.Size,
		CreationTime:   timestamppb.New(r.Created),
		ReadyToUse:     true, // a commit is complete when Commit returns
	}
}

func (s *Server) snapshotsOf(ctx context.Context, volumeID string) ([]*snapshotRecord, error) {
	all, err := s.snapshots(ctx)
	if err != nil {
		return nil, err
	}
	var out []*snapshotRecord
	for _, r := range all {
		if r.Volume == volumeID {
			out = append(out, r)
		}
	}
	return out, nil
}

// CreateSnapshot commits the volume's branch: every subdot of the dot, at
// once.
func (s *Server) CreateSnapshot(ctx context.Context, req *csi.CreateSnapshotRequest) (*csi.CreateSnapshotResponse, error) {
	if req.GetName() == "" {
		return nil, invalid("snapshot name is required")
	}
	if req.GetSourceVolumeId() == "" {
		return nil, invalid("source volume id is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	all, err := s.snapshots(ctx)
	if err != nil {
		return nil, grpcError(err)
	}
	for _, r := range all {
		if r.Name != req.GetName() {
			continue
		}
		if r.Volume != req.GetSourceVolumeId() {
			return nil, status.Errorf(codes.AlreadyExists, "snapshot %s exists already, of volume %s", r.Name, r.Volume)
		}
		return &csi.CreateSnapshotResponse{Snapshot: r.csi()}, nil
	}
	v, err := s.liveVolume(ctx, req.GetSourceVolumeId())
	if err != nil {
		return nil, err
	}
	c, err := s.node.Commit(ctx, v.Dot, v.Branch, dotmesh.CommitOptions{
		Message:  "CSI snapshot " + req.GetName(),
		Author:   "csi",
		Metadata: map[string]string{SnapshotMetadataKey: req.GetName()},
		// A snapshot of an unchanged volume is still a snapshot.
		AllowEmpty: true,
	})
	if err != nil {
		return nil, grpcError(err)
	}
	r := &snapshotRecord{
		Name: req.GetName(), ID: snapshotID(req.GetSourceVolumeId(), c.ID),
		Volume: req.GetSourceVolumeId(), Commit: c.ID, Created: c.Time,
	}
	if vr, err := s.volumeByID(ctx, r.Volume); err == nil && vr != nil {
		r.Size = vr.Capacity
	}
	if err := putRecord(ctx, s.records, snapshotsPrefix+string(c.ID), r); err != nil {
		return nil, grpcError(err)
	}
	s.log.Info("CSI snapshot created", "name", r.Name, "id", r.ID)
	return &csi.CreateSnapshotResponse{Snapshot: r.csi()}, nil
}

// DeleteSnapshot forgets a snapshot. Its commit stays in the dot's history
// (history is immutable; `dm gc --keep N` prunes it) until the dot goes:
// with the last snapshot of a deleted volume.
func (s *Server) DeleteSnapshot(ctx context.Context, req *csi.DeleteSnapshotRequest) (*csi.DeleteSnapshotResponse, error) {
	if req.GetSnapshotId() == "" {
		return nil, invalid("snapshot id is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.snapshotByID(ctx, req.GetSnapshotId())
	if err != nil {
		return nil, grpcError(err)
	}
	if r == nil {
		return &csi.DeleteSnapshotResponse{}, nil
	}
	if err := s.records.Delete(ctx, snapshotsPrefix+string(r.Commit)); err != nil {
		return nil, grpcError(err)
	}
	if err := s.reap(ctx, r.Volume); err != nil {
		s.log.Warn("removing the dot of a deleted volume after its last snapshot", "volume", r.Volume, "err", err)
	}
	return &csi.DeleteSnapshotResponse{}, nil
}

// reap deletes the dot of a deleted volume once no snapshot needs it.
func (s *Server) reap(ctx context.Context, volumeID string) error {
	vr, err := s.volumeByID(ctx, volumeID)
	if err != nil || vr == nil || vr.State != stateDeleted {
		return err
	}
	if left, err := s.snapshotsOf(ctx, volumeID); err != nil || len(left) > 0 {
		return err
	}
	if err := s.node.DeleteDot(ctx, vr.dot()); err != nil && !errors.Is(err, dotmesh.ErrNotFound) {
		return err
	}
	return s.records.Delete(ctx, volumesPrefix+nameKey(vr.Name))
}

// ListSnapshots pages through snapshots, oldest first; the token is the
// offset of the next entry.
func (s *Server) ListSnapshots(ctx context.Context, req *csi.ListSnapshotsRequest) (*csi.ListSnapshotsResponse, error) {
	if req.GetMaxEntries() < 0 {
		return nil, invalid("max_entries must not be negative")
	}
	all, err := s.snapshots(ctx)
	if err != nil {
		return nil, grpcError(err)
	}
	var list []*snapshotRecord
	for _, r := range all {
		if (req.GetSnapshotId() == "" || r.ID == req.GetSnapshotId()) &&
			(req.GetSourceVolumeId() == "" || r.Volume == req.GetSourceVolumeId()) {
			list = append(list, r)
		}
	}
	sort.Slice(list, func(i, j int) bool {
		if !list[i].Created.Equal(list[j].Created) {
			return list[i].Created.Before(list[j].Created)
		}
		return list[i].ID < list[j].ID
	})
	start := 0
	if t := req.GetStartingToken(); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 || n > len(list) {
			return nil, status.Errorf(codes.Aborted, "starting token %q is not valid (any more); list again from the start", t)
		}
		start = n
	}
	end := len(list)
	if m := int(req.GetMaxEntries()); m > 0 && start+m < end {
		end = start + m
	}
	resp := &csi.ListSnapshotsResponse{}
	for _, r := range list[start:end] {
		resp.Entries = append(resp.Entries, &csi.ListSnapshotsResponse_Entry{Snapshot: r.csi()})
	}
	if end < len(list) {
		resp.NextToken = strconv.Itoa(end)
	}
	return resp, nil
}
