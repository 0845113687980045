package server

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// recorder remembers what a handler answered, for the request log.
type recorder struct {
	http.ResponseWriter
	status int
	err    error
}

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 && (status < 100 || status > 199) { // not a keep-alive
		r.status = status
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// recorderOf finds the recorder among w and the writers it wraps.
func recorderOf(w http.ResponseWriter) *recorder {
	for {
		switch v := w.(type) {
		case *recorder:
			return v
		case interface{ Unwrap() http.ResponseWriter }:
			w = v.Unwrap()
		default:
			return nil
		}
	}
}

// info is per-request state shared between the logger, the route guard
// and the handlers.
type info struct {
	principal dotmesh.Principal // who calls (set by serve)
	route     *route            // the route table's entry (set by guard)
	checked   bool              // a body route ran its check (permit)
	dots      []dotmesh.DotName // the dots the call was allowed on
	action    string            // refines the route's audit action (a transfer's op)
	detail    string            // more words for the audit record
}

// actionName is what the call does: the action a check refined, else the
// route's audit action, else its name.
func (i *info) actionName() string {
	switch {
	case i.action != "":
		return i.action
	case i.route == nil:
		return ""
	case i.route.audit != "":
		return i.route.audit
	}
	return i.route.name
}

type infoKey struct{}

func requestInfo(r *http.Request) *info {
	if i, ok := r.Context().Value(infoKey{}).(*info); ok {
		return i
	}
	return &info{}
}

// logRequests logs method, path, status, duration and user of every
// request. Credentials live only in headers, which are never logged.
func (s *server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		in := &info{}
		r = r.WithContext(context.WithValue(r.Context(), infoKey{}, in))
		rec := &recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		attrs := []slog.Attr{
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", rec.status),
			slog.Duration("duration", time.Since(start)),
			slog.String("remote", r.RemoteAddr),
		}
		if in.principal.User != "" {
			attrs = append(attrs, slog.String("user", in.principal.User))
		}
		level := slog.LevelInfo
		if rec.status >= 500 {
			level = slog.LevelError
		}
		if rec.err != nil {
			attrs = append(attrs, slog.String("err", rec.err.Error()))
		}
		s.log.LogAttrs(r.Context(), level, "http request", attrs...)
	})
}
