package csi

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// StorageClass parameters CreateVolume understands. Keys under
// csi.storage.k8s.io/ (set by the external-provisioner) are ignored.
const (
	ParamNamespace = "namespace" // dot namespace; default admin
	ParamSubdot    = "subdot"    // subdot the volume mounts; default __default__
)

// ControllerGetCapabilities lists what the controller does: expansion
// only where the default backend bounds sizes (README, "Kubernetes (CSI)",
// lists what is left out and why).
func (s *Server) ControllerGetCapabilities(context.Context, *csi.ControllerGetCapabilitiesRequest) (*csi.ControllerGetCapabilitiesResponse, error) {
	var caps []*csi.ControllerServiceCapability
	types := []csi.ControllerServiceCapability_RPC_Type{
		csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME,
		csi.ControllerServiceCapability_RPC_CREATE_DELETE_SNAPSHOT,
		csi.ControllerServiceCapability_RPC_LIST_SNAPSHOTS,
		csi.ControllerServiceCapability_RPC_GET_SNAPSHOT,
		csi.ControllerServiceCapability_RPC_CLONE_VOLUME,
		csi.ControllerServiceCapability_RPC_LIST_VOLUMES,
		csi.ControllerServiceCapability_RPC_GET_VOLUME,
		csi.ControllerServiceCapability_RPC_GET_CAPACITY,
		csi.ControllerServiceCapability_RPC_GET_VOLUME_HEALTH,
		csi.ControllerServiceCapability_RPC_LIST_VOLUME_HEALTH,
		csi.ControllerServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER,
	}
	if s.sizes {
		types = append(types, csi.ControllerServiceCapability_RPC_EXPAND_VOLUME)
	}
	for _, t := range types {
		caps = append(caps, &csi.ControllerServiceCapability{Type: &csi.ControllerServiceCapability_Rpc{Rpc: &csi.ControllerServiceCapability_RPC{Type: t}}})
	}
	return &csi.ControllerGetCapabilitiesResponse{Capabilities: caps}, nil
}

// checkCapabilities accepts filesystem volumes on one node: a dot's subdot
// is a directory on this node, so block access and multi-node modes are
// out of reach.
func checkCapabilities(caps []*csi.VolumeCapability) error {
	if len(caps) == 0 {
		return invalid("volume capabilities are required")
	}
	for _, c := range caps {
		if c.GetBlock() != nil {
			return invalid("block volumes are not supported: dotmesh volumes are directories (use volumeMode: Filesystem)")
		}
		if c.GetMount() == nil {
			return invalid("volume capability needs access type mount")
		}
		switch m := c.GetAccessMode().GetMode(); m {
		case csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER,
			csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY,
			csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER,
			csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER:
		default:
			return invalid("access mode %s is not supported: dots live on one node (use ReadWriteOnce or ReadWriteOncePod)", m)
		}
	}
	return nil
}

// volumeParams validates StorageClass parameters.
func volumeParams(p map[string]string) (ns, subdot string, err error) {
	ns = dotmesh.DefaultNamespace
	for k, v := range p {
		switch {
		case k == ParamNamespace:
			ns = v
		case k == ParamSubdot:
			subdot = v
		case strings.HasPrefix(k, "csi.storage.k8s.io/"):
		default:
			return "", "", invalid("unknown parameter %q; dotmesh.io understands %s and %s", k, ParamNamespace, ParamSubdot)
		}
	}
	if err := dotmesh.ValidateName("namespace", ns); err != nil {
		return "", "", invalid("parameter %s: %v", ParamNamespace, err)
	}
	if subdot != "" {
		if err := dotmesh.ValidateSubdot(subdot); err != nil {
			return "", "", invalid("parameter %s: %v", ParamSubdot, err)
		}
	}
	return ns, subdot, nil
}

// reachable says whether accessibility requirements allow this node (any
// node of a cluster reaches every volume).
func (s *Server) reachable(req *csi.TopologyRequirement) bool {
	if len(req.GetRequisite()) == 0 || s.cluster() != nil {
		return true
	}
	for _, t := range req.GetRequisite() {
		if v, ok := t.GetSegments()[TopologyKey]; ok && v == s.nodeID {
			return true
		}
	}
	return false
}

func sourceString(src *csi.VolumeContentSource) string {
	switch {
	case src.GetSnapshot() != nil:
		return "snapshot:" + src.GetSnapshot().GetSnapshotId()
	case src.GetVolume() != nil:
		return "volume:" + src.GetVolume().GetVolumeId()
	}
	return ""
}

func (s *Server) volumeResponse(r *volumeRecord, src *csi.VolumeContentSource) *csi.CreateVolumeResponse {
	return &csi.CreateVolumeResponse{Volume: s.volume(r, src)}
}

func (s *Server) volume(r *volumeRecord, src *csi.VolumeContentSource) *csi.Volume {
	return &csi.Volume{
		VolumeId:           r.ID,
		CapacityBytes:      r.Capacity,
		ContentSource:      src,
		AccessibleTopology: s.topology(),
	}
}

