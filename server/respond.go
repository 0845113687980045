package server

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// writeJSON sends v with status. Encoding our own types cannot fail in a
// way the client could act on, so a write error is only logged by the
// request logger through the status already sent.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError maps err to its status and api.Error body.
func writeError(w http.ResponseWriter, err error) {
	status, body := api.ErrorFor(err)
	if errors.Is(err, errTooLarge) {
		status = http.StatusRequestEntityTooLarge
	}
	if rec := recorderOf(w); rec != nil {
		rec.err = err
		body.RequestID = rec.id
	}
	writeJSON(w, status, body)
}

func writeErrorStatus(w http.ResponseWriter, status int, code, msg string) {
	body := api.Error{Error: msg, Code: code}
	if rec := recorderOf(w); rec != nil {
		body.RequestID = rec.id
	}
	writeJSON(w, status, body)
}

func isUnauthorized(err error) bool { return errors.Is(err, dotmesh.ErrUnauthorized) }

// reply writes v with status, or err when it is not nil: the last step of
// nearly every handler.
func reply(w http.ResponseWriter, status int, v any, err error) {
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, status, v)
}
