package server

import (
	"context"
	"net/http"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// optionalDot returns the named dot, or nil when the request names none;
// no namespace means the caller's own.
func optionalDot(p dotmesh.Principal, ns, name string) (*dotmesh.DotName, error) {
	if name == "" && ns == "" {
		return nil, nil
	}
	d, err := dotFor(p, ns, name)
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// checkGC: gc of one dot removes its history: its owner's; of the whole
// node (and its unreferenced data), the admin's.
func checkGC(s *server, r *http.Request, req any) ([]requirement, error) {
	g := req.(*api.GCRequest)
	dot, err := optionalDot(principal(r), g.Namespace, g.Name)
	if err != nil || dot == nil {
		return []requirement{{role: dotmesh.RoleAdmin}}, err
	}
	return []requirement{{dot: dot, role: dotmesh.RoleOwner}}, nil
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
	if !s.permit(w, r, &req) {
		return
	}
	dot, _ := optionalDot(principal(r), req.Namespace, req.Name) // checked by permit
	s.answerLong(w, r, http.StatusOK, func(ctx context.Context) (any, error) {
		return s.node.GC(ctx, dotmesh.GCOptions{Dot: dot, Keep: req.Keep, DryRun: req.DryRun})
	})
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
	dot, err := optionalDot(principal(r), req.Namespace, req.Name)
	if err != nil {
		writeError(w, err)
		return
	}
	s.answerLong(w, r, http.StatusOK, func(ctx context.Context) (any, error) {
		return s.node.Verify(ctx, dot)
	})
}
