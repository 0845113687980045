package server

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Seeing what changed: GET .../diff and .../status (see api/diff.go).

func (s *server) diff(w http.ResponseWriter, r *http.Request) {
	name, ok := dotName(w, r)
	if !ok {
		return
	}
	opts, err := parseDiffQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, err)
		return
	}
	d, err := s.node.Changes().Diff(r.Context(), name, opts)
	reply(w, http.StatusOK, d, err)
}

func (s *server) workingStatus(w http.ResponseWriter, r *http.Request) {
	name, ok := dotName(w, r)
	if !ok {
		return
	}
	opts, err := parseStatusQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, err)
		return
	}
	st, err := s.node.Changes().Status(r.Context(), name, opts)
	reply(w, http.StatusOK, st, err)
}

// parseDiffQuery reads the query of GET .../diff: every parameter at most
// once, except path, which repeats.
func parseDiffQuery(raw string) (dotmesh.DiffOptions, error) {
	var o dotmesh.DiffOptions
	q, err := diffQuery(raw, []string{"branch", "from", "to", "path", "parent", "content", "context", "rows", "max_rows", "max_files", "max_patch_bytes"})
	if err != nil {
		return o, err
	}
	o.Branch, o.From, o.To, o.Paths = q.Get("branch"), q.Get("from"), q.Get("to"), q["path"]
	for _, b := range []struct {
		key string
		v   *bool
	}{{"parent", &o.Parent}, {"content", &o.Content}, {"rows", &o.Rows}} {
		if *b.v, err = queryBool(q, b.key); err != nil {
			return o, err
		}
	}
	for _, n := range []struct {
		key string
		v   *int
	}{{"context", &o.Context}, {"max_rows", &o.MaxRows}, {"max_files", &o.MaxFiles}, {"max_patch_bytes", &o.MaxPatchBytes}} {
		if *n.v, err = queryInt(q, n.key); err != nil {
			return o, err
		}
	}
	return o, nil
}

// parseStatusQuery reads the query of GET .../status.
func parseStatusQuery(raw string) (dotmesh.StatusOptions, error) {
	var o dotmesh.StatusOptions
	q, err := diffQuery(raw, []string{"branch", "rows"})
	if err != nil {
		return o, err
	}
	o.Branch = q.Get("branch")
	o.Rows, err = queryBool(q, "rows")
	return o, err
}

// diffQuery parses raw, refusing unknown parameters and repeats of any
// but path.
func diffQuery(raw string, allowed []string) (url.Values, error) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: query string: %v", dotmesh.ErrInvalidArgument, oneLine(err.Error()))
	}
next:
	for k, vs := range q {
		for _, a := range allowed {
			if k == a {
				if len(vs) > 1 && k != "path" {
					return nil, fmt.Errorf("%w: query parameter %q is given %d times", dotmesh.ErrInvalidArgument, k, len(vs))
				}
				continue next
			}
		}
		return nil, fmt.Errorf("%w: unknown query parameter %q", dotmesh.ErrInvalidArgument, oneLine(k))
	}
	return q, nil
}

func queryBool(q url.Values, key string) (bool, error) {
	switch v := q.Get(key); v {
	case "", "0", "false":
		return false, nil
	case "1", "true":
		return true, nil
	default:
		return false, fmt.Errorf("%w: %s=%q; give 1 or 0", dotmesh.ErrInvalidArgument, key, oneLine(v))
	}
}

func queryInt(q url.Values, key string) (int, error) {
	v := q.Get(key)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: %s=%q; give a whole number >= 0 (0: the default)", dotmesh.ErrInvalidArgument, key, oneLine(v))
	}
	return n, nil
}
