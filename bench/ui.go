package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/dump"
	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/frontends/web"
	"github.com/dotmesh-io/dotmesh/server"
)

// runUI measures the server time of the web UI's main pages on a node
// (in this process: bbolt registry, files backend) holding ndots dots
// and one branch of nlog commits: the dot list, the long dot's history
// (first and a middle page) and one of its commits. Target: each under
// 100 ms (medians over runs).
func runUI(ndots, nlog, runs int, keep bool) error {
	work, err := os.MkdirTemp("", "dotmesh-bench-ui-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(work)
	} else {
		fmt.Println("work directory:", work)
	}
	ctx := context.Background()
	store, err := bboltstore.Open(filepath.Join(work, "registry.db"), bboltstore.Options{NoSync: true})
	if err != nil {
		return err
	}
	be, err := dump.Open(filepath.Join(work, "dump"), dump.Options{})
	if err != nil {
		store.Close()
		return err
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	node, err := dotmesh.NewNode(ctx, dotmesh.Options{Store: store, Backends: []dotmesh.StorageBackend{be}, Logger: log})
	if err != nil {
		be.Close()
		store.Close()
		return err
	}
	defer node.Close()
	key, _, err := server.EnsureAdminKey(ctx, node, work)
	if err != nil {
		return err
	}

	start := time.Now()
	for i := 0; i < ndots; i++ {
		if _, err := node.CreateDot(ctx, dotmesh.DotName{Namespace: dotmesh.AdminUser, Name: fmt.Sprintf("d%04d", i)}, dotmesh.CreateDotOptions{}); err != nil {
			return err
		}
	}
	long := dotmesh.DotName{Namespace: dotmesh.AdminUser, Name: "long"}
	if _, err := node.CreateDot(ctx, long, dotmesh.CreateDotOptions{}); err != nil {
		return err
	}
	made := time.Since(start)
	start = time.Now()
	var middle dotmesh.CommitID
	for i := 0; i < nlog; i++ {
		c, err := node.Commit(ctx, long, "", dotmesh.CommitOptions{AllowEmpty: true, Message: fmt.Sprint("commit ", i), Metadata: map[string]string{"i": fmt.Sprint(i)}})
		if err != nil {
			return err
		}
		if i == nlog/2 {
			middle = c.ID
		}
	}
	fmt.Printf("ui: %d dots made in %v, %d commits in %v\n", ndots+1, made.Round(time.Millisecond), nlog, time.Since(start).Round(time.Millisecond))

	ui, err := web.New(node, web.Options{Logger: log})
	if err != nil {
		return err
	}
	cookie, err := uiSignIn(ui, key)
	if err != nil {
		return err
	}
	skip := (nlog / 2 / 50) * 50
	pages := []struct{ name, path string }{
		{fmt.Sprintf("dot list (%d dots)", ndots+1), "/ui/"},
		{fmt.Sprintf("dot history, first page (%d commits)", nlog), "/ui/dots/admin/long"},
		{fmt.Sprintf("dot history, page at %d", skip), fmt.Sprintf("/ui/dots/admin/long?skip=%d", skip)},
		{"commit page (files, changes)", "/ui/dots/admin/long/commits/" + string(middle)},
		{"changes page (working state against HEAD)", "/ui/dots/admin/long/changes"},
	}
	v := newVerdicts("ui")
	for _, p := range pages {
		var ds []time.Duration
		for i := 0; i < runs; i++ {
			req := httptest.NewRequest("GET", p.path, nil)
			req.AddCookie(cookie)
			rec := httptest.NewRecorder()
			t0 := time.Now()
			ui.ServeHTTP(rec, req)
			ds = append(ds, time.Since(t0))
			if rec.Code != http.StatusOK {
				return fmt.Errorf("%s: status %d: %s", p.path, rec.Code, firstLine(rec.Body.String()))
			}
		}
		m := median(ds)
		fmt.Printf("ui: %s: median %v (min %v, max %v) over %d runs\n", p.name, m.Round(100*time.Microsecond), minD(ds).Round(100*time.Microsecond), maxD(ds).Round(100*time.Microsecond), runs)
		v.row(p.name+": ms", float64(m.Microseconds())/1000, "<= 100", m <= 100*time.Millisecond)
	}
	return v.flush()
}

var tokenRe = regexp.MustCompile(`name="token" value="([^"]+)"`)

// uiSignIn signs the admin in through the UI's form and returns the
// session cookie.
func uiSignIn(ui http.Handler, key string) (*http.Cookie, error) {
	rec := httptest.NewRecorder()
	ui.ServeHTTP(rec, httptest.NewRequest("GET", "/ui/signin", nil))
	m := tokenRe.FindStringSubmatch(rec.Body.String())
	if m == nil {
		return nil, fmt.Errorf("the sign-in page has no form token")
	}
	form := url.Values{"token": {m[1]}, "user": {dotmesh.AdminUser}, "key": {key}}
	req := httptest.NewRequest("POST", "/ui/signin", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range rec.Result().Cookies() {
		req.AddCookie(c)
	}
	rec = httptest.NewRecorder()
	ui.ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		if c.Name == "dm_session" && c.Value != "" {
			return c, nil
		}
	}
	return nil, fmt.Errorf("signing in to the UI: status %d: %s", rec.Code, firstLine(rec.Body.String()))
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
