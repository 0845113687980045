package server

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// The access API (api/access.go): users, keys, sharing and the audit.

func (s *server) accessRoutes() []route {
	const dot = "/v1/dots/{ns}/{dot}"
	owner := dotmesh.RoleOwner
	return []route{
		{method: "GET", pattern: "/v1/me", access: accessAuthenticated, name: "who am I", h: s.me},
		{method: "GET", pattern: "/v1/users", access: accessAdmin, name: "list users", h: s.users},
		{method: "POST", pattern: "/v1/users", access: accessAdmin, name: "add a user", audit: "user-add", answer: answerKey, h: s.addUser},
		{method: "DELETE", pattern: "/v1/users/{user}", access: accessAdmin, name: "remove a user", audit: "user-remove", h: s.removeUser},
		{method: "GET", pattern: "/v1/users/{user}/keys", access: accessSelf, name: "list the keys", h: s.keys},
		{method: "POST", pattern: "/v1/users/{user}/keys", access: accessSelf, name: "add a key", audit: "key-add", answer: answerKey, h: s.addKey},
		{method: "DELETE", pattern: "/v1/users/{user}/keys/{id}", access: accessSelf, name: "revoke a key", audit: "key-revoke", h: s.revokeKey},
		{method: "GET", pattern: dot + "/sharing", access: accessDot, need: owner, name: "show sharing", h: s.sharing},
		{method: "PUT", pattern: dot + "/sharing/{user}", access: accessDot, need: owner, name: "share", audit: "share", h: s.share},
		{method: "DELETE", pattern: dot + "/sharing/{user}", access: accessDot, need: owner, name: "unshare", audit: "unshare", h: s.unshare},
		{method: "PUT", pattern: dot + "/visibility", access: accessDot, need: owner, name: "set visibility", audit: "visibility", h: s.visibility},
		{method: "GET", pattern: "/v1/audit", access: accessBody, check: checkAudit, name: "read the audit", h: s.audit},
	}
}

// pathUser reads and validates the {user} wildcard.
func pathUser(w http.ResponseWriter, r *http.Request) (string, bool) {
	u := r.PathValue("user")
	if err := dotmesh.ValidateName("user", u); err != nil {
		writeError(w, err)
		return "", false
	}
	return u, true
}

func (s *server) users(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	us, err := s.node.Users().List(r.Context())
	reply(w, http.StatusOK, nonNil(us), err)
}

func (s *server) addUser(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	req, ok := jsonBody[api.AddUserRequest](w, r)
	if !ok {
		return
	}
	if err := dotmesh.ValidateNewName("user", req.Name); err != nil {
		writeError(w, err)
		return
	}
	u, k, secret, err := s.node.Users().Add(r.Context(), req.Name, req.Label)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Location", "/v1/users/"+u.Name)
	writeJSON(w, http.StatusCreated, api.NewKeyResponse{User: *u, Key: k, Secret: secret})
}

func (s *server) removeUser(w http.ResponseWriter, r *http.Request) {
	user, ok := pathUser(w, r)
	if !ok || !noQuery(w, r) {
		return
	}
	noContent(w, s.node.Users().Remove(r.Context(), user))
}

func (s *server) keys(w http.ResponseWriter, r *http.Request) {
	user, ok := pathUser(w, r)
	if !ok || !noQuery(w, r) {
		return
	}
	ks, err := s.node.APIKeys().List(r.Context(), user)
	reply(w, http.StatusOK, nonNil(ks), err)
}

func (s *server) addKey(w http.ResponseWriter, r *http.Request) {
	user, ok := pathUser(w, r)
	if !ok || !noQuery(w, r) {
		return
	}
	req, ok := jsonBody[api.NewKeyRequest](w, r)
	if !ok {
		return
	}
	u, err := s.node.Users().Get(r.Context(), user)
	if err != nil {
		writeError(w, err)
		return
	}
	k, secret, err := s.node.APIKeys().Issue(r.Context(), user, req.Label, req.ReadOnly)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, api.NewKeyResponse{User: *u, Key: k, Secret: secret})
}

