package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// access is how a route finds the role it needs.
type access int

const (
	// accessPublic: anyone, without credentials (GET/HEAD /healthz only).
	accessPublic access = iota + 1
	// accessAuthenticated: any caller the server accepted (with
	// Options.AnonymousRead, the anonymous caller too); what the handler
	// answers is filtered to the dots the caller may read.
	accessAuthenticated
	// accessDot: route.need on the {ns}/{dot} of the path.
	accessDot
	// accessSelf: the {user} of the path, or an admin.
	accessSelf
	// accessAdmin: the node's admin.
	accessAdmin
	// accessBody: the dot is in the request; the handler decodes it and
	// calls s.permit, which asks route.check what it needs, before it
	// does anything.
	accessBody
)

// requirement is one role a call needs: on a dot, or on the node (dot nil:
// an admin).
type requirement struct {
	dot  *dotmesh.DotName
	role dotmesh.Role
}

// bodyCheck says what a decoded request (a pointer to the route's request
// type) needs. It may refine the audit action (a transfer's op).
type bodyCheck func(s *server, r *http.Request, req any) ([]requirement, error)

// answerKind says where the audit finds the branch and commit of a
// successful call.
type answerKind int

const (
	answerNone     answerKind = iota
	answerCommit              // a dotmesh.Commit: id, branch
	answerBranch              // a dotmesh.Branch: name, head
	answerCheckout            // a dotmesh.CheckoutReport: current
	answerFinish              // a dotmesh.FinishResult: head (branch in the query)
	answerTransfer            // NDJSON events: the last holds result or error
	answerKey                 // an api.NewKeyResponse: user, key id (never the secret)
	answerGC                  // a dotmesh.GCResult: a dry run changes nothing
)

// route is one entry of the route table: every route of the API is one,
// and only register (routes.go) adds routes to the mux.
type route struct {
	method, pattern string
	access          access
	need            dotmesh.Role // accessDot
	check           bodyCheck    // accessBody
	// name is what the call does, in words, for refusals ("commit").
	name string
	// audit is the action recorded after a successful call; "" for
	// calls that change nothing.
	audit  string
	answer answerKind
	// auditInTxn: the handler's verb writes the audit record of a
	// successful call in the registry transaction of its change
	// (dotmesh.WithAudit), so the record is complete before the handler
	// runs (no detail from the handler); otherwise, and when the verb did
	// not write it, the guard records it after.
	auditInTxn bool
	h          http.HandlerFunc
}

// changes reports whether the route may change state, so that a
// read-only key is refused it whatever its role.
func (rt *route) changes() bool {
	return rt.audit != "" || (rt.access == accessDot && rt.need > dotmesh.RoleRead)
}

// validate panics on a route the table cannot enforce: deny by default
// means a route without a role never serves.
func (rt *route) validate() {
	bad := func(why string) {
		panic(fmt.Sprintf("server: route %s %s %s", rt.method, rt.pattern, why))
	}
	switch {
	case rt.h == nil:
		bad("has no handler")
	case rt.name == "":
		bad("has no name")
	}
	switch rt.access {
	case accessPublic:
		if rt.pattern != "/healthz" {
			bad("is public; only /healthz may be")
		}
	case accessAuthenticated, accessAdmin:
	case accessDot:
		if rt.need < dotmesh.RoleRead || rt.need > dotmesh.RoleOwner {
			bad("needs a role of read, write or owner on its dot")
		}
		if !strings.Contains(rt.pattern, "/{ns}/{dot}") {
			bad("has no {ns}/{dot} to check a role on")
		}
	case accessSelf:
		if !strings.Contains(rt.pattern, "{user}") {
			bad("has no {user} to check")
		}
	case accessBody:
		if rt.check == nil {
			bad("finds its dot in the body but declares no check")
		}
	default:
		bad("declares no role")
	}
}

