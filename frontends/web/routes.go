package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// need is the permission a route demands. The zero value is no
// declaration at all, which New refuses: deny by default.
type need int

const (
	needUndeclared need = iota
	needNothing         // the sign-in page and the assets
	needSignedIn        // any signed-in user; the page filters by role
	needDotRead         // RoleRead on the dot in the path
	needDotOwner        // RoleOwner on the dot in the path
	needAdmin           // the node's admin
)

func (n need) String() string {
	return [...]string{"undeclared", "nothing", "a session", "read", "owner", "admin"}[n]
}

// role is the dot role a dot route needs.
func (n need) role() dotmesh.Role {
	if n == needDotOwner {
		return dotmesh.RoleOwner
	}
	return dotmesh.RoleRead
}

// route is one page or action of the UI.
type route struct {
	method, pattern string
	need            need
	serve           func(http.ResponseWriter, *http.Request, *req)
}

func (rt route) check() error {
	if rt.need <= needUndeclared || rt.need > needAdmin {
		return fmt.Errorf("web: route %s %s declares no permission", rt.method, rt.pattern)
	}
	if rt.method != http.MethodGet && rt.method != http.MethodPost {
		return fmt.Errorf("web: route %s %s: only GET and POST", rt.method, rt.pattern)
	}
	return nil
}

// req is what a guarded route gets: the session (nil on needNothing
// routes), and for dot routes the dot and the caller's role on it.
type req struct {
	s    *session
	dot  dotmesh.DotName
	role dotmesh.Role
}

// routes is the UI's route table: every page and action with the
// permission it needs. Registering a handler any other way is a bug.
func (h *Handler) routes() []route {
	return []route{
		{"GET", "/ui/{$}", needSignedIn, h.dotsPage},
		{"GET", "/ui/assets/", needNothing, func(w http.ResponseWriter, r *http.Request, _ *req) { h.static.ServeHTTP(w, r) }},
		{"GET", "/ui/signin", needNothing, h.signinPage},
		{"POST", "/ui/signin", needNothing, h.signin},
		{"POST", "/ui/signout", needSignedIn, h.signout},
		{"GET", "/ui/dots/{ns}/{dot}", needDotRead, h.dotPage},
		{"GET", "/ui/dots/{ns}/{dot}/commits/{commit}", needDotRead, h.commitPage},
		{"GET", "/ui/dots/{ns}/{dot}/file/{commit}", needDotRead, h.filePage},
		{"GET", "/ui/dots/{ns}/{dot}/changes", needDotRead, h.changesPage},
		{"GET", "/ui/dots/{ns}/{dot}/sharing", needDotOwner, h.sharingPage},
		{"POST", "/ui/dots/{ns}/{dot}/share", needDotOwner, h.share},
		{"POST", "/ui/dots/{ns}/{dot}/unshare", needDotOwner, h.unshare},
		{"POST", "/ui/dots/{ns}/{dot}/visibility", needDotOwner, h.visibility},
		{"GET", "/ui/dots/{ns}/{dot}/audit", needDotOwner, h.dotAuditPage},
		{"GET", "/ui/transfers", needSignedIn, h.transfersPage},
		{"GET", "/ui/cluster", needAdmin, h.clusterPage},
		{"GET", "/ui/keys", needSignedIn, h.keysPage},
		{"POST", "/ui/keys", needSignedIn, h.addKey},
		{"POST", "/ui/keys/{id}/revoke", needSignedIn, h.revokeKey},
		{"GET", "/ui/users", needAdmin, h.usersPage},
		{"POST", "/ui/users", needAdmin, h.addUser},
		{"POST", "/ui/users/{user}/remove", needAdmin, h.removeUser},
		{"POST", "/ui/users/{user}/keys/{id}/revoke", needAdmin, h.revokeUserKey},
		{"GET", "/ui/audit", needAdmin, h.auditPage},
	}
}

