package server

import (
	"net/http"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// optionalDot returns the named dot, or nil when the request names none.
func optionalDot(ns, name string) (*dotmesh.DotName, error) {
	if name == "" && ns == "" {
		return nil, nil
	}
	d := dotmesh.DotName{Namespace: ns, Name: name}
	if d.Namespace == "" {
		d.Namespace = dotmesh.DefaultNamespace
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return &d, nil
}

func (s *server) gc(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	var req api.GCRequest
	if err := readJSON(r, &req); err != nil {
		writeError(w, err)
		return
	}
	dot, err := optionalDot(req.Namespace, req.Name)
	if err != nil {
		writeError(w, err)
		return
	}
	res, err := s.node.GC(r.Context(), dotmesh.GCOptions{Dot: dot, Keep: req.Keep, DryRun: req.DryRun})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *server) verify(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	var req api.VerifyRequest
	if err := readJSON(r, &req); err != nil {
		writeError(w, err)
		return
	}
	dot, err := optionalDot(req.Namespace, req.Name)
	if err != nil {
		writeError(w, err)
		return
	}
	res, err := s.node.Verify(r.Context(), dot)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