// register builds the route table and adds every route to the mux,
// behind guard.
func (s *server) register() {
	for _, list := range [][]route{s.dotRoutes(), s.transferRoutes(), s.clusterRoutes(), s.sourceRoutes(), s.mountRoutes(), s.accessRoutes(), s.refRoutes(), s.opsRoutes(), s.storeKeyRoutes(), s.policyRoutes(), s.hookRoutes()} {
		s.table = append(s.table, list...)
	}
	for i := range s.table {
		rt := &s.table[i]
		rt.validate()
		s.routes.HandleFunc(rt.method+" "+rt.pattern, s.guard(rt))
	}
}

// principal returns who makes the request (set by serve).
func principal(r *http.Request) dotmesh.Principal { return requestInfo(r).principal }

// guard enforces rt's role before its handler runs, and records the audit
// of a successful change after.
func (s *server) guard(rt *route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		in := requestInfo(r)
		in.route = rt
		p := in.principal
		if rt.access != accessPublic && rt.access != accessBody && p.ReadOnly && rt.changes() {
			need := max(rt.need, dotmesh.RoleWrite)
			if rt.access == accessAdmin {
				need = dotmesh.RoleAdmin
			}
			e := &dotmesh.PermissionError{User: p.User, Action: rt.name, Need: need, Have: dotmesh.RoleRead, ReadOnlyKey: true}
			if rt.access == accessDot {
				if d, ok := dotName(w, r); ok {
					e.Dot = &d
				} else {
					return
				}
			}
			writeError(w, e)
			return
		}
		switch rt.access {
		case accessDot:
			name, ok := dotName(w, r)
			if !ok {
				return
			}
			if err := s.authorize(r.Context(), p, rt.name, requirement{dot: &name, role: rt.need}); err != nil {
				writeError(w, err)
				return
			}
			in.dots = []dotmesh.DotName{name}
		case accessSelf:
			user := r.PathValue("user")
			if err := dotmesh.ValidateName("user", user); err != nil {
				writeError(w, err)
				return
			}
			if p.User != user {
				if err := s.authorize(r.Context(), p, rt.name+" of user "+user, requirement{role: dotmesh.RoleAdmin}); err != nil {
					writeError(w, err)
					return
				}
			}
		case accessAdmin:
			if err := s.authorize(r.Context(), p, rt.name, requirement{role: dotmesh.RoleAdmin}); err != nil {
				writeError(w, err)
				return
			}
		}
		var cw *captureWriter
		var pending *dotmesh.PendingAudit
		if rt.audit != "" {
			cw = &captureWriter{ResponseWriter: w}
			w = cw
			if rt.auditInTxn {
				rec := auditBase(r)
				rec.Detail = auditDetail(r)
				var ctx context.Context
				ctx, pending = dotmesh.WithAudit(r.Context(), rec)
				r = r.WithContext(ctx)
			}
		}
		rt.h(w, r)
		if rt.access == accessBody && !in.checked {
			// A handler that forgot s.permit: a bug the matrix test catches.
			s.log.ErrorContext(r.Context(), "route answered without its permission check", "method", rt.method, "pattern", rt.pattern)
		}
		if cw != nil {
			if pending != nil {
				if _, written := pending.Written(); written {
					return
				}
			}
			s.recordAudit(r, rt, cw)
		}
	}
}

// permit runs the route's body check on the decoded request req and
// answers the refusal itself; the handler goes on only when it returns
// true.
func (s *server) permit(w http.ResponseWriter, r *http.Request, req any) bool {
	in := requestInfo(r)
	in.checked = true
	rt := in.route
	if rt == nil || rt.check == nil {
		writeError(w, fmt.Errorf("%w: no permission check declared for %s %s", dotmesh.ErrPermissionDenied, r.Method, r.URL.Path))
		return false
	}
	reqs, err := rt.check(s, r, req)
	if err == nil {
		for _, q := range reqs {
			if in.principal.ReadOnly && rt.changes() {
				err = &dotmesh.PermissionError{User: in.principal.User, Action: in.actionName(), Need: max(q.role, dotmesh.RoleWrite), Have: dotmesh.RoleRead, Dot: q.dot, ReadOnlyKey: true}
			} else {
				err = s.authorize(r.Context(), in.principal, in.actionName(), q)
			}
			if err != nil {
				break
			}
			if q.dot != nil {
				in.dots = append(in.dots, *q.dot)
			}
		}
	}
	if err != nil {
		writeError(w, err)
		return false
	}
	return true
}

