package api

import "github.com/dotmesh-io/dotmesh/dotmesh"

// Cluster routes (nodes sharing an etcd registry, see dotmesh.ClusterOptions):
//
//	POST /v1/dots/{ns}/{dot}/branches/{branch}/release    ReleaseRequest -> dotmesh.ReleaseResult
//	     (node to node, admin key only: the master hands the branch over)
//	POST /v1/dots/{ns}/{dot}/branches/{branch}/take-over  TakeOverRequest -> dotmesh.TakeOverResult
//	GET  /v1/cluster/nodes                                 -> NodesResponse
//	GET  /v1/dots/{ns}/{dot}/replication                   -> []dotmesh.NodeReplication

// ReleaseRequest asks a branch's master to hand the branch to node To.
type ReleaseRequest struct {
	To string `json:"to"`
}

// TakeOverRequest makes the node answering the master of a branch whose
// master is not running. It has no fields; the body is {}.
type TakeOverRequest struct{}

// NodesResponse lists the running nodes of the cluster and names the one
// that answered (Node is empty on a node that is not in a cluster).
type NodesResponse struct {
	Node  string             `json:"node"`
	Nodes []dotmesh.NodeInfo `json:"nodes"`
}