// guard enforces a route's permission before it runs: a session (else
// to the sign-in page), the CSRF token on every POST, no changes with a
// read-only key, and the role on the dot in the path.
func (h *Handler) guard(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rq := &req{}
		if rt.need == needNothing {
			rt.serve(w, r, rq)
			return
		}
		if c, err := r.Cookie(cookieName); err == nil {
			rq.s = h.sessions.get(c.Value)
		}
		if rq.s != nil {
			alive, err := h.keyAlive(r.Context(), rq.s)
			if err != nil {
				h.engineError(w, r, nil, err)
				return
			}
			if !alive { // revoked, or its user removed, since sign-in
				h.sessions.delete(rq.s.id)
				rq.s = nil
			}
		}
		if rq.s == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, Prefix+"signin?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			h.fail(w, r, nil, http.StatusUnauthorized, "Signed out", "Your session has ended; sign in again and repeat the change.")
			return
		}
		if r.Method == http.MethodPost {
			if !validCSRF(rq.s, r.PostFormValue("csrf")) {
				h.fail(w, r, rq.s, http.StatusForbidden, "Form expired", "The form did not carry this session's token (it came from another page or an older session); nothing was changed. Reload the page and try again.")
				return
			}
			if rq.s.p.ReadOnly && rt.pattern != "/ui/signout" {
				h.fail(w, r, rq.s, http.StatusForbidden, "Read-only session", "You signed in with a read-only key, which may not change anything; sign in with a full key.")
				return
			}
		}
		switch rt.need {
		case needAdmin:
			if !rq.s.p.Admin {
				h.fail(w, r, rq.s, http.StatusForbidden, "Admin only", "This page needs the admin role of the node, which you do not have.")
				return
			}
		case needDotRead, needDotOwner:
			dot, err := dotFromPath(r)
			if err != nil {
				h.fail(w, r, rq.s, http.StatusBadRequest, "Bad dot name", err.Error())
				return
			}
			role, err := h.roleOf(r.Context(), rq.s.p, dot)
			if err != nil {
				h.engineError(w, r, rq.s, err)
				return
			}
			rq.dot, rq.role = dot, role
			if role < dotmesh.RoleRead {
				h.hidden(w, r, rq.s, dot)
				return
			}
			if role < rt.need.role() {
				h.fail(w, r, rq.s, http.StatusForbidden, "Permission needed", fmt.Sprintf("This needs the %s role on %s; you have %s. Ask its owner or an admin.", rt.need.role(), dot, role))
				return
			}
		}
		rt.serve(w, r, rq)
	})
}

// keyAlive reports whether the key a session signed in with still
// exists, so that a key revoked or a user removed by any frontend ends
// their sessions at their next request.
func (h *Handler) keyAlive(ctx context.Context, s *session) (bool, error) {
	if !s.issued { // the user's legacy key (the admin's key file)
		_, err := h.node.APIKeys().Get(ctx, s.p.User)
		if errors.Is(err, dotmesh.ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	}
	return h.hasKey(ctx, s.p.User, s.p.KeyID)
}

// hasKey reports whether user has an issued key id.
func (h *Handler) hasKey(ctx context.Context, user, id string) (bool, error) {
	keys, err := h.node.APIKeys().List(ctx, user)
	if err != nil {
		return false, err
	}
	for _, k := range keys {
		if k.ID == id {
			return true, nil
		}
	}
	return false, nil
}

// roleOf asks the engine; a read-only key never gets more than read.
func (h *Handler) roleOf(ctx context.Context, p dotmesh.Principal, dot dotmesh.DotName) (dotmesh.Role, error) {
	role, err := h.node.Access().RoleOf(ctx, p, dot)
	if err != nil {
		return dotmesh.RoleNone, err
	}
	if p.ReadOnly && role > dotmesh.RoleRead {
		role = dotmesh.RoleRead
	}
	return role, nil
}

// hidden answers for a dot the caller may not read exactly as for one
// that does not exist.
func (h *Handler) hidden(w http.ResponseWriter, r *http.Request, s *session, dot dotmesh.DotName) {
	h.fail(w, r, s, http.StatusNotFound, "Dot not found",
		fmt.Sprintf("There is no dot %s that you may read: it does not exist, or you need the read role on it (ask its owner to share it with you).", dot))
}

// engineError turns an engine error into a page; a missing dot or
// commit is a 404 worded like hidden's.
func (h *Handler) engineError(w http.ResponseWriter, r *http.Request, s *session, err error) {
	status, title := http.StatusInternalServerError, "Something went wrong"
	switch {
	case errors.Is(err, dotmesh.ErrNotFound):
		status, title = http.StatusNotFound, "Not found"
	case errors.Is(err, dotmesh.ErrInvalidArgument), errors.Is(err, dotmesh.ErrInvalidName):
		status, title = http.StatusBadRequest, "Bad request"
	case errors.Is(err, dotmesh.ErrAlreadyExists):
		status, title = http.StatusConflict, "Already exists"
	case errors.Is(err, dotmesh.ErrNotSupported):
		status, title = http.StatusNotImplemented, "Not supported"
	case errors.Is(err, dotmesh.ErrPermissionDenied):
		status, title = http.StatusForbidden, "Permission needed"
	}
	if status == http.StatusInternalServerError {
		h.log.Error("ui page", "path", r.URL.Path, "err", err)
	}
	h.fail(w, r, s, status, title, err.Error())
}
