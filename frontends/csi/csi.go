// Package csi serves a dotmesh Node as a Kubernetes CSI plugin (identity,
// controller and node services on one unix socket).
//
// A volume is a subdot of a dot; a snapshot is a commit. On a single node
// dots are local to it, so every volume carries the topology segment
// TopologyKey=NodeID; in a cluster a volume is usable on every node and its
// branch moves to the node that publishes it (takeover.go). The node
// service bind-mounts subdot directories.
//
// Ids (both opaque to Kubernetes, but readable by people and by `dm`):
//
//	volume id:   [namespace/]dot@branch[.subdot]   the shared volume syntax
//	snapshot id: <volume id>#<commit id>
//
// Any volume id in the shared syntax works for NodePublishVolume, so a
// statically provisioned PersistentVolume can name an existing dot.
//
// A volume's size is a bound on its branch (dotmesh.VolumeSizer: zfs
// refquota, btrfs qgroup limit) where the backend keeps one, and only
// recorded on the files backend; expansion is offered only where the
// default backend bounds sizes (expand.go). Capacity, stats and health
// are capacity.go, stats.go and health.go.
package csi

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"

	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/internal/unixsock"
)

// DriverName is the CSI driver name (the CSIDriver object and
// StorageClass provisioner use it).
const DriverName = "dotmesh.io"

// TopologyKey is the topology segment that pins a volume to its node.
const TopologyKey = "dotmesh.io/node"

// Consumer is the Mount.Consumer of CSI mounts.
const Consumer = "csi"

// Node is what the plugin needs of the engine (a *dotmesh.Node). CSI keeps
// its volume and snapshot records in the node's FrontendRecords, so they
// live as long as the dots.
type Node interface {
	CreateDot(ctx context.Context, name dotmesh.DotName, opts dotmesh.CreateDotOptions) (*dotmesh.Dot, error)
	DeleteDot(ctx context.Context, name dotmesh.DotName) error
	Dot(ctx context.Context, name dotmesh.DotName) (*dotmesh.Dot, error)
	CreateBranch(ctx context.Context, name dotmesh.DotName, newName, from string) (*dotmesh.Branch, error)
	DeleteBranch(ctx context.Context, name dotmesh.DotName, branch string) error
	Commit(ctx context.Context, name dotmesh.DotName, branch string, opts dotmesh.CommitOptions) (*dotmesh.Commit, error)
	Mounts() *dotmesh.Mounts
	SubdotPath(ctx context.Context, v dotmesh.VolumeName) (string, error)
	FrontendRecords(namespace string) (*dotmesh.FrontendRecords, error)
	sizing
}

// sizing is what capacity, expansion and health need of the engine.
type sizing interface {
	Branches(ctx context.Context, name dotmesh.DotName) ([]*dotmesh.Branch, error)
	Cluster() *dotmesh.Cluster
	Capacity(ctx context.Context, backend string) (dotmesh.Capacity, error)
	BranchSize(ctx context.Context, name dotmesh.DotName, branch string) (int64, error)
	SetBranchSize(ctx context.Context, name dotmesh.DotName, branch string, bytes int64) error
}

// Options configure a Server.
type Options struct {
	Node Node
	// NodeID names this node in topology; empty means the host name.
	NodeID  string
	Version string
	Logger  *slog.Logger
}

// Server implements the CSI identity, controller and node services.
type Server struct {
	csi.UnimplementedIdentityServer
	csi.UnimplementedControllerServer
	csi.UnimplementedNodeServer

	node    Node
	records *dotmesh.FrontendRecords
	nodeID  string
	version string
	log     *slog.Logger
	// sizes: the default backend bounds volume sizes (zfs, btrfs), so
	// the plugin offers expansion.
	sizes bool

	// mu serialises controller calls: idempotency checks and the steps
	// of a create must not interleave.
	mu sync.Mutex
}

