package server

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

func (s *server) ping(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, api.Ping{Version: s.version, Backends: s.node.BackendNames(), User: principal(r).User})
}

// me answers who the caller's key authenticates as.
func (s *server) me(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, principal(r))
}

// listDots lists the dots the caller may read; with api.ListTableHeader,
// what a table shows (api.DotList): without heads and branch names, which
// were most of encoding 1,001 dots, and with the incoming transfers.
func (s *server) listDots(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	dots, err := s.node.ListDots(r.Context())
	if err == nil {
		dots, err = readable(r.Context(), s, principal(r), dots, func(d dotmesh.DotStatus) dotmesh.DotName { return d.Dot.DotName() })
	}
	table := r.Header.Get(api.ListTableHeader)
	if err != nil || (table != "1" && table != api.ListTableRows) {
		reply(w, http.StatusOK, nonNil(dots), err)
		return
	}
	// The transfers cut off are a note below the table: a listing does
	// not fail when they cannot be read (as when dm asked for them apart).
	ts, err := s.readableIncoming(r)
	if err != nil {
		s.log.WarnContext(r.Context(), "listing the incoming transfers for dm list", "err", err)
		ts = nil
	}
	if table == api.ListTableRows {
		reply(w, http.StatusOK, api.DotTable{Rows: tableRows(dots), Incoming: nonNil(ts)}, nil)
		return
	}
	for i := range dots {
		dots[i].Head, dots[i].Branches = nil, nil
	}
	reply(w, http.StatusOK, api.DotList{Dots: nonNil(dots), Incoming: nonNil(ts)}, nil)
}

// tableRows are dots as a table shows them (api.ListTableRows).
func tableRows(dots []dotmesh.DotStatus) []api.DotRow {
	rows := make([]api.DotRow, 0, len(dots))
	for _, st := range dots {
		if st.Dot == nil {
			continue
		}
		row := api.DotRow{Namespace: st.Dot.Namespace, Name: st.Dot.Name, Labels: st.Dot.Labels,
			Size: st.Usage.Size, Dirty: st.Usage.Dirty, Commits: st.Commits, Mounts: st.Mounts, Error: st.Error}
		if st.Branch != nil {
			row.Branch = st.Branch.Name
		}
		rows = append(rows, row)
	}
	return rows
}

// newDotName is the dot a CreateDotRequest names; no namespace means the
// caller's own.
func newDotName(p dotmesh.Principal, req *api.CreateDotRequest) (dotmesh.DotName, error) {
	return dotFor(p, req.Namespace, req.Name)
}

// checkCreateDot: a new dot needs owner on its name, which RoleOf gives
// in one's own namespace (and admins everywhere).
func checkCreateDot(s *server, r *http.Request, req any) ([]requirement, error) {
	name, err := newDotName(principal(r), req.(*api.CreateDotRequest))
	if err != nil {
		return nil, err
	}
	return []requirement{{dot: &name, role: dotmesh.RoleOwner}}, nil
}

func (s *server) createDot(w http.ResponseWriter, r *http.Request) {
	var req api.CreateDotRequest
	if err := readJSON(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if !s.permit(w, r, &req) {
		return
	}
	name, _ := newDotName(principal(r), &req) // checked by permit
	backend := req.Backend
	if alias, ok := s.aliases[backend]; ok {
		backend = alias
	}
	d, err := s.node.CreateDot(r.Context(), name, dotmesh.CreateDotOptions{Backend: backend})
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Location", dotPath(name))
	writeJSON(w, http.StatusCreated, d)
}

func (s *server) status(w http.ResponseWriter, r *http.Request) {
	name, ok := dotName(w, r)
	if !ok || !noQuery(w, r) {
		return
	}
	st, err := s.node.Status(r.Context(), name)
	reply(w, http.StatusOK, st, err)
}

func (s *server) deleteDot(w http.ResponseWriter, r *http.Request) {
	name, ok := dotName(w, r)
	if !ok || !noQuery(w, r) {
		return
	}
	if err := s.node.DeleteDot(r.Context(), name); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) branches(w http.ResponseWriter, r *http.Request) {
	name, ok := dotName(w, r)
	if !ok || !noQuery(w, r) {
		return
	}
	bs, err := s.node.Branches(r.Context(), name)
	reply(w, http.StatusOK, nonNil(bs), err)
}

func (s *server) createBranch(w http.ResponseWriter, r *http.Request) {
	name, req, ok := dotRequest[api.CreateBranchRequest](w, r)
	if !ok {
		return
	}
	b, err := s.node.CreateBranch(r.Context(), name, req.Name, req.From)
	reply(w, http.StatusCreated, b, err)
}

func (s *server) deleteBranch(w http.ResponseWriter, r *http.Request) {
	name, ok := dotName(w, r)
	if !ok || !noQuery(w, r) {
		return
	}
	branch := r.PathValue("branch")
	if err := dotmesh.ValidateName("branch", branch); err != nil {
		writeError(w, err)
		return
	}
	if err := s.node.DeleteBranch(r.Context(), name, branch); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) checkout(w http.ResponseWriter, r *http.Request) {
	name, req, ok := dotRequest[api.CheckoutRequest](w, r)
	if !ok {
		return
	}
	s.answerLong(w, r, http.StatusOK, func(ctx context.Context) (any, error) {
		return s.node.CheckoutReport(ctx, name, req.Branch, dotmesh.CheckoutOptions{Create: req.Create, Restart: req.Restart})
	})
}

func (s *server) commit(w http.ResponseWriter, r *http.Request) {
	name, req, ok := dotRequest[api.CommitRequest](w, r)
	if !ok {
		return
	}
	s.answerLong(w, r, http.StatusCreated, func(ctx context.Context) (any, error) {
		return s.node.Commit(ctx, name, req.Branch, dotmesh.CommitOptions{
			Message:    req.Message,
			Author:     principal(r).User,
			Metadata:   req.Metadata,
			AllowEmpty: req.AllowEmpty,
		})
	})
}

func (s *server) log_(w http.ResponseWriter, r *http.Request) {
	name, q, ok := dotQuery(w, r, "branch", "limit")
	if !ok {
		return
	}
	limit := 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, fmt.Errorf("%w: limit %q must be a whole number >= 0 (0 = all)", dotmesh.ErrInvalidArgument, v))
			return
		}
		limit = n
	}
	cs, err := s.node.Log(r.Context(), name, q.Get("branch"), limit)
	reply(w, http.StatusOK, nonNil(cs), err)
}

