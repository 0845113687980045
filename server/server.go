// Package server serves a dotmesh Node over the HTTP API described in
// package api. It authenticates every route but GET /healthz, decodes
// requests strictly and maps errors with api.ErrorFor.
//
// # Who may call what
//
// Every route is one entry of one route table (routes.go and the
// xxxRoutes functions beside the handlers): method and pattern, the role
// it needs, the audit action of a successful call, and the handler. Only
// register adds routes to the mux, and it panics on an entry without a
// role, so a route cannot be served without one (deny by default). The
// roles are those of a git host:
//
//   - public: GET /healthz alone.
//   - authenticated: any caller the server accepted (ping, /v1/me); lists
//     (GET /v1/dots, /v1/incoming) hold only the dots the caller may read.
//   - read on the path's {ns}/{dot}: what a clone or a browser needs —
//     status, branches, log, refs, subdots, sources, replication, and the
//     sending side of a transfer (state, commit streams, objects, fetch).
//   - write: what a push or a developer at the dot does — commit,
//     branch, checkout, reset, sources, and the receiving side of a
//     transfer (commits, have, finish). A push that creates a dot in the
//     caller's own namespace has the owner role there from Access.RoleOf.
//   - owner: delete, sharing and visibility, the audit and gc of one dot.
//   - self: a user's own keys (the {user} of the path), or an admin.
//   - admin: users, gc and verify of the node (verify reads a whole
//     backend), cluster nodes, release and take-over (they move working
//     state between nodes and lose a dead node's changes), the metrics
//     and the profiler (ops.go; a read-only admin key reaches them).
//   - body: routes whose dot is in the request (POST /v1/dots, path,
//     mounts, incoming abort, gc, POST /v1/transfers, the audit's ?dot=)
//     declare a check in the table; the handler decodes the request and
//     calls permit, which runs it, before it does anything. A new dot
//     needs owner on its name; a path or mount write; aborting what a
//     push staged write (what the push needed); POST /v1/transfers what
//     the local side of its op needs: push read, pull write, clone owner
//     of the new dot.
//
// A read-only key is refused every route that changes something. A
// refusal is 403 with a dotmesh.PermissionError (the api reason
// "permission"); for a dot the caller cannot read it is the same answer
// whether the dot exists or not. A refused call never reaches its
// handler, so it changes nothing. Without credentials a call is refused
// with 401, unless Options.AnonymousRead makes it the anonymous caller,
// who gets what Access.RoleOf gives it: read on public dots.
//
// A dot named without namespace (in a body, a volume name, a transfer)
// is in the caller's namespace, the user's name ("admin" for the admin).
//
// Each successful call of a route with an audit action appends one
// dotmesh.AuditRecord (who, what, dot, branch, commit), written by the
// table's guard from the answer, not by the handlers.
//
// # Logs and request ids
//
// Every request gets an id (the client's api.RequestIDHeader when sane,
// else a new one), answered in that header and in error bodies
// (api.Error.RequestID, a transfer's error event too) and put in the
// request's context, where LogHandler (which the daemon wraps its logger
// in) adds it to every line logged with that context, the engine's too.
// A request is logged once it is answered: at DEBUG when it succeeded,
// WARN for a 4xx, ERROR for a 5xx, with its status and error; a call
// whose streamed answer began with 200 and ended with an error (a
// transfer) is logged at the level of its error's status (error_status).
package server

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Options configure the handler.
type Options struct {
	// Logger receives one line per request; nil means slog.Default().
	Logger *slog.Logger
	// Version is reported by GET /v1/ping.
	Version string
	// BackendAliases maps extra backend names accepted in CreateDotRequest
	// to the node's backend names (the daemon maps "files" to "dump").
	BackendAliases map[string]string
	// AnonymousRead lets requests without credentials in as the
	// anonymous caller, who gets what Access.RoleOf gives it (public
	// dots: read). Off, they are refused with 401.
	AnonymousRead bool
	// Metrics, when set, is served at GET /metrics to the admin (package
	// metrics' Handler).
	Metrics http.Handler
	// Profiler serves Go's profiler (net/http/pprof) under /debug/pprof/
	// to the admin.
	Profiler bool
	// TransferIdle is how long an incoming commit stream (framed or
	// direct) may send nothing before it is cut; 0 means
	// api.TransferIdleTimeout.
	TransferIdle time.Duration
}

type server struct {
	node    *dotmesh.Node
	log     *slog.Logger
	version string
	aliases map[string]string
	auth    *authenticator
	routes  *http.ServeMux
	table   []route // every route, as registered (routes.go)

	metrics      http.Handler  // Options.Metrics
	profiler     bool          // Options.Profiler
	transferIdle time.Duration // Options.TransferIdle
}