// New checks the options and returns a Server.
func New(opts Options) (*Server, error) {
	if opts.Node == nil {
		return nil, fmt.Errorf("%w: csi.Options needs Node", dotmesh.ErrInvalidArgument)
	}
	recs, err := opts.Node.FrontendRecords(RecordNamespace)
	if err != nil {
		return nil, err
	}
	s := &Server{node: opts.Node, records: recs, nodeID: opts.NodeID, version: opts.Version, log: opts.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if moved, err := recs.ImportLegacy(ctx); err != nil {
		return nil, fmt.Errorf("moving the CSI records of an older version: %w", err)
	} else if moved > 0 {
		s.log.Info("moved the CSI records of an older version into their namespace", "records", moved)
	}
	if c, err := opts.Node.Capacity(ctx, ""); err == nil {
		s.sizes = c.SizeLimits
	} else {
		s.log.Warn("the CSI plugin cannot tell the default backend's capacity", "err", err)
	}
	if s.version == "" {
		s.version = "dev"
	}
	if s.nodeID == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("finding the node id (host name): %w", err)
		}
		s.nodeID = h
	}
	return s, nil
}

// Listen creates the unix socket path with mode 0600 (kubelet and the CSI
// sidecars run as root). A stale socket (nobody listens) is replaced; a
// live one is refused, naming --csi-socket. Serve removes it at the end.
func (s *Server) Listen(path string) (net.Listener, error) {
	return unixsock.Listen(path, 0o600, 0o755, "the CSI socket", "--csi-socket")
}

// Serve serves CSI on ln until ctx ends, then stops gracefully.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	g := grpc.NewServer(grpc.UnaryInterceptor(s.logCalls))
	csi.RegisterIdentityServer(g, s)
	csi.RegisterControllerServer(g, s)
	csi.RegisterNodeServer(g, s)
	served := make(chan error, 1)
	go func() { served <- g.Serve(ln) }()
	where := ln.Addr().String()
	if sock, ok := ln.(*unixsock.Socket); ok {
		where = sock.Path()
		defer sock.Close() // removes the socket and lets go of its lock
	}
	s.log.Info("CSI plugin serving", "socket", where, "driver", DriverName, "node", s.nodeID)
	select {
	case err := <-served:
		return fmt.Errorf("serving CSI: %w", err)
	case <-ctx.Done():
	}
	g.GracefulStop()
	<-served
	return nil
}

// ListenAndServe is Listen then Serve.
func (s *Server) ListenAndServe(ctx context.Context, path string) error {
	ln, err := s.Listen(path)
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln)
}

// logCalls logs every call with its outcome; failures at warn level.
func (s *Server) logCalls(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	resp, err := h(ctx, req)
	if err != nil {
		s.log.Warn("CSI call failed", "method", info.FullMethod, "err", err)
	} else {
		s.log.Debug("CSI call", "method", info.FullMethod)
	}
	return resp, err
}

// GetPluginInfo names the driver.
func (s *Server) GetPluginInfo(context.Context, *csi.GetPluginInfoRequest) (*csi.GetPluginInfoResponse, error) {
	return &csi.GetPluginInfoResponse{Name: DriverName, VendorVersion: s.version}, nil
}

// GetPluginCapabilities: a controller service, volumes bound to nodes,
// and online expansion where the default backend bounds sizes.
func (s *Server) GetPluginCapabilities(context.Context, *csi.GetPluginCapabilitiesRequest) (*csi.GetPluginCapabilitiesResponse, error) {
	svc := func(t csi.PluginCapability_Service_Type) *csi.PluginCapability {
		return &csi.PluginCapability{Type: &csi.PluginCapability_Service_{Service: &csi.PluginCapability_Service{Type: t}}}
	}
	caps := []*csi.PluginCapability{
		svc(csi.PluginCapability_Service_CONTROLLER_SERVICE),
		svc(csi.PluginCapability_Service_VOLUME_ACCESSIBILITY_CONSTRAINTS),
	}
	if s.sizes { // a quota grows under a running pod
		caps = append(caps, &csi.PluginCapability{Type: &csi.PluginCapability_VolumeExpansion_{
			VolumeExpansion: &csi.PluginCapability_VolumeExpansion{Type: csi.PluginCapability_VolumeExpansion_ONLINE}}})
	}
	return &csi.GetPluginCapabilitiesResponse{Capabilities: caps}, nil
}

// Probe: the plugin is ready as soon as it serves.
func (s *Server) Probe(context.Context, *csi.ProbeRequest) (*csi.ProbeResponse, error) {
	return &csi.ProbeResponse{}, nil
}