func (s *server) revokeKey(w http.ResponseWriter, r *http.Request) {
	user, ok := pathUser(w, r)
	if !ok || !noQuery(w, r) {
		return
	}
	id := r.PathValue("id")
	if err := dotmesh.ValidateName("key id", id); err != nil {
		writeError(w, err)
		return
	}
	noContent(w, s.node.APIKeys().Revoke(r.Context(), user, id))
}

func (s *server) sharing(w http.ResponseWriter, r *http.Request) {
	name, ok := dotName(w, r)
	if !ok || !noQuery(w, r) {
		return
	}
	sh, err := s.node.Access().Sharing(r.Context(), name)
	reply(w, http.StatusOK, sh, err)
}

func (s *server) share(w http.ResponseWriter, r *http.Request) {
	name, req, ok := dotRequest[api.ShareRequest](w, r)
	if !ok {
		return
	}
	user, ok := pathUser(w, r)
	if !ok {
		return
	}
	if req.Role != dotmesh.RoleRead && req.Role != dotmesh.RoleWrite {
		writeError(w, fmt.Errorf("%w: a dot is shared as \"read\" or \"write\", not %q", dotmesh.ErrInvalidArgument, req.Role))
		return
	}
	requestInfo(r).detail = "role " + req.Role.String()
	noContent(w, s.node.Access().Share(r.Context(), name, user, req.Role, principal(r).User))
}

func (s *server) unshare(w http.ResponseWriter, r *http.Request) {
	name, ok := dotName(w, r)
	if !ok || !noQuery(w, r) {
		return
	}
	user, ok := pathUser(w, r)
	if !ok {
		return
	}
	noContent(w, s.node.Access().Unshare(r.Context(), name, user))
}

func (s *server) visibility(w http.ResponseWriter, r *http.Request) {
	name, req, ok := dotRequest[api.VisibilityRequest](w, r)
	if !ok {
		return
	}
	if req.Visibility != dotmesh.VisibilityPublic && req.Visibility != dotmesh.VisibilityPrivate {
		writeError(w, fmt.Errorf("%w: visibility %.40q must be \"public\" or \"private\"", dotmesh.ErrInvalidArgument, req.Visibility))
		return
	}
	requestInfo(r).detail = string(req.Visibility)
	noContent(w, s.node.Access().SetVisibility(r.Context(), name, req.Visibility))
}

// maxAuditPage bounds one page of the audit.
const maxAuditPage = 1000

// parseAuditQuery reads dot, before and limit.
func parseAuditQuery(p dotmesh.Principal, q map[string][]string) (dotmesh.AuditQuery, error) {
	var aq dotmesh.AuditQuery
	get := func(k string) string {
		if v := q[k]; len(v) == 1 {
			return v[0]
		}
		return ""
	}
	if v := get("dot"); v != "" {
		d, err := parseDotFor(p, v)
		if err != nil {
			return aq, err
		}
		aq.Dot = &d
	}
	aq.Before = get("before")
	if len(aq.Before) > 64 {
		return aq, fmt.Errorf("%w: before %.40q is not an audit record id", dotmesh.ErrInvalidArgument, aq.Before)
	}
	if v := get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > maxAuditPage {
			return aq, fmt.Errorf("%w: limit %.40q must be a number from 0 (the default) to %d", dotmesh.ErrInvalidArgument, v, maxAuditPage)
		}
		aq.Limit = n
	}
	return aq, nil
}

// checkAudit: the whole audit is the admin's; a dot's, its owner's.
func checkAudit(s *server, r *http.Request, req any) ([]requirement, error) {
	aq := req.(*dotmesh.AuditQuery)
	if aq.Dot == nil {
		return []requirement{{role: dotmesh.RoleAdmin}}, nil
	}
	return []requirement{{dot: aq.Dot, role: dotmesh.RoleOwner}}, nil
}

func (s *server) audit(w http.ResponseWriter, r *http.Request) {
	q, ok := query(w, r, "dot", "before", "limit")
	if !ok {
		return
	}
	aq, err := parseAuditQuery(principal(r), q)
	if err != nil {
		writeError(w, err)
		return
	}
	if !s.permit(w, r, &aq) {
		return
	}
	recs, next, err := s.node.Audit().List(r.Context(), aq)
	reply(w, http.StatusOK, api.AuditPage{Records: nonNil(recs), Next: next}, err)
}

// noContent answers 204, or err.
func noContent(w http.ResponseWriter, err error) {
	if err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
