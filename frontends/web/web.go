// Package web is the browser frontend of a dotmesh node: server-rendered
// pages under /ui/ to browse the dots a user may read, their branches,
// history and commit trees, and to manage sharing, users, keys and the
// audit. `dm serve` mounts it on the API listener.
//
// Every page and action is declared once in the route table (routes.go)
// with the permission it needs; a route without one is refused when the
// handler is built (deny by default). A user signs in with their name
// and an API key; the session lives in memory on the node, behind an
// HttpOnly, SameSite=Strict cookie, and every form that changes
// something carries the session's CSRF token. Assets are embedded;
// nothing is fetched from other hosts and no script runs.
package web

import (
	"context"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Prefix is where the UI is mounted.
const Prefix = "/ui/"

// Node is what the UI needs of the engine (a *dotmesh.Node).
type Node interface {
	DotNames(ctx context.Context) ([]dotmesh.DotName, error)
	Dot(ctx context.Context, name dotmesh.DotName) (*dotmesh.Dot, error)
	Status(ctx context.Context, name dotmesh.DotName) (*dotmesh.DotStatus, error)
	Branches(ctx context.Context, name dotmesh.DotName) ([]*dotmesh.Branch, error)
	LogPage(ctx context.Context, name dotmesh.DotName, branch string, skip, limit int) ([]*dotmesh.Commit, bool, error)
	ResolveRef(ctx context.Context, name dotmesh.DotName, branch, ref string) (*dotmesh.Commit, error)
	Users() *dotmesh.Users
	APIKeys() *dotmesh.APIKeys
	Access() *dotmesh.Access
	Audit() *dotmesh.Audit
	Files() *dotmesh.Files
	Changes() *dotmesh.Changes
	Cluster() *dotmesh.Cluster
	TransferPeer() *dotmesh.TransferPeer
}

// Options configure a Handler. Zero values take the defaults.
type Options struct {
	Logger *slog.Logger
	// IdleTimeout ends a session not used for this long (default 30m);
	// MaxAge ends any session this long after sign-in (default 12h).
	IdleTimeout, MaxAge time.Duration
	// Failures is how many failed sign-ins a user name or an address may
	// make within FailureWindow before further attempts are refused until
	// the window has passed (defaults 5 and 15m).
	Failures      int
	FailureWindow time.Duration
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// Handler serves the UI.
type Handler struct {
	node     Node
	log      *slog.Logger
	opts     Options
	mux      *http.ServeMux
	pages    map[string]*template.Template
	sessions *sessions
	throttle *throttle
	static   http.Handler
}

//go:embed assets templates
var files embed.FS

// New builds the UI over node. It fails if a route lacks a permission.
func New(node Node, opts Options) (*Handler, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 30 * time.Minute
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = 12 * time.Hour
	}
	if opts.Failures <= 0 {
		opts.Failures = 5
	}
	if opts.FailureWindow <= 0 {
		opts.FailureWindow = 15 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h := &Handler{node: node, log: opts.Logger, opts: opts, mux: http.NewServeMux()}
	h.sessions = newSessions(opts.IdleTimeout, opts.MaxAge, opts.Now)
	h.throttle = newThrottle(opts.Failures, opts.FailureWindow, opts.Now)
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	h.pages = pages
	assets, err := fs.Sub(files, "assets")
	if err != nil {
		return nil, err
	}
	h.static = http.StripPrefix(Prefix+"assets/", http.FileServerFS(assets))
	for _, rt := range h.routes() {
		if err := rt.check(); err != nil {
			return nil, err
		}
		h.mux.Handle(rt.method+" "+rt.pattern, h.guard(rt))
	}
	return h, nil
}

// ServeHTTP sets the security headers every answer carries and routes.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	if _, pattern := h.mux.Handler(r); pattern == "" {
		h.fail(w, r, nil, http.StatusNotFound, "No such page", fmt.Sprintf("%s is not a page of this node's UI; start from the list of dots.", r.URL.Path))
		return
	}
	h.mux.ServeHTTP(w, r)
}

// Mount returns a handler that serves the UI under Prefix, sends
// browsers asking for "/" there, and passes everything else to api.
func Mount(ui http.Handler, api http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(Prefix, ui)
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead) && acceptsHTML(r) {
			http.Redirect(w, r, Prefix, http.StatusSeeOther)
			return
		}
		api.ServeHTTP(w, r)
	}))
	return mux
}
