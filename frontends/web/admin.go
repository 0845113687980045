package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func (h *Handler) signinPage(w http.ResponseWriter, r *http.Request, _ *req) {
	if c, err := r.Cookie(cookieName); err == nil && h.sessions.get(c.Value) != nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	h.signinForm(w, r, http.StatusOK, "", "")
}

// signinForm shows the form with a fresh token in a cookie and the
// form (double submit): a page on another site cannot sign a browser in
// under its own account.
func (h *Handler) signinForm(w http.ResponseWriter, r *http.Request, status int, user, msg string) {
	tok := token()
	setCookie(w, r, preCookie, tok, 600)
	h.render(w, status, "signin", view{Title: "Sign in", Flash: msg, Data: map[string]any{
		"Token": tok, "User": user, "Next": safeNext(r.FormValue("next")),
	}})
}

func (h *Handler) signin(w http.ResponseWriter, r *http.Request, _ *req) {
	user := strings.TrimSpace(r.PostFormValue("user"))
	key := r.PostFormValue("key")
	pre, err := r.Cookie(preCookie)
	if err != nil || !validCSRF(&session{csrf: pre.Value}, r.PostFormValue("token")) {
		h.signinForm(w, r, http.StatusForbidden, user, "The sign-in form had expired; nothing was checked. Try again.")
		return
	}
	if user == "" || key == "" {
		h.signinForm(w, r, http.StatusBadRequest, user, "Give your user name and one of your API keys.")
		return
	}
	keys := throttleKeys(user, r)
	if d := h.throttle.wait(keys); d > 0 {
		h.signinForm(w, r, http.StatusTooManyRequests, user, fmt.Sprintf("Too many failed sign-ins; try again in %s.", d.Round(time.Second)))
		return
	}
	p, err := h.node.APIKeys().Authenticate(r.Context(), user, key)
	if err != nil {
		if !errors.Is(err, dotmesh.ErrUnauthorized) {
			h.log.Error("ui sign-in", "user", user, "err", err)
		}
		h.throttle.fail(keys)
		h.log.Info("ui sign-in refused", "user", user, "addr", r.RemoteAddr)
		h.signinForm(w, r, http.StatusUnauthorized, user, "That user name and key do not match a key of this node.")
		return
	}
	h.throttle.succeed(keys)
	issued, err := h.hasKey(r.Context(), p.User, p.KeyID)
	if err != nil {
		h.engineError(w, r, nil, err)
		return
	}
	s := h.sessions.create(p, issued)
	setCookie(w, r, preCookie, "", -1)
	setCookie(w, r, cookieName, s.id, 0)
	h.log.Info("ui sign-in", "user", p.User, "key", p.KeyID, "read_only", p.ReadOnly)
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

func (h *Handler) signout(w http.ResponseWriter, r *http.Request, rq *req) {
	h.sessions.delete(rq.s.id)
	setCookie(w, r, cookieName, "", -1)
	http.Redirect(w, r, Prefix+"signin", http.StatusSeeOther)
}

// audit records a change made in the UI. The change is done; a failure
// to record it is logged loudly rather than shown as the change failing.
func (h *Handler) audit(ctx context.Context, s *session, action string, dot *dotmesh.DotName, detail string) {
	rec := dotmesh.AuditRecord{User: s.p.User, Action: action, Detail: detail}
	if dot != nil {
		rec.Dot = dot.String()
	}
	if err := h.node.Audit().Append(ctx, rec); err != nil {
		h.log.Error("ui: the audit did not record a change", "action", action, "user", s.p.User, "err", err)
	}
}

func (h *Handler) sharingPage(w http.ResponseWriter, r *http.Request, rq *req) {
	sh, err := h.node.Access().Sharing(r.Context(), rq.dot)
	if err != nil {
		h.engineError(w, r, rq.s, err)
		return
	}
	h.render(w, http.StatusOK, "sharing", view{Title: "Sharing of " + rq.dot.String(), S: rq.s,
		Crumbs: append(dotCrumbs(rq.dot), crumb{"Sharing", ""}), Data: map[string]any{"Dot": rq.dot, "Sh": sh}})
}

func sharingURL(d dotmesh.DotName) string {
	return Prefix + "dots/" + d.Namespace + "/" + d.Name + "/sharing"
}

func (h *Handler) share(w http.ResponseWriter, r *http.Request, rq *req) {
	user := strings.TrimSpace(r.PostFormValue("user"))
	role, err := dotmesh.ParseRole(r.PostFormValue("role"))
	if err == nil && role != dotmesh.RoleRead && role != dotmesh.RoleWrite {
		err = fmt.Errorf("%w: share as read or write", dotmesh.ErrInvalidArgument)
	}
	if err == nil {
		err = dotmesh.ValidateName("user", user)
	}
	if err == nil {
		err = h.node.Access().Share(r.Context(), rq.dot, user, role, rq.s.p.User)
	}
	if err != nil {
		h.engineError(w, r, rq.s, err)
		return
	}
	h.audit(r.Context(), rq.s, "share", &rq.dot, user+" "+role.String())
	h.done(w, r, rq.s, sharingURL(rq.dot), fmt.Sprintf("%s may now %s %s.", user, role, rq.dot))
}

func (h *Handler) unshare(w http.ResponseWriter, r *http.Request, rq *req) {
	user := r.PostFormValue("user")
	err := dotmesh.ValidateName("user", user)
	if err == nil {
		err = h.node.Access().Unshare(r.Context(), rq.dot, user)
	}
	if err != nil {
		h.engineError(w, r, rq.s, err)
		return
	}
	h.audit(r.Context(), rq.s, "unshare", &rq.dot, user)
	h.done(w, r, rq.s, sharingURL(rq.dot), fmt.Sprintf("%s no longer has a role on %s.", user, rq.dot))
}

func (h *Handler) visibility(w http.ResponseWriter, r *http.Request, rq *req) {
	v := dotmesh.Visibility(r.PostFormValue("visibility"))
	if v != dotmesh.VisibilityPublic && v != dotmesh.VisibilityPrivate {
		h.fail(w, r, rq.s, http.StatusBadRequest, "Bad visibility", "Choose public or private.")
		return
	}
	if err := h.node.Access().SetVisibility(r.Context(), rq.dot, v); err != nil {
		h.engineError(w, r, rq.s, err)
		return
	}
	h.audit(r.Context(), rq.s, "visibility", &rq.dot, string(v))
	h.done(w, r, rq.s, sharingURL(rq.dot), fmt.Sprintf("%s is now %s.", rq.dot, v))
}

// auditList renders a page of the audit, of one dot or of the node.
func (h *Handler) auditList(w http.ResponseWriter, r *http.Request, rq *req, dot *dotmesh.DotName, crumbs []crumb, base string) {
	lq, ok := h.query(w, r, rq.s)
	if !ok {
		return
	}
	recs, next, err := h.node.Audit().List(r.Context(), dotmesh.AuditQuery{Dot: dot, Before: lq.Before, Limit: auditPerPage})
	if err != nil {
		h.engineError(w, r, rq.s, err)
		return
	}
	title := "Audit"
	if dot != nil {
		title = "Audit of " + dot.String()
	}
	more := ""
	if next != "" {
		more = base + "?before=" + urlQueryEscape(next)
	}
	h.render(w, http.StatusOK, "audit", view{Title: title, S: rq.s, Crumbs: crumbs, Data: map[string]any{"Records": recs, "Next": more, "Dot": dot}})
}

func (h *Handler) dotAuditPage(w http.ResponseWriter, r *http.Request, rq *req) {
	h.auditList(w, r, rq, &rq.dot, append(dotCrumbs(rq.dot), crumb{"Audit", ""}), Prefix+"dots/"+rq.dot.Namespace+"/"+rq.dot.Name+"/audit")
}

func (h *Handler) auditPage(w http.ResponseWriter, r *http.Request, rq *req) {
	h.auditList(w, r, rq, nil, nil, Prefix+"audit")
}

func (h *Handler) transfersPage(w http.ResponseWriter, r *http.Request, rq *req) {
	ctx := r.Context()
	all, err := h.node.TransferPeer().Incoming(ctx)
	if err != nil {
		h.engineError(w, r, rq.s, err)
		return
	}
	names := make([]dotmesh.DotName, len(all))
	for i, t := range all {
		names[i] = t.DotName()
	}
	roles, err := h.node.Access().Roles(ctx, rq.s.p, names)
	if err != nil {
		h.engineError(w, r, rq.s, err)
		return
	}
	var shown []dotmesh.IncomingTransfer
	for i, t := range all {
		if roles[i] >= dotmesh.RoleRead {
			shown = append(shown, t)
		}
	}
	h.render(w, http.StatusOK, "transfers", view{Title: "Transfers", S: rq.s, Data: shown})
}

func (h *Handler) clusterPage(w http.ResponseWriter, r *http.Request, rq *req) {
	nodes, err := h.node.Cluster().Nodes(r.Context())
	if err != nil && !errors.Is(err, dotmesh.ErrNotSupported) {
		h.engineError(w, r, rq.s, err)
		return
	}
	h.render(w, http.StatusOK, "cluster", view{Title: "Cluster", S: rq.s, Data: map[string]any{"Nodes": nodes, "Self": h.node.Cluster().NodeID()}})
}

// newKey is a key just made, shown once.
type newKey struct {
	Key    dotmesh.KeyInfo
	Secret string
}

func (h *Handler) keysPage(w http.ResponseWriter, r *http.Request, rq *req) {
	h.showKeys(w, r, rq, nil)
}

func (h *Handler) showKeys(w http.ResponseWriter, r *http.Request, rq *req, made *newKey) {
	keys, err := h.node.APIKeys().List(r.Context(), rq.s.p.User)
	if err != nil {
		h.engineError(w, r, rq.s, err)
		return
	}
	h.render(w, http.StatusOK, "keys", view{Title: "Your API keys", S: rq.s, Data: map[string]any{"Keys": keys, "New": made, "Current": rq.s.p.KeyID}})
}

func (h *Handler) addKey(w http.ResponseWriter, r *http.Request, rq *req) {
	label := strings.TrimSpace(r.PostFormValue("label"))
	if len(label) > 100 {
		h.fail(w, r, rq.s, http.StatusBadRequest, "Label too long", "Keep a key's label under 100 characters.")
		return
	}
	k, secret, err := h.node.APIKeys().Issue(r.Context(), rq.s.p.User, label, r.PostFormValue("read_only") != "")
	if err != nil {
		h.engineError(w, r, rq.s, err)
		return
	}
	h.audit(r.Context(), rq.s, "key-add", nil, k.ID)
	h.showKeys(w, r, rq, &newKey{Key: k, Secret: secret})
}

func (h *Handler) revokeKey(w http.ResponseWriter, r *http.Request, rq *req) {
	h.revoke(w, r, rq, rq.s.p.User, Prefix+"keys")
}

func (h *Handler) revokeUserKey(w http.ResponseWriter, r *http.Request, rq *req) {
	user := r.PathValue("user")
	if err := dotmesh.ValidateName("user", user); err != nil {
		h.engineError(w, r, rq.s, err)
		return
	}
	h.revoke(w, r, rq, user, Prefix+"users")
}

// revoke deletes a key and ends the sessions signed in with it.
func (h *Handler) revoke(w http.ResponseWriter, r *http.Request, rq *req, user, back string) {
	id := r.PathValue("id")
	if err := h.node.APIKeys().Revoke(r.Context(), user, id); err != nil {
		h.engineError(w, r, rq.s, err)
		return
	}
	h.sessions.dropWhere(func(p dotmesh.Principal) bool { return p.User == user && p.KeyID == id })
	h.audit(r.Context(), rq.s, "key-revoke", nil, user+" "+id)
	if rq.s.p.User == user && rq.s.p.KeyID == id {
		setCookie(w, r, cookieName, "", -1)
		http.Redirect(w, r, Prefix+"signin", http.StatusSeeOther)
		return
	}
	h.done(w, r, rq.s, back, "Key "+id+" is revoked; calls with it are refused.")
}

// userRow is a user with their keys.
type userRow struct {
	U    dotmesh.User
	Keys []dotmesh.KeyInfo
}

func (h *Handler) usersPage(w http.ResponseWriter, r *http.Request, rq *req) {
	h.showUsers(w, r, rq, "", nil)
}

func (h *Handler) showUsers(w http.ResponseWriter, r *http.Request, rq *req, who string, made *newKey) {
	ctx := r.Context()
	users, err := h.node.Users().List(ctx)
	if err != nil {
		h.engineError(w, r, rq.s, err)
		return
	}
	rows := make([]userRow, len(users))
	for i, u := range users {
		rows[i].U = u
		if rows[i].Keys, err = h.node.APIKeys().List(ctx, u.Name); err != nil {
			h.engineError(w, r, rq.s, err)
			return
		}
	}
	h.render(w, http.StatusOK, "users", view{Title: "Users", S: rq.s, Data: map[string]any{"Users": rows, "New": made, "NewUser": who}})
}

func (h *Handler) addUser(w http.ResponseWriter, r *http.Request, rq *req) {
	name := strings.TrimSpace(r.PostFormValue("name"))
	label := strings.TrimSpace(r.PostFormValue("label"))
	err := dotmesh.ValidateName("user", name)
	if err == nil && len(label) > 100 {
		err = fmt.Errorf("%w: keep a key's label under 100 characters", dotmesh.ErrInvalidArgument)
	}
	var k dotmesh.KeyInfo
	var secret string
	if err == nil {
		_, k, secret, err = h.node.Users().Add(r.Context(), name, label)
	}
	if err != nil {
		h.engineError(w, r, rq.s, err)
		return
	}
	h.audit(r.Context(), rq.s, "user-add", nil, name)
	h.showUsers(w, r, rq, name, &newKey{Key: k, Secret: secret})
}

func (h *Handler) removeUser(w http.ResponseWriter, r *http.Request, rq *req) {
	name := r.PathValue("user")
	err := dotmesh.ValidateName("user", name)
	if err == nil {
		err = h.node.Users().Remove(r.Context(), name)
	}
	if err != nil {
		h.engineError(w, r, rq.s, err)
		return
	}
	h.sessions.dropWhere(func(p dotmesh.Principal) bool { return p.User == name })
	h.audit(r.Context(), rq.s, "user-remove", nil, name)
	h.done(w, r, rq.s, Prefix+"users", "User "+name+" is removed, with their keys and grants.")
}
