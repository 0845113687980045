package server

import (
	"net/http"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// label changes a dot's labels; the node validates them before it writes.
func (s *server) label(w http.ResponseWriter, r *http.Request) {
	name, req, ok := dotRequest[api.LabelRequest](w, r)
	if !ok {
		return
	}
	d, err := s.node.Label(r.Context(), name, dotmesh.LabelChange{Set: req.Set, Remove: req.Remove, Overwrite: req.Overwrite})
	reply(w, http.StatusOK, d, err)
}
