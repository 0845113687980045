package server

import (
	"fmt"
	"net/http"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// storeKeyRoutes manage the passwords of the node's store encrypted at
// rest: the node's admin only, as they decide who can read all of it.
func (s *server) storeKeyRoutes() []route {
	return []route{
		{method: "GET", pattern: "/v1/store/keys", access: accessAdmin, name: "list the store's keys", h: s.storeKeys},
		{method: "POST", pattern: "/v1/store/keys", access: accessAdmin, name: "add a store key", audit: "store-key-add", h: s.addStoreKey},
		{method: "DELETE", pattern: "/v1/store/keys/{id}", access: accessAdmin, name: "remove a store key", audit: "store-key-remove", h: s.removeStoreKey},
	}
}

func (s *server) storeKeys(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	keys, err := s.node.StoreKeys(r.Context())
	reply(w, http.StatusOK, nonNil(keys), err)
}

func (s *server) addStoreKey(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	req, ok := jsonBody[api.AddStoreKeyRequest](w, r)
	if !ok {
		return
	}
	if req.Password == "" {
		writeError(w, fmt.Errorf("%w: the new password is empty", dotmesh.ErrInvalidArgument))
		return
	}
	id, err := s.node.AddStoreKey(r.Context(), []byte(req.Password))
	reply(w, http.StatusCreated, api.AddStoreKeyResponse{ID: id}, err)
}

func (s *server) removeStoreKey(w http.ResponseWriter, r *http.Request) {
	q, ok := query(w, r, "force")
	if !ok {
		return
	}
	force, err := queryBool(q, "force")
	if err != nil {
		writeError(w, err)
		return
	}
	id := r.PathValue("id")
	if err := dotmesh.ValidateStoreKeyID(id); err != nil {
		writeError(w, err)
		return
	}
	noContent(w, s.node.RemoveStoreKey(r.Context(), id, force))
}
