package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// maxBody bounds request bodies: every request is a few names and a
// message, so anything larger is a mistake or an attack.
const maxBody = 1 << 20

var errTooLarge = errors.New("request body too large")

// readJSON decodes the request body into v strictly: JSON content type
// (or none), one object, no unknown fields, at most maxBody bytes.
func readJSON(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return fmt.Errorf("%w: Content-Type is %q; send application/json", dotmesh.ErrInvalidArgument, ct)
		}
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return fmt.Errorf("%w: reading the request body: %v", dotmesh.ErrInvalidArgument, err)
	}
	if len(data) > maxBody {
		return fmt.Errorf("%w: %w: the limit is %d bytes", dotmesh.ErrInvalidArgument, errTooLarge, maxBody)
	}
	return decodeJSON(data, v)
}

// decodeJSON is readJSON without the HTTP: the part worth fuzzing. Errors
// are one line and say what is wrong, for people reading `dm` output.
func decodeJSON(data []byte, v any) error {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 {
		return fmt.Errorf("%w: request body is empty; send a JSON object", dotmesh.ErrInvalidArgument)
	}
	if trimmed[0] != '{' {
		return fmt.Errorf("%w: request body must be a JSON object", dotmesh.ErrInvalidArgument)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: request body: %s", dotmesh.ErrInvalidArgument, describeJSONError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: request body has data after the JSON object", dotmesh.ErrInvalidArgument)
	}
	return nil
}

func describeJSONError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d: %s", syn.Offset, oneLine(syn.Error()))
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("field %q must be %s, not JSON %s", typ.Field, typ.Type, typ.Value)
		}
		return fmt.Sprintf("expected %s, not JSON %s", typ.Type, typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "JSON ends early"
	}
	// Unknown fields and the rest: the decoder's message, minus "json: ".
	msg := err.Error()
	if len(msg) > 6 && msg[:6] == "json: " {
		msg = msg[6:]
	}
	return oneLine(msg)
}

// oneLine keeps an error message on one bounded line.
func oneLine(s string) string {
	s = string(bytes.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, []byte(s)))
	if len(s) > 200 {
		s = s[:197] + "..."
	}
	return s
}

// dotRequest reads the common shape of a POST on a dot: the dot from the
// path, no query parameters, and a strict JSON body of type T. On a bad
// request it has written the error and returns false.
func dotRequest[T any](w http.ResponseWriter, r *http.Request) (dotmesh.DotName, *T, bool) {
	name, ok := dotName(w, r)
	if !ok || !noQuery(w, r) {
		return name, nil, false
	}
	req, ok := jsonBody[T](w, r)
	return name, req, ok
}

// dotQueryRequest is dotRequest for routes that also take the query
// parameters allowed.
func dotQueryRequest[T any](w http.ResponseWriter, r *http.Request, allowed ...string) (dotmesh.DotName, url.Values, *T, bool) {
	name, q, ok := dotQuery(w, r, allowed...)
	if !ok {
		return name, nil, nil, false
	}
	req, ok := jsonBody[T](w, r)
	return name, q, req, ok
}

// dotQuery reads the dot from the path and the query parameters allowed,
// answering errors itself.
func dotQuery(w http.ResponseWriter, r *http.Request, allowed ...string) (dotmesh.DotName, url.Values, bool) {
	name, ok := dotName(w, r)
	if !ok {
		return name, nil, false
	}
	q, ok := query(w, r, allowed...)
	return name, q, ok
}

// jsonBody decodes the request body, answering the error itself.
func jsonBody[T any](w http.ResponseWriter, r *http.Request) (*T, bool) {
	req := new(T)
	if err := readJSON(r, req); err != nil {
		writeError(w, err)
		return nil, false
	}
	return req, true
}
