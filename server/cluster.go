package server

import (
	"fmt"
	"net/http"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Cluster handlers: the hand-over of a branch between nodes (Release, the
// server side of dotmesh.Peer), take-over from a dead node, and what the
// cluster looks like. On a node outside a cluster they answer 501.

// clusterRoutes: only nodes call release, with the cluster's admin key
// (another user must not make a node give a branch away); a take-over
// loses another node's uncommitted changes: the admin's call too.
func (s *server) clusterRoutes() []route {
	return []route{
		{method: "POST", pattern: "/v1/dots/{ns}/{dot}/branches/{branch}/release", access: accessAdmin, name: "release", audit: "release", h: s.release},
		{method: "POST", pattern: "/v1/dots/{ns}/{dot}/branches/{branch}/take-over", access: accessAdmin, name: "take-over", audit: "take-over", h: s.takeOver},
		{method: "GET", pattern: "/v1/cluster/nodes", access: accessAdmin, name: "list cluster nodes", h: s.nodes},
		{method: "GET", pattern: "/v1/dots/{ns}/{dot}/replication", access: accessDot, need: dotmesh.RoleRead, name: "replication", h: s.replication},
	}
}

// parseRelease checks a release request: the branch from the path and
// the node it goes to, both names.
func parseRelease(branch string, req api.ReleaseRequest) error {
	if err := dotmesh.ValidateName("branch", branch); err != nil {
		return err
	}
	if req.To == "" {
		return fmt.Errorf("%w: release needs \"to\", the node the branch goes to", dotmesh.ErrInvalidArgument)
	}
	return dotmesh.ValidateName("node id", req.To)
}

func (s *server) release(w http.ResponseWriter, r *http.Request) {
	name, req, ok := dotRequest[api.ReleaseRequest](w, r)
	if !ok {
		return
	}
	branch := r.PathValue("branch")
	if err := parseRelease(branch, *req); err != nil {
		writeError(w, err)
		return
	}
	res, err := s.node.Cluster().Release(r.Context(), name, branch, req.To)
	reply(w, http.StatusOK, res, err)
}

func (s *server) takeOver(w http.ResponseWriter, r *http.Request) {
	name, _, ok := dotRequest[api.TakeOverRequest](w, r)
	if !ok {
		return
	}
	branch := r.PathValue("branch")
	if err := dotmesh.ValidateName("branch", branch); err != nil {
		writeError(w, err)
		return
	}
	res, err := s.node.Cluster().TakeOver(r.Context(), name, branch)
	reply(w, http.StatusOK, res, err)
}

func (s *server) nodes(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	me := s.node.Cluster().NodeID()
	if me == "" {
		writeError(w, fmt.Errorf("%w: this node is not part of a cluster (dm serve --store etcd makes one)", dotmesh.ErrNotSupported))
		return
	}
	ns, err := s.node.Cluster().Nodes(r.Context())
	reply(w, http.StatusOK, api.NodesResponse{Node: me, Nodes: nonNil(ns)}, err)
}

func (s *server) replication(w http.ResponseWriter, r *http.Request) {
	name, ok := dotName(w, r)
	if !ok || !noQuery(w, r) {
		return
	}
	reps, err := s.node.Cluster().Replication(r.Context(), name)
	reply(w, http.StatusOK, nonNil(reps), err)
}