// New returns the API handler for node.
func New(node *dotmesh.Node, opts Options) http.Handler {
	s := &server{
		node:    node,
		log:     opts.Logger,
		version: opts.Version,
		aliases: opts.BackendAliases,
		auth:    &authenticator{node: node, anonymous: opts.AnonymousRead},
		routes:  http.NewServeMux(),

		metrics:      opts.Metrics,
		profiler:     opts.Profiler,
		transferIdle: opts.TransferIdle,
	}
	if s.transferIdle <= 0 {
		s.transferIdle = api.TransferIdleTimeout
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = slog.New(LogHandler(s.log.Handler()))
	s.register()
	return s.logRequests(http.HandlerFunc(s.serve))
}

// dotRoutes are the routes of dots, branches and commits, and the
// node-wide ones beside them.
func (s *server) dotRoutes() []route {
	return []route{
		{method: "GET", pattern: "/healthz", access: accessPublic, name: "health check", h: s.healthz},
		{method: "GET", pattern: "/v1/ping", access: accessAuthenticated, name: "ping", h: s.ping},
		{method: "GET", pattern: "/v1/dots", access: accessAuthenticated, name: "list dots", h: s.listDots},
		{method: "POST", pattern: "/v1/dots", access: accessBody, check: checkCreateDot, name: "create a dot", audit: "create", h: s.createDot},
		{method: "GET", pattern: "/v1/dots/{ns}/{dot}", access: accessDot, need: dotmesh.RoleRead, name: "status", h: s.status},
		{method: "DELETE", pattern: "/v1/dots/{ns}/{dot}", access: accessDot, need: dotmesh.RoleOwner, name: "delete", audit: "delete", h: s.deleteDot},
		{method: "GET", pattern: "/v1/dots/{ns}/{dot}/branches", access: accessDot, need: dotmesh.RoleRead, name: "list branches", h: s.branches},
		{method: "POST", pattern: "/v1/dots/{ns}/{dot}/branches", access: accessDot, need: dotmesh.RoleWrite, name: "branch", audit: "branch", answer: answerBranch, h: s.createBranch},
		{method: "DELETE", pattern: "/v1/dots/{ns}/{dot}/branches/{branch}", access: accessDot, need: dotmesh.RoleWrite, name: "delete a branch", audit: "branch-delete", h: s.deleteBranch},
		{method: "POST", pattern: "/v1/dots/{ns}/{dot}/checkout", access: accessDot, need: dotmesh.RoleWrite, name: "checkout", audit: "checkout", answer: answerCheckout, h: s.checkout},
		{method: "POST", pattern: "/v1/dots/{ns}/{dot}/commits", access: accessDot, need: dotmesh.RoleWrite, name: "commit", audit: "commit", answer: answerCommit, auditInTxn: true, h: s.commit},
		{method: "GET", pattern: "/v1/dots/{ns}/{dot}/commits", access: accessDot, need: dotmesh.RoleRead, name: "log", h: s.log_},
		{method: "GET", pattern: "/v1/dots/{ns}/{dot}/refs/{ref}", access: accessDot, need: dotmesh.RoleRead, name: "resolve a ref", h: s.resolveRef},
		{method: "POST", pattern: "/v1/dots/{ns}/{dot}/reset", access: accessDot, need: dotmesh.RoleWrite, name: "reset", audit: "reset", answer: answerCommit, h: s.reset},
		{method: "POST", pattern: "/v1/dots/{ns}/{dot}/labels", access: accessDot, need: dotmesh.RoleWrite, name: "label", audit: "label", h: s.label},
		{method: "GET", pattern: "/v1/dots/{ns}/{dot}/subdots", access: accessDot, need: dotmesh.RoleRead, name: "list subdots", h: s.subdots},
		{method: "GET", pattern: "/v1/dots/{ns}/{dot}/diff", access: accessDot, need: dotmesh.RoleRead, name: "diff", h: s.diff},
		{method: "GET", pattern: "/v1/dots/{ns}/{dot}/status", access: accessDot, need: dotmesh.RoleRead, name: "working status", h: s.workingStatus},
		{method: "POST", pattern: "/v1/path", access: accessBody, check: checkVolume, name: "path", h: s.path},
		{method: "GET", pattern: "/v1/incoming", access: accessAuthenticated, name: "list incoming transfers", h: s.incoming},
		{method: "POST", pattern: "/v1/incoming/abort", access: accessBody, check: checkAbortIncoming, name: "abort an incoming transfer", audit: "incoming-abort", h: s.abortIncoming},
		{method: "POST", pattern: "/v1/gc", access: accessBody, check: checkGC, name: "gc", audit: "gc", answer: answerGC, h: s.gc},
		{method: "POST", pattern: "/v1/verify", access: accessAdmin, name: "verify", h: s.verify},
	}
}

// serve authenticates, then dispatches. Authentication comes first for
// every path (known or not) so that an anonymous caller learns nothing
// about the routes, and no handler runs before the key is checked.
func (s *server) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/healthz" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		s.routes.ServeHTTP(w, r)
		return
	}
	p, err := s.auth.authenticate(r)
	if err != nil {
		if isUnauthorized(err) {
			w.Header().Set("WWW-Authenticate", `Basic realm="dotmesh"`)
		}
		writeError(w, err)
		return
	}
	requestInfo(r).principal = p
	if _, pattern := s.routes.Handler(r); pattern == "" {
		s.noRoute(w, r)
		return
	}
	s.routes.ServeHTTP(w, r)
}

// noRoute answers a path no route matches with a JSON 404, or 405 with an
// Allow header when the path exists for other methods.
func (s *server) noRoute(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.routes.Handler(probe); pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) == 0 {
		writeErrorStatus(w, http.StatusNotFound, "not_found", fmt.Sprintf("no API route %s %s; see the api package for the routes", r.Method, r.URL.Path))
		return
	}
	w.Header().Set("Allow", strings.Join(allow, ", "))
	writeErrorStatus(w, http.StatusMethodNotAllowed, "invalid_argument", fmt.Sprintf("%s does not accept %s; use %s", r.URL.Path, r.Method, strings.Join(allow, " or ")))
}
