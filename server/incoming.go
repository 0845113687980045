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
	ts, err := s.readableIncoming(r)
	reply(w, http.StatusOK, ts, err)
}

// readableIncoming is the node's incoming transfers the caller may read.
func (s *server) readableIncoming(r *http.Request) ([]dotmesh.IncomingTransfer, error) {
	ts, err := s.node.TransferPeer().Incoming(r.Context())
	if err != nil {
		return nil, err
	}
	return readable(r.Context(), s, principal(r), ts, func(t dotmesh.IncomingTransfer) dotmesh.DotName {
		return dotmesh.DotName{Namespace: t.Namespace, Name: t.Name}
	})
}

func abortTarget(p dotmesh.Principal, req *api.AbortIncomingRequest) (dotmesh.DotName, error) {
	return dotFor(p, req.Namespace, req.Name)
}

// checkAbortIncoming: discarding what a push into a dot staged needs what
// the push needed, write; other users' dots, an admin.
func checkAbortIncoming(s *server, r *http.Request, req any) ([]requirement, error) {
	name, err := abortTarget(principal(r), req.(*api.AbortIncomingRequest))
	if err != nil {
		return nil, err
	}
	return []requirement{{dot: &name, role: dotmesh.RoleWrite}}, nil
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
	if !s.permit(w, r, &req) {
		return
	}
	name, _ := abortTarget(principal(r), &req) // checked by permit
	res, err := s.node.TransferPeer().Abort(r.Context(), name, req.Branch)
	reply(w, http.StatusOK, res, err)
}
