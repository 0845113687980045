package server

import (
	"log/slog"
	"net/http"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/internal/requestid"
)

// LogHandler wraps h so that every record logged with the context of an
// API request carries the request's id as request_id; see
// requestid.LogHandler.
func LogHandler(h slog.Handler) slog.Handler { return requestid.LogHandler(h) }

// requestIDFor keeps a sane id the client sent, else makes one.
func requestIDFor(r *http.Request) string { return requestid.Accept(r.Header.Get(api.RequestIDHeader)) }

// requestID is the id of request r (set by logRequests).
func requestID(r *http.Request) string { return requestid.From(r.Context()) }
