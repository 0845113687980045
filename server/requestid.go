package server

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/internal/requestid"
)

// maxRequestID bounds an id a client sends.
const maxRequestID = 64

// LogHandler wraps h so that every record logged with the context of an
// API request carries the request's id as request_id; see
// requestid.LogHandler.
func LogHandler(h slog.Handler) slog.Handler { return requestid.LogHandler(h) }

// requestIDFor keeps a sane incoming id (one that is safe in a log line
// and a header), else makes a new one.
func requestIDFor(r *http.Request) string {
	if id := r.Header.Get(api.RequestIDHeader); saneRequestID(id) {
		return id
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func saneRequestID(id string) bool {
	if id == "" || len(id) > maxRequestID {
		return false
	}
	for _, c := range []byte(id) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// requestID is the id of request r (set by logRequests).
func requestID(r *http.Request) string { return requestid.From(r.Context()) }