func (s *server) resolveRef(w http.ResponseWriter, r *http.Request) {
	name, q, ok := dotQuery(w, r, "branch")
	if !ok {
		return
	}
	c, err := s.node.ResolveRef(r.Context(), name, q.Get("branch"), r.PathValue("ref"))
	reply(w, http.StatusOK, c, err)
}

func (s *server) reset(w http.ResponseWriter, r *http.Request) {
	name, req, ok := dotRequest[api.ResetRequest](w, r)
	if !ok {
		return
	}
	s.answerLong(w, r, http.StatusOK, func(ctx context.Context) (any, error) {
		return s.node.ResetReport(ctx, name, req.Branch, req.Ref, dotmesh.ResetOptions{Hard: req.Hard, Restart: req.Restart})
	})
}

func (s *server) subdots(w http.ResponseWriter, r *http.Request) {
	name, q, ok := dotQuery(w, r, "branch")
	if !ok {
		return
	}
	subs, err := s.node.Subdots(r.Context(), name, q.Get("branch"))
	reply(w, http.StatusOK, nonNil(subs), err)
}

// checkVolume: a subdot's path (which may create the subdot) and a mount
// need write on the volume's dot; forgetting mounts found by consumer and
// id alone spans every dot: the admin's.
func checkVolume(s *server, r *http.Request, req any) ([]requirement, error) {
	var vol string
	switch req := req.(type) {
	case *api.PathRequest:
		vol = req.Volume
	case *api.MountRequest:
		vol = req.Volume
	case *api.UnmountRequest:
		if req.Volume == "" {
			return []requirement{{role: dotmesh.RoleAdmin}}, nil
		}
		vol = req.Volume
	default:
		return nil, fmt.Errorf("checkVolume: unexpected request %T", req)
	}
	v, err := parseVolumeFor(principal(r), vol)
	if err != nil {
		return nil, err
	}
	return []requirement{{dot: &v.Dot, role: dotmesh.RoleWrite}}, nil
}

func (s *server) path(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	var req api.PathRequest
	if err := readJSON(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if !s.permit(w, r, &req) {
		return
	}
	v, _ := parseVolumeFor(principal(r), req.Volume) // checked by permit
	p, err := s.node.Path(r.Context(), v)
	reply(w, http.StatusOK, api.PathResponse{Path: p}, err)
}

// dotName reads and validates the {ns} and {dot} wildcards.
func dotName(w http.ResponseWriter, r *http.Request) (dotmesh.DotName, bool) {
	name := dotmesh.DotName{Namespace: r.PathValue("ns"), Name: r.PathValue("dot")}
	if err := name.Validate(); err != nil {
		writeError(w, err)
		return name, false
	}
	return name, true
}

func dotPath(n dotmesh.DotName) string {
	return "/v1/dots/" + url.PathEscape(n.Namespace) + "/" + url.PathEscape(n.Name)
}

// query parses the query string, refusing parameters the route does not
// know and repeated ones, so a typo is an error rather than ignored.
func query(w http.ResponseWriter, r *http.Request, allowed ...string) (url.Values, bool) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, fmt.Errorf("%w: query string: %v", dotmesh.ErrInvalidArgument, err))
		return nil, false
	}
next:
	for k, vs := range q {
		for _, a := range allowed {
			if k == a {
				if len(vs) > 1 {
					writeError(w, fmt.Errorf("%w: query parameter %q is given %d times", dotmesh.ErrInvalidArgument, k, len(vs)))
					return nil, false
				}
				continue next
			}
		}
		writeError(w, fmt.Errorf("%w: unknown query parameter %q", dotmesh.ErrInvalidArgument, oneLine(k)))
		return nil, false
	}
	return q, true
}

func noQuery(w http.ResponseWriter, r *http.Request) bool {
	_, ok := query(w, r)
	return ok
}

// nonNil makes empty lists encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
