package web

import (
	"context"
	"net/http"
	"strings"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// What the commit and changes pages show of a diff: enough to read in a
// browser, with dm diff for the rest.
const (
	diffPatchBytes = 64 << 10 // per file
	diffRowsShown  = 50       // per table
)

// commitDiff is what commit c changed: its diff against its parent, as
// `dm show` has it (patches of text files, schema and rows of
// databases); a first commit, or one whose parent gc removed, against
// nothing, so everything in it shows as added.
func (h *Handler) commitDiff(ctx context.Context, dot dotmesh.DotName, branch string, c *dotmesh.Commit) (*dotmesh.Diff, error) {
	return h.node.Changes().Diff(ctx, dot, dotmesh.DiffOptions{
		Branch: branch, To: string(c.ID), Parent: true,
		Content: true, Rows: true, MaxRows: diffRowsShown, MaxFiles: changesShown, MaxPatchBytes: diffPatchBytes,
	})
}

// patchLine is one line of a patch with its class: "add", "del", "hunk",
// "hdr" or "" for context.
type patchLine struct{ Class, Text string }

// patchLines splits a unified diff for the template.
func patchLines(patch string) []patchLine {
	lines := strings.Split(strings.TrimSuffix(patch, "\n"), "\n")
	out := make([]patchLine, len(lines))
	for i, l := range lines {
		c := ""
		switch {
		case i < 2 && (strings.HasPrefix(l, "--- ") || strings.HasPrefix(l, "+++ ")):
			c = "hdr"
		case strings.HasPrefix(l, "@@"):
			c = "hunk"
		case strings.HasPrefix(l, "+"):
			c = "add"
		case strings.HasPrefix(l, "-"):
			c = "del"
		}
		out[i] = patchLine{c, l}
	}
	return out
}

// rowChanges renders an updated row's changed columns: "col: old → new".
func rowChanges(t dotmesh.TableDiff, r dotmesh.RowChange) []string {
	var out []string
	for _, col := range r.Changed {
		i := -1
		for j, c := range t.Columns {
			if c == col {
				i = j
			}
		}
		if i < 0 || i >= len(r.Old) || i >= len(r.New) {
			out = append(out, col)
			continue
		}
		out = append(out, col+": "+r.Old[i]+" → "+r.New[i])
	}
	return out
}

// changesPage shows the working state of a branch against its head, as
// `dm status` does; ?rows=1 counts changed rows of database subdots.
func (h *Handler) changesPage(w http.ResponseWriter, r *http.Request, rq *req) {
	lq, ok := h.query(w, r, rq.s)
	if !ok {
		return
	}
	st, err := h.node.Changes().Status(r.Context(), rq.dot, dotmesh.StatusOptions{Branch: lq.Branch, Rows: lq.Rows})
	if err != nil {
		h.engineError(w, r, rq.s, err)
		return
	}
	hasDB := false
	for _, sd := range st.Subdots {
		hasDB = hasDB || sd.Kind != "files"
	}
	h.render(w, http.StatusOK, "changes", view{Title: "Changes of " + rq.dot.String(), S: rq.s, Crumbs: dotCrumbs(rq.dot), Data: map[string]any{
		"Dot": rq.dot, "St": st, "Rows": lq.Rows, "HasDB": hasDB,
	}})
}
