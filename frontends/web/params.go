package web

import (
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Page sizes: enough for a screen, small enough to stay fast.
const (
	dotsPerPage    = 50
	commitsPerPage = 50
	filesPerPage   = 200
	auditPerPage   = 100
	changesShown   = 500
	maxViewBytes   = 256 << 10 // a file bigger than this is shown cut
	maxSkip        = 1 << 24   // no history or list is longer than this
	maxFilterLen   = 200
)

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// dotFromPath reads {ns}/{dot} of a dot route.
func dotFromPath(r *http.Request) (dotmesh.DotName, error) {
	ns, name := r.PathValue("ns"), r.PathValue("dot")
	if err := dotmesh.ValidateName("namespace", ns); err != nil {
		return dotmesh.DotName{}, err
	}
	if err := dotmesh.ValidateName("dot", name); err != nil {
		return dotmesh.DotName{}, err
	}
	return dotmesh.DotName{Namespace: ns, Name: name}, nil
}

// listQuery is what a paged page reads from its query string.
type listQuery struct {
	Skip   int    // entries before this page
	Filter string // dots list: a substring of ns/name
	Branch string // dot and commit pages: "" is the current branch
	Dir    string // commit page: the directory shown ("" is the root)
	After  string // commit page: the last name of the previous page
	Path   string // file page: the file
	Before string // audit: the last record id of the previous page
	Rows   bool   // changes page: count changed rows of databases
}

// parseQuery validates the query string of a page: numbers in range,
// names valid, paths clean and relative. Errors say which parameter is
// wrong.
func parseQuery(q url.Values) (listQuery, error) {
	var lq listQuery
	for k, vs := range q {
		if len(vs) != 1 {
			return lq, fmt.Errorf("%w: parameter %q given %d times; give it once", dotmesh.ErrInvalidArgument, k, len(vs))
		}
		v := vs[0]
		switch k {
		case "skip":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > maxSkip {
				return lq, fmt.Errorf("%w: skip=%q: give a whole number from 0 to %d", dotmesh.ErrInvalidArgument, v, maxSkip)
			}
			lq.Skip = n
		case "q":
			if len(v) > maxFilterLen {
				return lq, fmt.Errorf("%w: the filter is longer than %d characters", dotmesh.ErrInvalidArgument, maxFilterLen)
			}
			lq.Filter = strings.TrimSpace(v)
		case "branch":
			if v != "" {
				if err := dotmesh.ValidateName("branch", v); err != nil {
					return lq, err
				}
			}
			lq.Branch = v
		case "dir", "path", "after":
			c, err := cleanTreePath(k, v)
			if err != nil {
				return lq, err
			}
			switch k {
			case "dir":
				lq.Dir = c
			case "path":
				lq.Path = c
			default:
				if strings.Contains(c, "/") {
					return lq, fmt.Errorf("%w: after=%q is a name, not a path", dotmesh.ErrInvalidArgument, v)
				}
				lq.After = c
			}
		case "before":
			if len(v) > 128 || strings.ContainsAny(v, "/\x00") {
				return lq, fmt.Errorf("%w: before=%q is not an audit record id", dotmesh.ErrInvalidArgument, v)
			}
			lq.Before = v
		case "rows":
			if v != "0" && v != "1" {
				return lq, fmt.Errorf("%w: rows=%q: give 1 to count changed rows, 0 not to", dotmesh.ErrInvalidArgument, v)
			}
			lq.Rows = v == "1"
		case "next":
			// the sign-in page's return address, checked by safeNext
		default:
			return lq, fmt.Errorf("%w: unknown parameter %q", dotmesh.ErrInvalidArgument, k)
		}
	}
	return lq, nil
}

// cleanTreePath accepts a slash-separated path inside a commit's tree:
// relative, without "." or ".." steps or empty names, no NUL.
func cleanTreePath(what, p string) (string, error) {
	if p == "" {
		return "", nil
	}
	if len(p) > 4096 || strings.ContainsRune(p, 0) || strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("%w: %s=%q is not a path inside the commit", dotmesh.ErrInvalidArgument, what, p)
	}
	p = strings.TrimSuffix(p, "/")
	if path.Clean(p) != p || p == "." || p == ".." || strings.HasPrefix(p, "../") {
		return "", fmt.Errorf("%w: %s=%q is not a clean path inside the commit (no ., .. or empty steps)", dotmesh.ErrInvalidArgument, what, p)
	}
	return p, nil
}

// safeNext keeps the sign-in page's return address on the UI: a path
// under Prefix, nothing that a browser could read as another host.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix) || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n\x00") {
		return Prefix
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return Prefix
	}
	return next
}
