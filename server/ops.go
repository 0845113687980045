package server

import (
	"net/http"
	"net/http/pprof"
	"time"
)

// opsRoutes are the operator's: the metrics (Options.Metrics) and Go's
// profiler (Options.Profiler), both for the admin only. A read-only admin
// key reaches them, as they change nothing: give Prometheus one of
// those. Without the option the route does not exist (404).
func (s *server) opsRoutes() []route {
	var rs []route
	if s.metrics != nil {
		rs = append(rs, route{method: "GET", pattern: "/metrics", access: accessAdmin, name: "read the metrics", h: s.metrics.ServeHTTP})
	}
	if s.profiler {
		// pprof.Index serves the named profiles under /debug/pprof/ too.
		rs = append(rs,
			route{method: "GET", pattern: "/debug/pprof/", access: accessAdmin, name: "profile the node", h: pprof.Index},
			route{method: "GET", pattern: "/debug/pprof/cmdline", access: accessAdmin, name: "profile the node", h: pprof.Cmdline},
			route{method: "GET", pattern: "/debug/pprof/profile", access: accessAdmin, name: "profile the node", h: s.longProfile(pprof.Profile)},
			route{method: "GET", pattern: "/debug/pprof/symbol", access: accessAdmin, name: "profile the node", h: pprof.Symbol},
			route{method: "POST", pattern: "/debug/pprof/symbol", access: accessAdmin, name: "profile the node", h: pprof.Symbol},
			route{method: "GET", pattern: "/debug/pprof/trace", access: accessAdmin, name: "profile the node", h: s.longProfile(pprof.Trace)},
		)
	}
	return rs
}

// longProfile lifts the server's write deadline for a profile that runs
// for ?seconds=N.
func (s *server) longProfile(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
		h(w, r)
	}
}
