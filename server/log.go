package server

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/internal/requestid"
)

// recorder remembers what a handler answered, for the request log.
type recorder struct {
	http.ResponseWriter
	status int
	err    error
	id     string // the request's id, for error bodies
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
	streamed  bool              // the answer is an NDJSON stream of api.ProgressEvent (answer)
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

// logRequests gives every request its id (the context, the
// RequestIDHeader of the answer, error bodies) and logs its method, path,
// status, duration and user: at DEBUG when it succeeded, at WARN when it
// failed with a 4xx and at ERROR with a 5xx. A call whose answer started
// with 200 before it failed (a transfer's NDJSON stream ends with its
// error) is logged as the failure it is, at the level of the status its
// error maps to (error_status). Credentials live only in headers, which
// are never logged.
func (s *server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		in := &info{}
		id := requestIDFor(r)
		ctx := context.WithValue(r.Context(), infoKey{}, in)
		r = r.WithContext(requestid.With(ctx, id))
		w.Header().Set(api.RequestIDHeader, id)
		rec := &recorder{ResponseWriter: w, id: id}
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
		failed := rec.status
		if rec.err != nil {
			if failed < 400 {
				failed, _ = api.ErrorFor(rec.err)
				attrs = append(attrs, slog.Int("error_status", failed))
			}
			attrs = append(attrs, slog.String("err", rec.err.Error()))
		}
		s.log.LogAttrs(r.Context(), levelFor(failed), "http request", attrs...)
	})
}

// levelFor is the log level of a request that ended with status.
func levelFor(status int) slog.Level {
	switch {
	case status >= 500:
		return slog.LevelError
	case status >= 400:
		return slog.LevelWarn
	}
	return slog.LevelDebug
}
