package server

import (
	"net/http"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func (s *server) incoming(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	ts, err := s.node.TransferPeer().Incoming(r.Context())
	reply(w, http.StatusOK, ts, err)
}

func (s *server) abortIncoming(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	var req api.AbortIncomingRequest
	if err := readJSON(r, &req); err != nil {
		writeError(w, err)
		return
	}
	name := dotmesh.DotName{Namespace: req.Namespace, Name: req.Name}
	if name.Namespace == "" {
		name.Namespace = dotmesh.DefaultNamespace
	}
	res, err := s.node.TransferPeer().Abort(r.Context(), name, req.Branch)
	reply(w, http.StatusOK, res, err)
}