// authorize returns nil when p has q's role, else a PermissionError. A
// dot the caller cannot see is refused the same way whether it exists or
// not: Access.RoleOf answers for a missing dot as for a new one.
func (s *server) authorize(ctx context.Context, p dotmesh.Principal, action string, q requirement) error {
	if q.dot == nil || q.role == dotmesh.RoleAdmin {
		// A read-only admin key reaches the admin routes that change
		// nothing; guard refused it the others.
		if p.Admin {
			return nil
		}
		return &dotmesh.PermissionError{User: p.User, Action: action, Need: dotmesh.RoleAdmin, Have: dotmesh.RoleNone, Dot: q.dot}
	}
	have, err := s.node.Access().RoleOf(ctx, p, *q.dot)
	if err != nil {
		return err
	}
	capped := have
	if p.ReadOnly && capped > dotmesh.RoleRead {
		capped = dotmesh.RoleRead
	}
	if capped >= q.role {
		return nil
	}
	dot := *q.dot
	return &dotmesh.PermissionError{User: p.User, Action: action, Need: q.role, Have: capped, Dot: &dot, ReadOnlyKey: p.ReadOnly && have >= q.role}
}

// ownNamespace is where a dot named without a namespace goes: the
// caller's own (the admin's is DefaultNamespace).
func ownNamespace(p dotmesh.Principal) string {
	if p.User == "" {
		return dotmesh.DefaultNamespace
	}
	return p.User
}

// dotFor is the dot a request's namespace and name fields give, the
// caller's own namespace when it names none, validated.
func dotFor(p dotmesh.Principal, ns, name string) (dotmesh.DotName, error) {
	d := dotmesh.DotName{Namespace: ns, Name: name}
	if d.Namespace == "" {
		d.Namespace = ownNamespace(p)
	}
	return d, d.Validate()
}

// parseVolumeFor parses "[namespace/]dot[@branch][.subdot]" with the
// caller's namespace as the default.
func parseVolumeFor(p dotmesh.Principal, s string) (dotmesh.VolumeName, error) {
	v, err := dotmesh.ParseVolumeName(s)
	if err == nil && !strings.Contains(s, "/") {
		v.Dot.Namespace = ownNamespace(p)
	}
	return v, err
}

// parseDotFor is parseVolumeFor for "[namespace/]dot".
func parseDotFor(p dotmesh.Principal, s string) (dotmesh.DotName, error) {
	d, err := dotmesh.ParseDotName(s)
	if err == nil && !strings.Contains(s, "/") {
		d.Namespace = ownNamespace(p)
	}
	return d, err
}

// readable keeps the items whose dot p may read (list pages).
func readable[T any](ctx context.Context, s *server, p dotmesh.Principal, items []T, dot func(T) dotmesh.DotName) ([]T, error) {
	if p.Admin || len(items) == 0 {
		return items, nil
	}
	names := make([]dotmesh.DotName, len(items))
	for i, it := range items {
		names[i] = dot(it)
	}
	roles, err := s.node.Access().Roles(ctx, p, names)
	if err != nil {
		return nil, err
	}
	out := items[:0:0]
	for i, it := range items {
		if roles[i] >= dotmesh.RoleRead {
			out = append(out, it)
		}
	}
	return out, nil
}

// captureWriter keeps the tail of an answer, from which the audit reads
// the branch and commit (and a transfer's outcome).
type captureWriter struct {
	http.ResponseWriter
	status int
	tail   []byte
}

const captureMax = 64 << 10

func (c *captureWriter) WriteHeader(status int) {
	if c.status == 0 && (status < 100 || status > 199) {
		c.status = status
	}
	c.ResponseWriter.WriteHeader(status)
}

func (c *captureWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	c.tail = append(c.tail, b...)
	if len(c.tail) > captureMax {
		c.tail = append(c.tail[:0], c.tail[len(c.tail)-captureMax:]...)
	}
	return c.ResponseWriter.Write(b)
}

