package csi

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/status"

	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/frontends/internal/bindmount"
)

// Health (CSI 1.13's successor of volume conditions). What is checked is
// cheap, from the registry and the mount table: whether the volume's
// branch has its working state on this node, is being handed to another,
// or has an interrupted reset to finish; on the node, whether the
// published path is still mounted; for the storage, whether the default
// backend answers and has room left.

// lowSpace is the share of free space below which storage is degraded.
const lowSpace = 0.05

type health struct{ *csi.VolumeHealth }

func (h health) add(st csi.VolumeHealthErrorType, reason, format string, args ...any) {
	h.HealthStatuses = append(h.HealthStatuses, &csi.VolumeHealth_VolumeHealthEntry{Status: st, Reason: reason, Message: fmt.Sprintf(format, args...)})
}

// volumeHealth checks volume id; NotFound when it does not exist.
func (s *Server) volumeHealth(ctx context.Context, id string) (health, error) {
	v, err := s.liveVolume(ctx, id)
	if err != nil {
		return health{}, err
	}
	h := health{&csi.VolumeHealth{VolumeId: id}}
	d, err := s.node.Dot(ctx, v.Dot)
	if err != nil {
		return health{}, grpcError(err)
	}
	branch := v.Branch
	if branch == "" {
		branch = d.Current
	}
	bs, err := s.node.Branches(ctx, v.Dot)
	if err != nil {
		return health{}, grpcError(err)
	}
	var b *dotmesh.Branch
	for _, x := range bs {
		if x.Name == branch {
			b = x
		}
	}
	if b == nil {
		h.add(csi.VolumeHealthErrorType_INACCESSIBLE, "BranchMissing", "dot %s has no branch %s", v.Dot, branch)
		return h, nil
	}
	if here := s.node.Cluster().NodeID(); b.Master != here {
		h.add(csi.VolumeHealthErrorType_DEGRADED, "BranchOnOtherNode", "the working state of %s@%s is on node %s; publishing the volume here moves it", v.Dot, branch, b.Master)
	}
	if b.Moving != "" {
		h.add(csi.VolumeHealthErrorType_DEGRADED, "BranchMoving", "branch %s of %s is being handed to node %s", branch, v.Dot, b.Moving)
	}
	if b.Restoring != "" {
		h.add(csi.VolumeHealthErrorType_DEGRADED, "RestoreUnfinished", "a reset of %s@%s to commit %s was interrupted; the node finishes it when it starts, and refuses commits until then", v.Dot, branch, b.Restoring)
	}
	return h, nil
}

// ControllerGetVolumeHealth reports the health of one volume.
func (s *Server) ControllerGetVolumeHealth(ctx context.Context, req *csi.ControllerGetVolumeHealthRequest) (*csi.ControllerGetVolumeHealthResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, invalid("volume id is required")
	}
	h, err := s.volumeHealth(ctx, req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	return &csi.ControllerGetVolumeHealthResponse{VolumeHealth: h.VolumeHealth}, nil
}

// ControllerListVolumeHealth pages through the volumes as ListVolumes
// does and returns those with something wrong.
func (s *Server) ControllerListVolumeHealth(ctx context.Context, req *csi.ControllerListVolumeHealthRequest) (*csi.ControllerListVolumeHealthResponse, error) {
	recs, next, err := s.volumePage(ctx, req.GetMaxEntries(), req.GetStartingToken())
	if err != nil {
		return nil, err
	}
	resp := &csi.ControllerListVolumeHealthResponse{NextToken: next}
	for _, r := range recs {
		h, err := s.volumeHealth(ctx, r.ID)
		if err != nil {
			h = health{&csi.VolumeHealth{VolumeId: r.ID}}
			h.add(csi.VolumeHealthErrorType_INACCESSIBLE, "VolumeUnreadable", "%v", err)
		}
		if len(h.HealthStatuses) > 0 {
			resp.Entries = append(resp.Entries, h.VolumeHealth)
		}
	}
	return resp, nil
}

// NodeGetVolumeHealth reports the health of a volume on this node, and
// whether it is still mounted at the path it was published at.
func (s *Server) NodeGetVolumeHealth(ctx context.Context, req *csi.NodeGetVolumeHealthRequest) (*csi.NodeGetVolumeHealthResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, invalid("volume id is required")
	}
	h, err := s.volumeHealth(ctx, req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	if p := req.GetVolumePublishPath(); p != "" {
		p = filepath.Clean(p)
		v, _ := parseVolumeID(req.GetVolumeId())
		if err := s.publishedAt(ctx, v, req.GetVolumeId(), p); err != nil {
			h.add(csi.VolumeHealthErrorType_INACCESSIBLE, "NotPublished", "%s", status.Convert(err).Message())
		} else if info, err := bindmount.Stat(p); err != nil || !info.Mounted {
			h.add(csi.VolumeHealthErrorType_INACCESSIBLE, "MountMissing", "volume %s is published at %s, but nothing is mounted there any more", req.GetVolumeId(), p)
		}
	}
	return &csi.NodeGetVolumeHealthResponse{VolumeHealth: h.VolumeHealth}, nil
}

// NodeGetStorageHealth reports whether the default backend answers and
// has room left.
func (s *Server) NodeGetStorageHealth(ctx context.Context, _ *csi.NodeGetStorageHealthRequest) (*csi.NodeGetStorageHealthResponse, error) {
	resp := &csi.NodeGetStorageHealthResponse{}
	add := func(st csi.StorageHealthErrorType, reason, msg string) {
		resp.BackendHealth = append(resp.BackendHealth, &csi.NodeGetStorageHealthResponse_StorageBackendHealth{Status: st, Reason: reason, Message: msg})
	}
	c, err := s.node.Capacity(ctx, "")
	switch {
	case err != nil:
		add(csi.StorageHealthErrorType_STORAGE_UNREACHABLE, "BackendUnavailable", err.Error())
	case c.TotalBytes > 0 && float64(c.AvailableBytes) < lowSpace*float64(c.TotalBytes):
		add(csi.StorageHealthErrorType_STORAGE_DEGRADED, "LowSpace", fmt.Sprintf("the %s backend has %d of %d bytes left", c.Backend, c.AvailableBytes, c.TotalBytes))
	}
	return resp, nil
}
