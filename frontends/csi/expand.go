package csi

import (
	"context"
	"errors"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// A volume's size is a bound on its branch's working state where the
// dot's backend can keep one (dotmesh.VolumeSizer: a zfs refquota, a
// btrfs qgroup limit); writing past it fails with EDQUOT or ENOSPC. The
// files backend keeps no bound: a volume there can fill its file system,
// the size in its record is what was asked for, and expansion is refused
// (not offered at all when files is the default backend).

// bound sets the size bound of a new volume's branch. On a backend that
// cannot bound sizes the size is only recorded.
func (s *Server) bound(ctx context.Context, dot dotmesh.DotName, branch string, size int64) error {
	if size == 0 {
		return nil
	}
	err := s.node.SetBranchSize(ctx, dot, branch, size)
	if errors.Is(err, dotmesh.ErrNotSupported) {
		return nil
	}
	return err
}

// wantedSize is the size a capacity range asks for: its floor, or its
// limit when it has no floor.
func wantedSize(r *csi.CapacityRange) (int64, error) {
	required, limit := r.GetRequiredBytes(), r.GetLimitBytes()
	if required < 0 || limit < 0 || (limit > 0 && limit < required) {
		return 0, invalid("capacity range [%d, %d] is not valid", required, limit)
	}
	if required == 0 {
		return limit, nil
	}
	return required, nil
}

// grow makes v's bound at least size. here is false when the branch's
// working state is on another node, which then applies it (NodeExpandVolume
// or NodePublishVolume). The bound never shrinks: a larger one is kept.
func (s *Server) grow(ctx context.Context, v dotmesh.VolumeName, size int64) (capacity int64, here bool, err error) {
	cur, err := s.node.BranchSize(ctx, v.Dot, v.Branch)
	switch {
	case errors.Is(err, dotmesh.ErrNotSupported):
		return 0, false, status.Errorf(codes.OutOfRange, "volume %s cannot be expanded: %v; it can use the free space of its file system", v, err)
	case errors.Is(err, dotmesh.ErrUnavailable):
		return size, false, nil
	case err != nil:
		return 0, false, grpcError(err)
	case cur >= size:
		return cur, true, nil // already as large (or larger)
	}
	if err := s.node.SetBranchSize(ctx, v.Dot, v.Branch, size); err != nil {
		if errors.Is(err, dotmesh.ErrUnavailable) {
			return size, false, nil // moved away meanwhile
		}
		return 0, false, grpcError(err)
	}
	s.log.Info("CSI volume expanded", "volume", v.String(), "bytes", size)
	return size, true, nil
}

// recordSize keeps a volume's new size in its record (volumes the plugin
// made; a static volume has none), so that a node the branch moves to
// later applies it.
func (s *Server) recordSize(ctx context.Context, id string, size int64) error {
	rec, err := s.volumeByID(ctx, id)
	if err != nil || rec == nil || rec.Capacity >= size {
		return err
	}
	rec.Capacity = size
	return putRecord(ctx, s.records, volumesPrefix+nameKey(rec.Name), rec)
}

// ControllerExpandVolume raises the volume's bound. Online: a quota grows
// under a running pod. When the branch's working state is on another
// node, the size is recorded and that node applies it (node expansion).
func (s *Server) ControllerExpandVolume(ctx context.Context, req *csi.ControllerExpandVolumeRequest) (*csi.ControllerExpandVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, invalid("volume id is required")
	}
	if req.GetCapacityRange() == nil {
		return nil, invalid("capacity range is required")
	}
	size, err := wantedSize(req.GetCapacityRange())
	if err != nil {
		return nil, err
	}
	if size == 0 {
		return nil, status.Error(codes.OutOfRange, "the capacity range asks for no size; give required_bytes")
	}
	if c := req.GetVolumeCapability(); c != nil {
		if err := checkCapabilities([]*csi.VolumeCapability{c}); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.liveVolume(ctx, req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	capacity, here, err := s.grow(ctx, v, size)
	if err != nil {
		return nil, err
	}
	if err := s.recordSize(ctx, req.GetVolumeId(), capacity); err != nil {
		return nil, grpcError(err)
	}
	return &csi.ControllerExpandVolumeResponse{CapacityBytes: capacity, NodeExpansionRequired: !here}, nil
}

// NodeExpandVolume applies the bound on the node with the working state:
// the range asked for, or else the size recorded by ControllerExpandVolume.
// Nothing needs resizing in the file system.
func (s *Server) NodeExpandVolume(ctx context.Context, req *csi.NodeExpandVolumeRequest) (*csi.NodeExpandVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, invalid("volume id is required")
	}
	if req.GetVolumePath() == "" {
		return nil, invalid("volume path is required")
	}
	size, err := wantedSize(req.GetCapacityRange())
	if err != nil {
		return nil, err
	}
	if c := req.GetVolumeCapability(); c != nil {
		if err := checkCapabilities([]*csi.VolumeCapability{c}); err != nil {
			return nil, err
		}
	}
	v, err := s.liveVolume(ctx, req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	if err := s.publishedAt(ctx, v, req.GetVolumeId(), req.GetVolumePath()); err != nil {
		return nil, err
	}
	if size == 0 {
		rec, err := s.volumeByID(ctx, req.GetVolumeId())
		if err != nil {
			return nil, grpcError(err)
		}
		if rec != nil {
			size = rec.Capacity
		}
	}
	if size == 0 {
		return nil, status.Errorf(codes.OutOfRange, "volume %s has no size to expand to; give required_bytes", v)
	}
	capacity, here, err := s.grow(ctx, v, size)
	if err != nil {
		return nil, err
	}
	if !here {
		return nil, status.Errorf(codes.FailedPrecondition, "the working state of volume %s is on another node; expand it there", v)
	}
	return &csi.NodeExpandVolumeResponse{CapacityBytes: capacity}, nil
}

// keepBound applies the recorded size of a volume published here when its
// branch has a smaller bound (it arrived from another node, or was made
// before the bound), so that the size Kubernetes knows holds here too.
func (s *Server) keepBound(ctx context.Context, id string, v dotmesh.VolumeName) {
	rec, err := s.volumeByID(ctx, id)
	if err != nil || rec == nil || rec.Capacity == 0 {
		return
	}
	if _, _, err := s.grow(ctx, v, rec.Capacity); err != nil && status.Code(err) != codes.OutOfRange {
		s.log.Warn("applying a CSI volume's size on publish", "volume", id, "err", err)
	}
}
