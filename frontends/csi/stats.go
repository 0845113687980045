package csi

import (
	"context"
	"errors"
	"os"
	"path/filepath"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// publishedAt checks that path is where volume id (v) is published on this
// node: NotFound otherwise, as the spec asks of stats and expansion.
func (s *Server) publishedAt(ctx context.Context, v dotmesh.VolumeName, id, path string) error {
	path = filepath.Clean(path)
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return status.Errorf(codes.NotFound, "volume path %s does not exist", path)
		}
		return status.Errorf(codes.Internal, "volume path %s: %v", path, err)
	}
	ms, err := s.node.Mounts().List(ctx, v.Dot)
	if err != nil {
		return grpcError(err)
	}
	for _, m := range ms {
		if m.Consumer == Consumer && m.ID == path && m.Volume == id {
			return nil
		}
	}
	return status.Errorf(codes.NotFound, "volume %s is not published at %s", id, path)
}

// NodeGetVolumeStats reports the bytes and inodes of the file system
// under the published path (statfs). On zfs the refquota makes these the
// volume's own; on btrfs and files they are the file system's, the total
// cut to the volume's bound where it has one. Health is
// NodeGetVolumeHealth's.
func (s *Server) NodeGetVolumeStats(ctx context.Context, req *csi.NodeGetVolumeStatsRequest) (*csi.NodeGetVolumeStatsResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, invalid("volume id is required")
	}
	if req.GetVolumePath() == "" {
		return nil, invalid("volume path is required")
	}
	v, err := s.liveVolume(ctx, req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	if err := s.publishedAt(ctx, v, req.GetVolumeId(), req.GetVolumePath()); err != nil {
		return nil, err
	}
	var st unix.Statfs_t
	if err := unix.Statfs(req.GetVolumePath(), &st); err != nil {
		return nil, status.Errorf(codes.Internal, "reading the usage of %s: %v", req.GetVolumePath(), err)
	}
	bs := int64(st.Bsize) //nolint:unconvert // int32 on some platforms
	total, avail, used := int64(st.Blocks)*bs, int64(st.Bavail)*bs, int64(st.Blocks-st.Bfree)*bs
	if bound, err := s.node.BranchSize(ctx, v.Dot, v.Branch); err == nil && bound > 0 && bound < total {
		total, avail = bound, min(avail, bound)
	}
	return &csi.NodeGetVolumeStatsResponse{Usage: []*csi.VolumeUsage{
		{Unit: csi.VolumeUsage_BYTES, Total: total, Available: avail, Used: min(used, total)},
		{Unit: csi.VolumeUsage_INODES, Total: int64(st.Files), Available: int64(min(st.Ffree, st.Files)), Used: int64(st.Files - min(st.Ffree, st.Files))},
	}}, nil
}
