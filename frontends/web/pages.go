package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// query parses the page's query string, answering 400 when it is bad.
func (h *Handler) query(w http.ResponseWriter, r *http.Request, s *session) (listQuery, bool) {
	lq, err := parseQuery(r.URL.Query())
	if err != nil {
		h.fail(w, r, s, http.StatusBadRequest, "Bad address", err.Error())
		return lq, false
	}
	return lq, true
}

// pager is the "newer / older" navigation of a paged list.
type pager struct {
	Skip, Shown, Per int
	More             bool
	Prev, Next       string // URLs, "" at the ends
}

func newPager(base string, extra string, skip, shown, per int, more bool) pager {
	p := pager{Skip: skip, Shown: shown, Per: per, More: more}
	link := func(n int) string {
		u := base + "?skip=" + fmt.Sprint(n)
		if extra != "" {
			u += "&" + extra
		}
		return u
	}
	if skip > 0 {
		p.Prev = link(max(0, skip-per))
	}
	if more {
		p.Next = link(skip + per)
	}
	return p
}

type dotRow struct {
	Name dotmesh.DotName
	St   *dotmesh.DotStatus // nil when the dot went while listing
	Role dotmesh.Role
}

// Shared reports whether the row is someone else's dot shared with the
// caller (read or write), which the list marks.
func (r dotRow) Shared() bool { return r.Role < dotmesh.RoleOwner }

func (h *Handler) dotsPage(w http.ResponseWriter, r *http.Request, rq *req) {
	lq, ok := h.query(w, r, rq.s)
	if !ok {
		return
	}
	// Names are cheap; the status of a dot (its usage, its head) is
	// read only for the page shown.
	ctx := r.Context()
	names, err := h.node.DotNames(ctx)
	if err != nil {
		h.engineError(w, r, rq.s, err)
		return
	}
	roles, err := h.node.Access().Roles(ctx, rq.s.p, names)
	if err != nil {
		h.engineError(w, r, rq.s, err)
		return
	}
	filter := strings.ToLower(lq.Filter)
	var shown []dotRow
	for i, name := range names {
		if roles[i] < dotmesh.RoleRead {
			continue
		}
		if filter != "" && !strings.Contains(strings.ToLower(name.String()), filter) {
			continue
		}
		shown = append(shown, dotRow{Name: name, Role: roles[i]})
	}
	total := len(shown)
	start := min(lq.Skip, total)
	end := min(start+dotsPerPage, total)
	rows := shown[start:end]
	for i := range rows {
		st, err := h.node.Status(ctx, rows[i].Name)
		if err != nil {
			if errors.Is(err, dotmesh.ErrNotFound) { // deleted meanwhile
				continue
			}
			h.engineError(w, r, rq.s, err)
			return
		}
		rows[i].St = st
	}
	extra := ""
	if lq.Filter != "" {
		extra = "q=" + urlQueryEscape(lq.Filter)
	}
	h.render(w, http.StatusOK, "dots", view{Title: "Dots", S: rq.s, Data: map[string]any{
		"Rows": rows, "Total": total, "Filter": lq.Filter, "From": start + 1, "To": end,
		"Pager": newPager(Prefix, extra, start, end-start, dotsPerPage, end < total),
	}})
}

// commands are the dm commands that get a dot, ready to copy.
func commands(r *http.Request, user string, dot dotmesh.DotName, branch string) []string {
	b := ""
	if branch != "" && branch != dotmesh.DefaultBranch {
		b = " " + branch
	}
	return []string{
		"dm remote add hub " + user + "@" + r.Host,
		"dm clone hub " + dot.String() + b,
		"dm pull hub " + dot.String() + b,
	}
}

func (h *Handler) dotPage(w http.ResponseWriter, r *http.Request, rq *req) {
	lq, ok := h.query(w, r, rq.s)
	if !ok {
		return
	}
	// Not Status: it reads the whole history to count it, and the list
	// page shows the dot's size and state already.
	ctx := r.Context()
	d, err := h.node.Dot(ctx, rq.dot)
	if err != nil {
		h.engineError(w, r, rq.s, err)
		return
	}
	branches, err := h.node.Branches(ctx, rq.dot)
	if err != nil {
		h.engineError(w, r, rq.s, err)
		return
	}
	branch := lq.Branch
	if branch == "" {
		branch = d.Current
	}
	page, more, err := h.node.LogPage(ctx, rq.dot, branch, lq.Skip, commitsPerPage)
	if err != nil {
		h.engineError(w, r, rq.s, err)
		return
	}
	var reps []dotmesh.NodeReplication
	if h.node.Cluster().NodeID() != "" {
		if reps, err = h.node.Cluster().Replication(ctx, rq.dot); err != nil {
			h.log.Warn("ui: replication", "dot", rq.dot.String(), "err", err)
		}
	}
	h.render(w, http.StatusOK, "dot", view{Title: rq.dot.String(), S: rq.s, Crumbs: dotCrumbs(rq.dot), Data: map[string]any{
		"Dot": rq.dot, "D": d, "Branch": branch, "Branches": branches, "Log": page, "Role": rq.role,
		"Owner": rq.role >= dotmesh.RoleOwner, "Cmds": commands(r, rq.s.p.User, rq.dot, branch),
		"Pager":       newPager(Prefix+"dots/"+rq.dot.Namespace+"/"+rq.dot.Name, "branch="+urlQueryEscape(branch), lq.Skip, len(page), commitsPerPage, more),
		"Replication": reps, "Skip": lq.Skip,
	}})
}

