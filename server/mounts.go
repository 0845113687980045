package server

import (
	"net/http"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// mountRoutes are the routes of out-of-process mount consumers.
func (s *server) mountRoutes() []route {
	return []route{
		{method: "POST", pattern: "/v1/mounts", access: accessBody, check: checkVolume, name: "mount", h: s.mount},
		{method: "DELETE", pattern: "/v1/mounts", access: accessBody, check: checkVolume, name: "unmount", h: s.unmount},
	}
}

func (s *server) mount(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	var req api.MountRequest
	if err := readJSON(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if !s.permit(w, r, &req) {
		return
	}
	v, _ := parseVolumeFor(principal(r), req.Volume) // checked by permit
	m, err := s.node.Mounts().Mount(r.Context(), v, req.Consumer, req.ID, req.Name)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, m)
}

func (s *server) unmount(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	var req api.UnmountRequest
	if err := readJSON(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if err := dotmesh.ValidateName("consumer", req.Consumer); err != nil {
		writeError(w, err)
		return
	}
	if !s.permit(w, r, &req) {
		return
	}
	var dots []dotmesh.DotName
	if req.Volume != "" {
		v, _ := parseVolumeFor(principal(r), req.Volume) // checked by permit
		dots = append(dots, v.Dot)
	} else {
		all, err := s.node.ListDots(r.Context())
		if err != nil {
			writeError(w, err)
			return
		}
		for _, st := range all {
			for _, m := range st.Mounts {
				if m.Consumer == req.Consumer && m.ID == req.ID {
					dots = append(dots, st.Dot.DotName())
					break
				}
			}
		}
	}
	for _, d := range dots {
		if err := s.node.Mounts().Unmount(r.Context(), d, req.Consumer, req.ID); err != nil {
			writeError(w, err)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}
