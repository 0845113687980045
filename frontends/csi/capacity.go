package csi

import (
	"context"

	"github.com/container-storage-interface/spec/lib/go/csi"
)

// GetCapacity reports the room the default backend has left (the one
// CreateVolume uses): files, the free bytes of the store's file system;
// zfs, the root dataset's available bytes; btrfs, its free estimate.
// Volumes this plugin cannot make here (unsupported capabilities, a
// topology without this node) get 0.
func (s *Server) GetCapacity(ctx context.Context, req *csi.GetCapacityRequest) (*csi.GetCapacityResponse, error) {
	if _, _, err := volumeParams(req.GetParameters()); err != nil {
		return nil, err
	}
	if len(req.GetVolumeCapabilities()) > 0 && checkCapabilities(req.GetVolumeCapabilities()) != nil {
		return &csi.GetCapacityResponse{}, nil
	}
	if t := req.GetAccessibleTopology(); t != nil && !s.reachable(&csi.TopologyRequirement{Requisite: []*csi.Topology{t}}) {
		return &csi.GetCapacityResponse{}, nil
	}
	c, err := s.node.Capacity(ctx, "")
	if err != nil {
		return nil, grpcError(err)
	}
	return &csi.GetCapacityResponse{AvailableCapacity: max(c.AvailableBytes, 0)}, nil
}