func (c *captureWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// answerFields are the fields of the answers the audit reads.
type answerFields struct {
	ID      string          `json:"id"`
	Branch  string          `json:"branch"`
	Name    string          `json:"name"`
	Head    string          `json:"head"`
	Current string          `json:"current"`
	DryRun  bool            `json:"dry_run"`
	Error   json.RawMessage `json:"error"`
	Result  *struct {
		Branch string `json:"branch"`
		Head   string `json:"head"`
	} `json:"result"`
	User *struct {
		Name string `json:"name"`
	} `json:"user"`
	Key *struct {
		ID string `json:"id"`
	} `json:"key"`
}

// lastLine returns the last non-empty line of b.
func lastLine(b []byte) []byte {
	b = bytes.TrimRight(b, "\r\n ")
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[i+1:]
	}
	return b
}

// recordAudit appends the audit record of a call that succeeded. The
// call has been answered (a streamed answer, a transfer's, may reach its
// client just before): a failure to record is logged, not sent.
func (s *server) recordAudit(r *http.Request, rt *route, cw *captureWriter) {
	if cw.status == 0 {
		cw.status = http.StatusOK
	}
	if cw.status < 200 || cw.status > 299 {
		return
	}
	in := requestInfo(r)
	rec := auditBase(r)
	line := lastLine(cw.tail)
	if in.streamed {
		// The last line holds the status and body the plain call answers.
		var ev api.ProgressEvent
		if err := json.Unmarshal(line, &ev); err != nil || ev.Error != nil || ev.Status < 200 || ev.Status > 299 {
			return
		}
		line = ev.Result
	}
	var a answerFields
	if rt.answer != answerNone {
		if err := json.Unmarshal(line, &a); err != nil {
			s.log.ErrorContext(r.Context(), "audit: cannot read the answer", "action", rec.Action, "err", err)
		}
	}
	switch rt.answer {
	case answerCommit:
		rec.Branch, rec.Commit = a.Branch, a.ID
	case answerBranch:
		rec.Branch, rec.Commit = a.Name, a.Head
	case answerCheckout:
		rec.Branch = a.Current
	case answerFinish:
		rec.Commit = a.Head
	case answerTransfer:
		if len(a.Error) > 0 && string(a.Error) != "null" || a.Result == nil {
			return // the transfer failed: the answer's last line says why
		}
		rec.Branch, rec.Commit = a.Result.Branch, a.Result.Head
	case answerKey:
		if a.User != nil && a.Key != nil {
			rec.Detail = "user " + a.User.Name + ", key " + a.Key.ID
		}
	case answerGC:
		if a.DryRun {
			return
		}
	}
	if rec.Detail == "" {
		rec.Detail = auditDetail(r)
	}
	if err := s.node.Audit().Append(context.WithoutCancel(r.Context()), rec); err != nil {
		s.log.ErrorContext(r.Context(), "audit: recording a change failed", "action", rec.Action, "user", rec.User, "dot", rec.Dot, "err", err)
	}
}

// auditBase is the audit record of a call as its request says it: who,
// what, which dot and branch; the answer may complete it.
func auditBase(r *http.Request) dotmesh.AuditRecord {
	in := requestInfo(r)
	rec := dotmesh.AuditRecord{User: in.principal.User, Action: in.actionName()}
	if len(in.dots) > 0 {
		rec.Dot = in.dots[0].Namespace + "/" + in.dots[0].Name
	} else if ns, dot := r.PathValue("ns"), r.PathValue("dot"); dot != "" {
		rec.Dot = ns + "/" + dot
	}
	rec.Branch = r.PathValue("branch")
	if rec.Branch == "" {
		rec.Branch = r.URL.Query().Get("branch")
	}
	return rec
}

// auditDetail is the detail of a record whose answer gave none: the
// path's user, id and subdot, and what the handler noted.
func auditDetail(r *http.Request) string {
	var parts []string
	for _, k := range []string{"user", "id", "subdot"} {
		if v := r.PathValue(k); v != "" {
			parts = append(parts, k+" "+v)
		}
	}
	if d := requestInfo(r).detail; d != "" {
		parts = append(parts, d)
	}
	return strings.Join(parts, ", ")
}
