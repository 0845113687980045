package server

import (
	"log/slog"
	"net/http"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// RouteSpec is a route table entry as tests see it.
type RouteSpec struct {
	Method, Pattern string
	Access          string // public, authenticated, dot, self, admin, body
	Need            dotmesh.Role
	Audit           string
}

// RouteTable returns the server's route table and its mux.
func RouteTable() ([]RouteSpec, *http.ServeMux) {
	s := &server{routes: http.NewServeMux(), log: slog.Default()}
	s.register()
	names := map[access]string{accessPublic: "public", accessAuthenticated: "authenticated", accessDot: "dot", accessSelf: "self", accessAdmin: "admin", accessBody: "body"}
	var out []RouteSpec
	for _, rt := range s.table {
		out = append(out, RouteSpec{Method: rt.method, Pattern: rt.pattern, Access: names[rt.access], Need: rt.need, Audit: rt.audit})
	}
	return out, s.routes
}

// ValidateRoute runs the check register applies to every route; it
// panics on a route the table cannot enforce.
func ValidateRoute(method, pattern, kind string) {
	kinds := map[string]access{"public": accessPublic, "dot": accessDot, "self": accessSelf, "body": accessBody, "": 0}
	rt := route{method: method, pattern: pattern, access: kinds[kind], name: "x", h: func(http.ResponseWriter, *http.Request) {}}
	rt.validate()
}
