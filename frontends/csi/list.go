package csi

import (
	"context"
	"encoding/hex"
	"slices"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// contentSource rebuilds the content source a volume was made from.
func (r *volumeRecord) contentSource() *csi.VolumeContentSource {
	kind, id, _ := strings.Cut(r.Source, ":")
	switch kind {
	case "snapshot":
		return &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: id}}}
	case "volume":
		return &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: id}}}
	}
	return nil
}

// readyVolumes lists the volumes CreateVolume made and DeleteVolume has
// not deleted, in the order of their record keys.
func (s *Server) readyVolumes(ctx context.Context) ([]*volumeRecord, error) {
	all, err := listRecords[volumeRecord](ctx, s.records, volumesPrefix)
	if err != nil {
		return nil, err
	}
	all = slices.DeleteFunc(all, func(r *volumeRecord) bool { return r.State != stateReady })
	sortRecs(all)
	return all, nil
}

func sortRecs(recs []*volumeRecord) {
	slices.SortFunc(recs, func(a, b *volumeRecord) int { return strings.Compare(nameKey(a.Name), nameKey(b.Name)) })
}

// page cuts a page of at most max entries (0: all) of recs, sorted by
// record key, starting after token: the key of the last entry of the
// previous page. A key token stays good when volumes come and go between
// pages (none is listed twice). It returns the token of the next page.
func page(recs []*volumeRecord, max int32, token string) ([]*volumeRecord, string, error) {
	if max < 0 {
		return nil, "", invalid("max_entries must not be negative")
	}
	if token != "" {
		if b, err := hex.DecodeString(token); err != nil || len(b) != 16 || hex.EncodeToString(b) != token {
			return nil, "", status.Errorf(codes.Aborted, "starting token %q is not one this plugin gave; list again from the start", token)
		}
		i, _ := slices.BinarySearchFunc(recs, token, func(r *volumeRecord, t string) int {
			if k := nameKey(r.Name); k <= t {
				return -1
			}
			return 1
		})
		recs = recs[i:]
	}
	if max == 0 || int(max) >= len(recs) {
		return recs, "", nil
	}
	return recs[:max], nameKey(recs[max-1].Name), nil
}

// volumePage is one page of readyVolumes (see page).
func (s *Server) volumePage(ctx context.Context, max int32, token string) ([]*volumeRecord, string, error) {
	recs, err := s.readyVolumes(ctx)
	if err != nil {
		return nil, "", grpcError(err)
	}
	return page(recs, max, token)
}

// ListVolumes pages through the volumes CreateVolume made (static
// volumes naming existing dots are Kubernetes' own).
func (s *Server) ListVolumes(ctx context.Context, req *csi.ListVolumesRequest) (*csi.ListVolumesResponse, error) {
	recs, next, err := s.volumePage(ctx, req.GetMaxEntries(), req.GetStartingToken())
	if err != nil {
		return nil, err
	}
	resp := &csi.ListVolumesResponse{NextToken: next}
	for _, r := range recs {
		resp.Entries = append(resp.Entries, &csi.ListVolumesResponse_Entry{Volume: s.volume(r, r.contentSource())})
	}
	return resp, nil
}

// ControllerGetVolume describes one volume. Published nodes are not
// reported: there is no controller publish (see ControllerGetCapabilities).
func (s *Server) ControllerGetVolume(ctx context.Context, req *csi.ControllerGetVolumeRequest) (*csi.ControllerGetVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, invalid("volume id is required")
	}
	if _, err := s.liveVolume(ctx, req.GetVolumeId()); err != nil {
		return nil, err
	}
	rec, err := s.volumeByID(ctx, req.GetVolumeId())
	if err != nil {
		return nil, grpcError(err)
	}
	if rec == nil { // a static volume: an existing dot
		rec = &volumeRecord{ID: req.GetVolumeId()}
		v, _ := parseVolumeID(req.GetVolumeId())
		if size, err := s.node.BranchSize(ctx, v.Dot, v.Branch); err == nil {
			rec.Capacity = size
		}
	}
	return &csi.ControllerGetVolumeResponse{Volume: s.volume(rec, rec.contentSource()), Status: &csi.ControllerGetVolumeResponse_VolumeStatus{}}, nil
}

// GetSnapshot describes one snapshot.
func (s *Server) GetSnapshot(ctx context.Context, req *csi.GetSnapshotRequest) (*csi.GetSnapshotResponse, error) {
	if req.GetSnapshotId() == "" {
		return nil, invalid("snapshot id is required")
	}
	r, err := s.snapshotByID(ctx, req.GetSnapshotId())
	if err != nil {
		return nil, grpcError(err)
	}
	if r == nil {
		return nil, status.Errorf(codes.NotFound, "snapshot %q not found", req.GetSnapshotId())
	}
	return &csi.GetSnapshotResponse{Snapshot: r.csi()}, nil
}
