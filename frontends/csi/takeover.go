package csi

import (
	"context"
	"errors"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Cluster mode. When the node is one of several sharing an etcd registry,
// every node lists every dot and holds every commit, and a branch's
// working state moves to the node that uses it. So a volume is usable from
// any node: volumes carry no accessible topology (Kubernetes may schedule
// their pods anywhere), and NodePublishVolume first moves the volume's
// branch to this node. The old master commits what was uncommitted there
// ("Automatic commit while moving from A to B"), so the pod here sees the
// data the pod there last wrote; while a pod there still has the volume
// mounted, the move is refused and kubelet retries.

// clusterNode is what a clustered engine offers (a *dotmesh.Node). A Node
// without it, or one outside a cluster, keeps volumes on their node.
type clusterNode interface {
	Cluster() *dotmesh.Cluster
}

// cluster returns the engine's cluster handle, or nil on a single node.
func (s *Server) cluster() *dotmesh.Cluster {
	cn, ok := s.node.(clusterNode)
	if !ok {
		return nil
	}
	c := cn.Cluster()
	if c == nil || c.NodeID() == "" {
		return nil
	}
	return c
}

// topology is where a new volume is accessible: this node only, or, in a
// cluster, anywhere (none given).
func (s *Server) topology() []*csi.Topology {
	if s.cluster() != nil {
		return nil
	}
	return []*csi.Topology{{Segments: map[string]string{TopologyKey: s.nodeID}}}
}

// moveHere makes this node the master of the volume's branch before it is
// published here; a no-op on a single node. Errors keep their gRPC codes:
// a master that is down or unreachable is Unavailable, a pod still using
// the volume on its master FailedPrecondition, a move racing another node
// Aborted; kubelet retries all of them.
func (s *Server) moveHere(ctx context.Context, v dotmesh.VolumeName) error {
	c := s.cluster()
	if c == nil {
		return nil
	}
	from, err := c.MoveHere(ctx, v.Dot, v.Branch)
	if err != nil {
		if md, ok := errors.AsType[*dotmesh.MasterDownError](err); ok {
			// Only a person may decide to drop the dead node's uncommitted
			// changes.
			return status.Errorf(codes.Unavailable, "volume %s: %v (on this node: dm dot take-over %s/%s %s)", v, err, md.Dot.Namespace, md.Dot.Name, md.Branch)
		}
		gs, _ := status.FromError(grpcError(err))
		return status.Errorf(gs.Code(), "moving volume %s to node %s: %s", v, c.NodeID(), gs.Message())
	}
	if from != "" {
		s.log.InfoContext(ctx, "CSI volume moved here for publishing", "volume", v.String(), "from", from, "node", c.NodeID())
	}
	return nil
}
