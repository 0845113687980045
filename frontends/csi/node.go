package csi

import (
	"context"
	"errors"
	"os"
	"path/filepath"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/frontends/internal/bindmount"
)

// NodeGetCapabilities: no staging (publish is a bind mount); stats,
// health, the single-writer mode, and expansion where sizes are bounded.
func (s *Server) NodeGetCapabilities(context.Context, *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	types := []csi.NodeServiceCapability_RPC_Type{
		csi.NodeServiceCapability_RPC_GET_VOLUME_STATS,
		csi.NodeServiceCapability_RPC_GET_VOLUME_HEALTH,
		csi.NodeServiceCapability_RPC_GET_STORAGE_HEALTH,
		csi.NodeServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER,
	}
	if s.sizes {
		types = append(types, csi.NodeServiceCapability_RPC_EXPAND_VOLUME)
	}
	resp := &csi.NodeGetCapabilitiesResponse{}
	for _, t := range types {
		resp.Capabilities = append(resp.Capabilities, &csi.NodeServiceCapability{Type: &csi.NodeServiceCapability_Rpc{Rpc: &csi.NodeServiceCapability_RPC{Type: t}}})
	}
	return resp, nil
}

// singleWriter refuses a second target for a volume published with
// SINGLE_NODE_SINGLE_WRITER (ReadWriteOncePod).
func (s *Server) singleWriter(ctx context.Context, id, target string, c *csi.VolumeCapability) error {
	if c.GetAccessMode().GetMode() != csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER {
		return nil
	}
	v, _ := parseVolumeID(id)
	ms, err := s.node.Mounts().List(ctx, v.Dot)
	if err != nil {
		return grpcError(err)
	}
	for _, m := range ms {
		if m.Consumer == Consumer && m.Volume == id && m.ID != target {
			return status.Errorf(codes.FailedPrecondition, "volume %s is single-writer and published at %s already", id, m.ID)
		}
	}
	return nil
}

// NodeGetInfo names the node and its topology segment.
func (s *Server) NodeGetInfo(context.Context, *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	return &csi.NodeGetInfoResponse{
		NodeId:             s.nodeID,
		AccessibleTopology: &csi.Topology{Segments: map[string]string{TopologyKey: s.nodeID}},
	}, nil
}

// podName takes what kubelet passes with podInfoOnMount, for `dm list`.
func podName(ctx map[string]string) string {
	ns, pod := ctx["csi.storage.k8s.io/pod.namespace"], ctx["csi.storage.k8s.io/pod.name"]
	if pod == "" {
		return ""
	}
	return "pod " + ns + "/" + pod
}

// NodePublishVolume moves the volume's branch here in a cluster
// (takeover.go), records the mount with the node (so `dm` refuses to
// reset data under the pod) and bind-mounts the subdot onto the target.
func (s *Server) NodePublishVolume(ctx context.Context, req *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, invalid("volume id is required")
	}
	if req.GetTargetPath() == "" {
		return nil, invalid("target path is required")
	}
	if req.GetVolumeCapability() == nil {
		return nil, invalid("volume capability is required")
	}
	if err := checkCapabilities([]*csi.VolumeCapability{req.GetVolumeCapability()}); err != nil {
		return nil, err
	}
	v, err := parseVolumeID(req.GetVolumeId())
	if err != nil {
		return nil, status.Errorf(codes.NotFound, "volume %q not found: %v", req.GetVolumeId(), err)
	}
	if err := s.moveHere(ctx, v); err != nil {
		return nil, err
	}
	target := filepath.Clean(req.GetTargetPath())
	ro := req.GetReadonly() || req.GetVolumeCapability().GetAccessMode().GetMode() == csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY

	info, err := bindmount.Stat(target)
	if err != nil {
		return nil, grpcError(err)
	}
	if info.Mounted {
		// Ours with the same volume and mode: a retry. Anything else is
		// somebody else's mount point.
		if s.hasMount(ctx, v.Dot, target) && info.ReadOnly == ro {
			return &csi.NodePublishVolumeResponse{}, nil
		}
		return nil, status.Errorf(codes.AlreadyExists, "target %s is mounted already, with another volume or mode", target)
	}
	if err := s.singleWriter(ctx, req.GetVolumeId(), target, req.GetVolumeCapability()); err != nil {
		return nil, err
	}
	m, err := s.node.Mounts().Mount(ctx, v, Consumer, target, podName(req.GetVolumeContext()))
	if err != nil {
		return nil, grpcError(err)
	}
	s.keepBound(ctx, req.GetVolumeId(), v)
	if err := bindmount.Bind(m.Path, target, ro); err != nil {
		if uerr := s.node.Mounts().Unmount(context.WithoutCancel(ctx), v.Dot, Consumer, target); uerr != nil {
			s.log.Warn("forgetting a failed CSI mount", "target", target, "err", uerr)
		}
		return nil, status.Error(codes.Internal, err.Error())
	}
	s.log.Info("CSI volume published", "volume", req.GetVolumeId(), "target", target, "readonly", ro)
	return &csi.NodePublishVolumeResponse{}, nil
}

func (s *Server) hasMount(ctx context.Context, dot dotmesh.DotName, target string) bool {
	ms, err := s.node.Mounts().List(ctx, dot)
	if err != nil {
		return false
	}
	for _, m := range ms {
		if m.Consumer == Consumer && m.ID == target {
			return true
		}
	}
	return false
}

// NodeUnpublishVolume unmounts the target, removes the directory (the
// spec has the plugin delete what it created) and releases the mount.
func (s *Server) NodeUnpublishVolume(ctx context.Context, req *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, invalid("volume id is required")
	}
	if req.GetTargetPath() == "" {
		return nil, invalid("target path is required")
	}
	target := filepath.Clean(req.GetTargetPath())
	if err := bindmount.Unmount(target); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	if err := os.Remove(target); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, status.Errorf(codes.Internal, "removing target %s: %v", target, err)
	}
	if v, err := parseVolumeID(req.GetVolumeId()); err == nil {
		if err := s.node.Mounts().Unmount(ctx, v.Dot, Consumer, target); err != nil {
			return nil, grpcError(err)
		}
	}
	s.log.Info("CSI volume unpublished", "volume", req.GetVolumeId(), "target", target)
	return &csi.NodeUnpublishVolumeResponse{}, nil
}
