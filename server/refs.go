package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// refRoutes are the routes of tags, a ref's history and branch renames.
func (s *server) refRoutes() []route {
	return []route{
		{method: "GET", pattern: "/v1/dots/{ns}/{dot}/tags", access: accessDot, need: dotmesh.RoleRead, name: "list tags", h: s.tags},
		{method: "POST", pattern: "/v1/dots/{ns}/{dot}/tags", access: accessDot, need: dotmesh.RoleWrite, name: "tag", audit: "tag", h: s.createTag},
		{method: "DELETE", pattern: "/v1/dots/{ns}/{dot}/tags/{tag}", access: accessDot, need: dotmesh.RoleWrite, name: "delete a tag", audit: "tag-delete", h: s.deleteTag},
		{method: "POST", pattern: "/v1/dots/{ns}/{dot}/branches/{branch}/rename", access: accessDot, need: dotmesh.RoleWrite, name: "rename a branch", audit: "branch-rename", answer: answerBranch, h: s.renameBranch},
		{method: "GET", pattern: "/v1/dots/{ns}/{dot}/history", access: accessDot, need: dotmesh.RoleRead, name: "log", h: s.history},
	}
}

func (s *server) tags(w http.ResponseWriter, r *http.Request) {
	name, ok := dotName(w, r)
	if !ok || !noQuery(w, r) {
		return
	}
	ts, err := s.node.Tags().List(r.Context(), name)
	reply(w, http.StatusOK, nonNil(ts), err)
}

func (s *server) createTag(w http.ResponseWriter, r *http.Request) {
	name, req, ok := dotRequest[api.TagRequest](w, r)
	if !ok {
		return
	}
	t, err := s.node.Tags().Create(r.Context(), name, req.Name, dotmesh.TagOptions{
		Branch: req.Branch, Ref: req.Ref, Message: req.Message, Author: principal(r).User,
	})
	reply(w, http.StatusCreated, t, err)
}

func (s *server) deleteTag(w http.ResponseWriter, r *http.Request) {
	name, ok := dotName(w, r)
	if !ok || !noQuery(w, r) {
		return
	}
	if err := s.node.Tags().Delete(r.Context(), name, r.PathValue("tag")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) renameBranch(w http.ResponseWriter, r *http.Request) {
	name, req, ok := dotRequest[api.RenameBranchRequest](w, r)
	if !ok {
		return
	}
	b, err := s.node.RenameBranch(r.Context(), name, r.PathValue("branch"), req.Name)
	reply(w, http.StatusOK, b, err)
}

func (s *server) history(w http.ResponseWriter, r *http.Request) {
	name, q, ok := dotQuery(w, r, "branch", "ref", "skip", "limit")
	if !ok {
		return
	}
	var skip, limit int
	for _, p := range []struct {
		key string
		v   *int
	}{{"skip", &skip}, {"limit", &limit}} {
		if v := q.Get(p.key); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				writeError(w, fmt.Errorf("%w: %s %q must be a whole number >= 0", dotmesh.ErrInvalidArgument, p.key, oneLine(v)))
				return
			}
			*p.v = n
		}
	}
	cs, more, err := s.node.HistoryJSON(r.Context(), name, q.Get("branch"), q.Get("ref"), skip, limit)
	if err != nil {
		writeError(w, err)
		return
	}
	dec, err := s.node.Decorations(r.Context(), name)
	if err != nil {
		writeError(w, err)
		return
	}
	d, err := s.node.Dot(r.Context(), name)
	if err != nil {
		writeError(w, err)
		return
	}
	refs := map[dotmesh.CommitID][]string{}
	for _, c := range cs {
		if d := dec[c.ID]; len(d) > 0 {
			refs[c.ID] = d
		}
	}
	if api.WantsHistoryLines(r.Header.Get("Accept")) {
		writeHistoryLines(w, cs, more, refs, d.Current)
		return
	}
	writeHistoryPage(w, cs, more, refs, d.Current)
}

// writeHistoryLines writes a history page as api.HistoryLines: a
// HistoryHead line, then each commit's JSON on a line of its own.
func writeHistoryLines(w http.ResponseWriter, cs []dotmesh.CommitJSON, more bool, refs map[dotmesh.CommitID][]string, current string) {
	head, err := json.Marshal(api.HistoryHead{Count: len(cs), More: more, Refs: refs, Current: current})
	if err != nil {
		writeError(w, fmt.Errorf("encoding a history page: %v", err)) // only our own types
		return
	}
	w.Header().Set("Content-Type", api.HistoryLines)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	b := bufio.NewWriterSize(w, 64<<10)
	b.Write(head)
	b.WriteByte('\n')
	for _, c := range cs {
		b.Write(c.JSON) // one line (dotmesh.CommitJSON)
		b.WriteByte('\n')
	}
	_ = b.Flush() // a client gone: nothing to tell it
}

// writeHistoryPage writes an api.HistoryPage whose commits are JSON
// already: the commits as they are, the rest encoded as the type says,
// and before the commits, so that a client can print each commit with
// its decorations as it arrives (client.HistoryEach) instead of keeping
// thousands until the answer ends.
func writeHistoryPage(w http.ResponseWriter, cs []dotmesh.CommitJSON, more bool, refs map[dotmesh.CommitID][]string, current string) {
	rest, err := json.Marshal(api.HistoryPage{More: more, Refs: refs, Current: current})
	if err != nil || !bytes.HasPrefix(rest, []byte(`{"commits":null`)) || rest[len(rest)-1] != '}' {
		writeError(w, fmt.Errorf("encoding a history page: %v (%.40s)", err, rest)) // only our own types
		return
	}
	rest = rest[len(`{"commits":null`) : len(rest)-1] // "" or `,"more":true,…`
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	// Written through a buffer as the records are, not gathered into one
	// slice first: a page of 10,000 commits was a 5 MB copy before its
	// first byte went out.
	b := bufio.NewWriterSize(w, 64<<10)
	b.WriteByte('{')
	if len(rest) > 0 {
		b.Write(rest[1:])
		b.WriteByte(',')
	}
	b.WriteString(`"commits":[`)
	for i, c := range cs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(c.JSON)
	}
	b.WriteString("]}\n")
	_ = b.Flush() // a client gone: nothing to tell it
}
