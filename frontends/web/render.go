package web

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// view is what every page template gets.
type view struct {
	Title  string
	S      *session // nil when signed out
	Crumbs []crumb
	Flash  string
	Data   any
}

type crumb struct{ Label, Href string }

// User, Admin, ReadOnly and CSRF let templates ask about the session.
func (v view) User() string   { return v.sess().p.User }
func (v view) Admin() bool    { return v.sess().p.Admin }
func (v view) ReadOnly() bool { return v.sess().p.ReadOnly }
func (v view) CSRF() string   { return v.sess().csrf }
func (v view) sess() *session {
	if v.S == nil {
		return &session{}
	}
	return v.S
}

var funcs = template.FuncMap{
	"bytes": humanBytes,
	"short": func(id any) string { // a CommitID or a string
		s := fmt.Sprint(id)
		return s[:min(12, len(s))]
	},
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"iso":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"added": addedBytes,
	"dotURL": func(d dotmesh.DotName) string {
		return Prefix + "dots/" + d.Namespace + "/" + d.Name
	},
	"mode":  func(m fs.FileMode) string { return m.String() },
	"isDir": func(m fs.FileMode) bool { return m.IsDir() },
	"join": func(a, b string) string {
		if a == "" {
			return b
		}
		return a + "/" + b
	},
	"base":       func(p string) string { return p[strings.LastIndex(p, "/")+1:] },
	"patchLines": patchLines,
	"rowChanges": rowChanges,
	"joinKey":    func(vs []string) string { return strings.Join(vs, ", ") },
}

// addedBytes is what a commit added to storage, as its backend reported
// it (Commit.Info's InfoAddedBytes); "" when the backend does not say.
func addedBytes(c *dotmesh.Commit) string {
	if n, err := strconv.ParseInt(c.Info[dotmesh.InfoAddedBytes], 10, 64); err == nil {
		return humanBytes(n)
	}
	return ""
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// parsePages parses each page template with the layout.
func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(files, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		if n == "templates/layout.html" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", n, err)
		}
		pages[strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")] = t
	}
	return pages, nil
}

// render writes a page; rendering into a buffer first means a template
// error never leaves half a page.
func (h *Handler) render(w http.ResponseWriter, status int, page string, v view) {
	t := h.pages[page]
	if t == nil {
		panic("web: no template " + page)
	}
	if v.S != nil && v.Flash == "" {
		v.Flash = h.sessions.takeFlash(v.S)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, v); err != nil {
		h.log.Error("ui template", "page", page, "err", err)
		http.Error(w, "the page could not be rendered; see the node's log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fail shows an error page: a title and one sentence saying what to do.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, s *session, status int, title, msg string) {
	h.render(w, status, "error", view{Title: title, S: s, Data: msg})
}

// done records a flash message for the next page and sends the browser
// there (POST, redirect, GET).
func (h *Handler) done(w http.ResponseWriter, r *http.Request, s *session, to, flash string) {
	h.sessions.setFlash(s, flash)
	http.Redirect(w, r, to, http.StatusSeeOther)
}

func acceptsHTML(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}