func dotCrumbs(d dotmesh.DotName) []crumb {
	return []crumb{{"Dots", Prefix}, {d.String(), Prefix + "dots/" + d.Namespace + "/" + d.Name}}
}

// commitOf resolves the {commit} of the path on the query's branch.
func (h *Handler) commitOf(ctx context.Context, r *http.Request, rq *req, lq listQuery) (*dotmesh.Commit, error) {
	id := r.PathValue("commit")
	if id == "" || len(id) > 128 || strings.ContainsAny(id, "/~^") {
		return nil, fmt.Errorf("%w: %q is not a commit id", dotmesh.ErrInvalidArgument, id)
	}
	return h.node.ResolveRef(ctx, rq.dot, lq.Branch, id)
}

// commitRequest reads the query and the commit of a commit or file
// page, answering the request itself when either is bad.
func (h *Handler) commitRequest(w http.ResponseWriter, r *http.Request, rq *req) (listQuery, *dotmesh.Commit, bool) {
	lq, ok := h.query(w, r, rq.s)
	if !ok {
		return lq, nil, false
	}
	c, err := h.commitOf(r.Context(), r, rq, lq)
	if err != nil {
		h.engineError(w, r, rq.s, err)
		return lq, nil, false
	}
	return lq, c, true
}

// commitCrumbs are the breadcrumbs of a commit's pages and the commit
// page's address.
func commitCrumbs(dot dotmesh.DotName, c *dotmesh.Commit, branch string) (string, []crumb) {
	base := Prefix + "dots/" + dot.Namespace + "/" + dot.Name + "/commits/" + string(c.ID)
	return base, append(dotCrumbs(dot), crumb{string(c.ID[:min(12, len(c.ID))]), base + "?branch=" + urlQueryEscape(branch)})
}

func (h *Handler) commitPage(w http.ResponseWriter, r *http.Request, rq *req) {
	lq, c, ok := h.commitRequest(w, r, rq)
	if !ok {
		return
	}
	ctx := r.Context()
	id := string(c.ID)
	files, err := h.node.Files().List(ctx, rq.dot, lq.Branch, id, lq.Dir, lq.After, filesPerPage)
	if err != nil {
		h.engineError(w, r, rq.s, err)
		return
	}
	var diff *dotmesh.Diff
	if lq.Dir == "" && lq.After == "" {
		if diff, err = h.commitDiff(ctx, rq.dot, lq.Branch, c); err != nil {
			h.engineError(w, r, rq.s, err)
			return
		}
	}
	base, crumbs := commitCrumbs(rq.dot, c, lq.Branch)
	var dirs []crumb
	if lq.Dir != "" {
		acc := ""
		for _, part := range strings.Split(lq.Dir, "/") {
			acc = strings.TrimPrefix(acc+"/"+part, "/")
			dirs = append(dirs, crumb{part, base + "?branch=" + urlQueryEscape(lq.Branch) + "&dir=" + urlQueryEscape(acc)})
		}
	}
	next := ""
	if files.Next != "" {
		next = base + "?branch=" + urlQueryEscape(lq.Branch) + "&dir=" + urlQueryEscape(lq.Dir) + "&after=" + urlQueryEscape(files.Next)
	}
	h.render(w, http.StatusOK, "commit", view{Title: "Commit " + id, S: rq.s, Crumbs: crumbs, Data: map[string]any{
		"Dot": rq.dot, "C": c, "Branch": lq.Branch, "Dir": lq.Dir, "Dirs": dirs, "Files": files.Entries, "Next": next,
		"Diff": diff, "ShowChanges": diff != nil, "Base": base,
	}})
}

func (h *Handler) filePage(w http.ResponseWriter, r *http.Request, rq *req) {
	lq, c, ok := h.commitRequest(w, r, rq)
	if !ok {
		return
	}
	if lq.Path == "" {
		h.fail(w, r, rq.s, http.StatusBadRequest, "Bad address", "Name the file with path=DIR/NAME.")
		return
	}
	ctx := r.Context()
	data, cut, err := h.node.Files().Read(ctx, rq.dot, lq.Branch, string(c.ID), lq.Path, maxViewBytes)
	if err != nil {
		h.engineError(w, r, rq.s, err)
		return
	}
	text := utf8.Valid(data) && !strings.ContainsRune(string(data), 0)
	_, crumbs := commitCrumbs(rq.dot, c, lq.Branch)
	h.render(w, http.StatusOK, "file", view{Title: lq.Path, S: rq.s, Crumbs: crumbs, Data: map[string]any{
		"Dot": rq.dot, "C": c, "Path": lq.Path, "Text": string(data), "IsText": text, "Cut": cut, "Size": len(data), "Max": humanBytes(maxViewBytes),
	}})
}