// CreateVolume makes a dot (namespace and subdot from the StorageClass
// parameters) and fills it from a snapshot or volume when asked.
func (s *Server) CreateVolume(ctx context.Context, req *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
	if req.GetName() == "" {
		return nil, invalid("volume name is required")
	}
	if err := checkCapabilities(req.GetVolumeCapabilities()); err != nil {
		return nil, err
	}
	required, limit := req.GetCapacityRange().GetRequiredBytes(), req.GetCapacityRange().GetLimitBytes()
	if required < 0 || limit < 0 || (limit > 0 && limit < required) {
		return nil, invalid("capacity range [%d, %d] is not valid", required, limit)
	}
	ns, subdot, err := volumeParams(req.GetParameters())
	if err != nil {
		return nil, err
	}
	if !s.reachable(req.GetAccessibilityRequirements()) {
		return nil, status.Errorf(codes.ResourceExhausted, "this plugin serves node %s (%s), which the volume's topology requirements exclude", s.nodeID, TopologyKey)
	}
	s.mu.Lock()
	defer s.mu.Unlock()

	src := req.GetVolumeContentSource()
	rec, err := s.volumeByName(ctx, req.GetName())
	if err != nil {
		return nil, grpcError(err)
	}
	if rec != nil && rec.State != stateCreating {
		switch {
		case rec.State == stateDeleted:
			return nil, status.Errorf(codes.AlreadyExists, "volume %s was deleted, but snapshots of it still keep dot %s; delete them first", req.GetName(), rec.dot())
		case rec.Capacity < required || (limit > 0 && rec.Capacity > limit):
			return nil, status.Errorf(codes.AlreadyExists, "volume %s exists with capacity %d, outside the requested range [%d, %d]", req.GetName(), rec.Capacity, required, limit)
		case !maps.Equal(rec.Parameters, req.GetParameters()):
			return nil, status.Errorf(codes.AlreadyExists, "volume %s exists with other parameters", req.GetName())
		case rec.Source != sourceString(src):
			return nil, status.Errorf(codes.AlreadyExists, "volume %s exists with another content source (%s)", req.GetName(), rec.Source)
		}
		return s.volumeResponse(rec, src), nil
	}

	fill, err := s.contentSource(ctx, src)
	if err != nil {
		return nil, err
	}
	dot := dotmesh.DotName{Namespace: ns, Name: dotName(req.GetName())}
	if rec != nil { // an earlier attempt died half-way: start again
		if err := s.node.DeleteDot(ctx, dot); err != nil && !errors.Is(err, dotmesh.ErrNotFound) {
			return nil, grpcError(fmt.Errorf("removing the half-made dot of an earlier attempt: %w", err))
		}
	}
	size := required
	if size == 0 {
		size = limit // a bound asked for without a floor
	}
	rec = &volumeRecord{
		Name: req.GetName(), Namespace: ns, Dot: dot.Name, Capacity: size,
		Parameters: req.GetParameters(), Source: sourceString(src), State: stateCreating,
		ID:      dotmesh.VolumeName{Dot: dot, Branch: dotmesh.DefaultBranch, Subdot: subdot}.String(),
		Created: timeNow(),
	}
	key := volumesPrefix + nameKey(req.GetName())
	// The record first: a crash after it leaves something a retry cleans up.
	if err := putRecord(ctx, s.records, key, rec); err != nil {
		return nil, grpcError(err)
	}
	if _, err := s.node.CreateDot(ctx, dot, dotmesh.CreateDotOptions{}); err != nil {
		_ = s.records.Delete(context.WithoutCancel(ctx), key)
		if errors.Is(err, dotmesh.ErrAlreadyExists) {
			return nil, status.Errorf(codes.AlreadyExists, "dot %s exists already and is not a CSI volume; name the volume differently or use it as a static PersistentVolume (volumeHandle %s)", dot, dot)
		}
		return nil, grpcError(err)
	}
	if fill != nil {
		if err := fill(ctx, dot); err != nil {
			s.forgetVolume(ctx, key, dot)
			return nil, grpcError(err)
		}
	}
	if err := s.bound(ctx, dot, dotmesh.DefaultBranch, size); err != nil {
		s.forgetVolume(ctx, key, dot)
		return nil, grpcError(err)
	}
	rec.State = stateReady
	if err := putRecord(ctx, s.records, key, rec); err != nil {
		return nil, grpcError(err)
	}
	s.log.Info("CSI volume created", "name", rec.Name, "id", rec.ID, "source", rec.Source)
	return s.volumeResponse(rec, src), nil
}

func (s *Server) forgetVolume(ctx context.Context, key string, dot dotmesh.DotName) {
	ctx = context.WithoutCancel(ctx)
	if err := s.node.DeleteDot(ctx, dot); err != nil && !errors.Is(err, dotmesh.ErrNotFound) {
		s.log.Warn("removing the dot of a failed CSI volume", "dot", dot.String(), "err", err)
		return // keep the record: a retry cleans up
	}
	_ = s.records.Delete(ctx, key)
}

