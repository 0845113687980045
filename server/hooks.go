package server

import (
	"net/http"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// hookRoutes: a hook runs a command (or opens a connection) on the node,
// as the node's user, so setting one is the node admin's: a dot's owner
// owns its data, not the machine. Reading them is the admin's too, as a
// hook's URL may hold a password.
func (s *server) hookRoutes() []route {
	const dot = "/v1/dots/{ns}/{dot}/hooks"
	return []route{
		{method: "GET", pattern: "/v1/hooks", access: accessAdmin, name: "list hooks", h: s.allHooks},
		{method: "GET", pattern: dot, access: accessAdmin, name: "list hooks", h: s.hooks},
		{method: "PUT", pattern: dot + "/{stage}", access: accessAdmin, name: "set a hook", audit: "hook-set", h: s.setHook},
		{method: "DELETE", pattern: dot + "/{stage}", access: accessAdmin, name: "remove a hook", audit: "hook-remove", h: s.removeHook},
	}
}

func (s *server) allHooks(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	hooks, err := s.node.AllHooks(r.Context())
	if hooks == nil {
		hooks = []dotmesh.DotHooks{}
	}
	reply(w, http.StatusOK, hooks, err)
}

func (s *server) hooks(w http.ResponseWriter, r *http.Request) {
	name, ok := dotName(w, r)
	if !ok || !noQuery(w, r) {
		return
	}
	dh, err := s.node.Hooks(r.Context(), name)
	reply(w, http.StatusOK, dh, err)
}

// setHook takes the hook (dotmesh.Hook) as the body; the stage of the
// path wins over the body's.
func (s *server) setHook(w http.ResponseWriter, r *http.Request) {
	name, h, ok := dotRequest[dotmesh.Hook](w, r)
	if !ok {
		return
	}
	h.Stage = r.PathValue("stage")
	requestInfo(r).detail = "stage " + h.Stage + ", " + h.Kind
	dh, err := s.node.SetHook(r.Context(), name, *h)
	reply(w, http.StatusOK, dh, err)
}

func (s *server) removeHook(w http.ResponseWriter, r *http.Request) {
	name, ok := dotName(w, r)
	if !ok || !noQuery(w, r) {
		return
	}
	requestInfo(r).detail = "stage " + r.PathValue("stage")
	dh, err := s.node.RemoveHook(r.Context(), name, r.PathValue("stage"))
	reply(w, http.StatusOK, dh, err)
}
