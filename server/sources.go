package server

import (
	"net/http"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func (s *server) sourceRoutes() []route {
	return []route{
		{method: "GET", pattern: "/v1/dots/{ns}/{dot}/sources", access: accessDot, need: dotmesh.RoleRead, name: "list sources", h: s.sources},
		{method: "POST", pattern: "/v1/dots/{ns}/{dot}/sources", access: accessDot, need: dotmesh.RoleWrite, name: "add a source", audit: "source-add", h: s.addSource},
		{method: "DELETE", pattern: "/v1/dots/{ns}/{dot}/sources/{subdot}", access: accessDot, need: dotmesh.RoleWrite, name: "remove a source", audit: "source-remove", h: s.removeSource},
		{method: "POST", pattern: "/v1/dots/{ns}/{dot}/sources/{subdot}/lifecycle", access: accessDot, need: dotmesh.RoleWrite, name: "start or stop a source", audit: "source-lifecycle", h: s.sourceLifecycle},
	}
}

func (s *server) sources(w http.ResponseWriter, r *http.Request) {
	name, q, ok := dotQuery(w, r, "branch")
	if !ok {
		return
	}
	srcs, err := s.node.Sources().List(r.Context(), name, q.Get("branch"))
	reply(w, http.StatusOK, nonNil(srcs), err)
}

func (s *server) addSource(w http.ResponseWriter, r *http.Request) {
	name, req, ok := dotRequest[api.AddSourceRequest](w, r)
	if !ok {
		return
	}
	v := dotmesh.VolumeName{Dot: name, Branch: req.Branch, Subdot: req.Subdot}
	err := s.node.Sources().Add(r.Context(), v, dotmesh.SourceSpec{Kind: req.Kind, URL: req.URL, InitSchema: req.InitSchema})
	if err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

func (s *server) removeSource(w http.ResponseWriter, r *http.Request) {
	name, q, ok := dotQuery(w, r, "branch")
	if !ok {
		return
	}
	v := dotmesh.VolumeName{Dot: name, Branch: q.Get("branch"), Subdot: r.PathValue("subdot")}
	if err := s.node.Sources().Remove(r.Context(), v); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) sourceLifecycle(w http.ResponseWriter, r *http.Request) {
	name, req, ok := dotRequest[api.SourceLifecycleRequest](w, r)
	if !ok {
		return
	}
	v := dotmesh.VolumeName{Dot: name, Branch: req.Branch, Subdot: r.PathValue("subdot")}
	if err := s.node.Sources().Lifecycle(r.Context(), v, req.Action); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