// contentSource checks the source exists and returns what fills a new dot
// from it (nil for an empty volume).
func (s *Server) contentSource(ctx context.Context, src *csi.VolumeContentSource) (func(context.Context, dotmesh.DotName) error, error) {
	switch {
	case src == nil:
		return nil, nil
	case src.GetSnapshot() != nil:
		id := src.GetSnapshot().GetSnapshotId()
		snap, err := s.snapshotByID(ctx, id)
		if err != nil {
			return nil, grpcError(err)
		}
		if snap == nil {
			return nil, status.Errorf(codes.NotFound, "snapshot %q not found", id)
		}
		return func(ctx context.Context, dst dotmesh.DotName) error { return s.fillFromCommit(ctx, snap, dst) }, nil
	case src.GetVolume() != nil:
		id := src.GetVolume().GetVolumeId()
		v, err := s.liveVolume(ctx, id)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, dst dotmesh.DotName) error { return s.fillFromVolume(ctx, v, dst) }, nil
	}
	return nil, invalid("unknown volume content source")
}

// liveVolume resolves a volume id to an existing, not deleted volume.
func (s *Server) liveVolume(ctx context.Context, id string) (dotmesh.VolumeName, error) {
	v, err := parseVolumeID(id)
	if err != nil {
		return v, status.Errorf(codes.NotFound, "volume %q not found: %v", id, err)
	}
	if rec, err := s.volumeByID(ctx, id); err != nil {
		return v, grpcError(err)
	} else if rec != nil && rec.State != stateReady {
		return v, status.Errorf(codes.NotFound, "volume %q not found (%s)", id, rec.State)
	}
	if _, err := s.node.Dot(ctx, v.Dot); err != nil {
		if errors.Is(err, dotmesh.ErrNotFound) {
			return v, status.Errorf(codes.NotFound, "volume %q not found: %v", id, err)
		}
		return v, grpcError(err)
	}
	return v, nil
}

// ValidateVolumeCapabilities confirms the capabilities we support.
func (s *Server) ValidateVolumeCapabilities(ctx context.Context, req *csi.ValidateVolumeCapabilitiesRequest) (*csi.ValidateVolumeCapabilitiesResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, invalid("volume id is required")
	}
	if len(req.GetVolumeCapabilities()) == 0 {
		return nil, invalid("volume capabilities are required")
	}
	if _, err := s.liveVolume(ctx, req.GetVolumeId()); err != nil {
		return nil, err
	}
	if err := checkCapabilities(req.GetVolumeCapabilities()); err != nil {
		return &csi.ValidateVolumeCapabilitiesResponse{Message: status.Convert(err).Message()}, nil
	}
	return &csi.ValidateVolumeCapabilitiesResponse{Confirmed: &csi.ValidateVolumeCapabilitiesResponse_Confirmed{
		VolumeContext:      req.GetVolumeContext(),
		VolumeCapabilities: req.GetVolumeCapabilities(),
		Parameters:         req.GetParameters(),
	}}, nil
}

// DeleteVolume deletes the dot of a volume CreateVolume made. Volumes it
// did not make (static PersistentVolumes naming existing dots) are never
// deleted. While snapshots of the volume exist, the dot stays for them.
func (s *Server) DeleteVolume(ctx context.Context, req *csi.DeleteVolumeRequest) (*csi.DeleteVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, invalid("volume id is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, err := s.volumeByID(ctx, req.GetVolumeId())
	if err != nil {
		return nil, grpcError(err)
	}
	if rec == nil || rec.State == stateDeleted {
		return &csi.DeleteVolumeResponse{}, nil
	}
	snaps, err := s.snapshotsOf(ctx, rec.ID)
	if err != nil {
		return nil, grpcError(err)
	}
	key := volumesPrefix + nameKey(rec.Name)
	if len(snaps) > 0 {
		if ms, err := s.node.Mounts().List(ctx, rec.dot()); err == nil && len(ms) > 0 {
			return nil, status.Errorf(codes.FailedPrecondition, "volume %s is still mounted (%d mounts)", rec.ID, len(ms))
		}
		rec.State = stateDeleted
		if err := putRecord(ctx, s.records, key, rec); err != nil {
			return nil, grpcError(err)
		}
		s.log.Info("CSI volume deleted; its dot stays for its snapshots", "id", rec.ID, "snapshots", len(snaps))
		return &csi.DeleteVolumeResponse{}, nil
	}
	if err := s.node.DeleteDot(ctx, rec.dot()); err != nil && !errors.Is(err, dotmesh.ErrNotFound) {
		return nil, grpcError(err)
	}
	if err := s.records.Delete(ctx, key); err != nil {
		return nil, grpcError(err)
	}
	s.log.Info("CSI volume deleted", "id", rec.ID)
	return &csi.DeleteVolumeResponse{}, nil
}
