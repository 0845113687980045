// Package server serves a dotmesh Node over the HTTP API described in
// package api. It authenticates every route but GET /healthz, decodes
// requests strictly and maps errors with api.ErrorFor.
package server

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"

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
}

type server struct {
	node    *dotmesh.Node
	log     *slog.Logger
	version string
	aliases map[string]string
	auth    *authenticator
	routes  *http.ServeMux
}

// New returns the API handler for node.
func New(node *dotmesh.Node, opts Options) http.Handler {
	s := &server{
		node:    node,
		log:     opts.Logger,
		version: opts.Version,
		aliases: opts.BackendAliases,
		auth:    newAuthenticator(node),
		routes:  http.NewServeMux(),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.register()
	s.registerMounts()
	return s.logRequests(http.HandlerFunc(s.serve))
}

func (s *server) register() {
	m := s.routes
	m.HandleFunc("GET /healthz", s.healthz)
	m.HandleFunc("GET /v1/ping", s.ping)
	m.HandleFunc("GET /v1/dots", s.listDots)
	m.HandleFunc("POST /v1/dots", s.createDot)
	m.HandleFunc("GET /v1/dots/{ns}/{dot}", s.status)
	m.HandleFunc("DELETE /v1/dots/{ns}/{dot}", s.deleteDot)
	m.HandleFunc("GET /v1/dots/{ns}/{dot}/branches", s.branches)
	m.HandleFunc("POST /v1/dots/{ns}/{dot}/branches", s.createBranch)
	m.HandleFunc("DELETE /v1/dots/{ns}/{dot}/branches/{branch}", s.deleteBranch)
	m.HandleFunc("POST /v1/dots/{ns}/{dot}/checkout", s.checkout)
	m.HandleFunc("POST /v1/dots/{ns}/{dot}/commits", s.commit)
	m.HandleFunc("GET /v1/dots/{ns}/{dot}/commits", s.log_)
	m.HandleFunc("GET /v1/dots/{ns}/{dot}/refs/{ref}", s.resolveRef)
	m.HandleFunc("POST /v1/dots/{ns}/{dot}/reset", s.reset)
	m.HandleFunc("GET /v1/dots/{ns}/{dot}/subdots", s.subdots)
	m.HandleFunc("POST /v1/path", s.path)
	s.registerTransfers()
	s.registerCluster()
	m.HandleFunc("GET /v1/incoming", s.incoming)
	m.HandleFunc("POST /v1/incoming/abort", s.abortIncoming)
	m.HandleFunc("POST /v1/gc", s.gc)
	m.HandleFunc("POST /v1/verify", s.verify)
	s.registerSources()
}

// serve authenticates, then dispatches. Authentication comes first for
// every path (known or not) so that an anonymous caller learns nothing
// about the routes, and no handler runs before the key is checked.
func (s *server) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/healthz" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		s.routes.ServeHTTP(w, r)
		return
	}
	user, err := s.auth.authenticate(r)
	if err != nil {
		if isUnauthorized(err) {
			w.Header().Set("WWW-Authenticate", `Basic realm="dotmesh"`)
		}
		writeError(w, err)
		return
	}
	requestInfo(r).user = user
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
