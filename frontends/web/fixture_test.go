package web

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/backend/dump"
	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/server"
)

// hub is a real node (bbolt registry, files backend) serving the API
// and the UI over TLS, as `dm serve` does.
type hub struct {
	t        *testing.T
	dir      string
	node     *dotmesh.Node
	ui       *Handler
	srv      *httptest.Server
	adminKey string
	clock    *clock
}

// clock is a settable time for expiry tests.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func newHub(t *testing.T, opts Options) *hub {
	t.Helper()
	dir := t.TempDir()
	store, err := bboltstore.Open(filepath.Join(dir, "registry.db"), bboltstore.Options{NoSync: true})
	require.NoError(t, err)
	be, err := dump.Open(filepath.Join(dir, "dump"), dump.Options{})
	require.NoError(t, err)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	node, err := dotmesh.NewNode(context.Background(), dotmesh.Options{Store: store, Backends: []dotmesh.StorageBackend{be}, Logger: log})
	require.NoError(t, err)
	t.Cleanup(func() { node.Close() })
	key, _, err := server.EnsureAdminKey(context.Background(), node, dir)
	require.NoError(t, err)
	c := &clock{now: time.Now()}
	if opts.Now == nil {
		opts.Now = c.Now
	}
	opts.Logger = log
	ui, err := New(node, opts)
	require.NoError(t, err)
	srv := httptest.NewTLSServer(Mount(ui, server.New(node, server.Options{Logger: log})))
	t.Cleanup(srv.Close)
	return &hub{t: t, dir: dir, node: node, ui: ui, srv: srv, adminKey: key, clock: c}
}

// addUser makes a user and returns their first key's secret.
func (h *hub) addUser(name string) string {
	h.t.Helper()
	_, _, secret, err := h.node.Users().Add(context.Background(), name, "first")
	require.NoError(h.t, err)
	return secret
}

// subdotPath is the working directory of dot's default subdot.
func (h *hub) subdotPath(dot dotmesh.DotName) string {
	h.t.Helper()
	p, err := h.node.SubdotPath(context.Background(), dotmesh.VolumeName{Dot: dot})
	require.NoError(h.t, err)
	return p
}

// commitFiles creates dot ns/name if needed, writes files into its
// default subdot and commits them.
func (h *hub) commitFiles(dot dotmesh.DotName, msg string, files map[string]string) *dotmesh.Commit {
	h.t.Helper()
	ctx := context.Background()
	if _, err := h.node.Dot(ctx, dot); err != nil {
		_, err = h.node.CreateDot(ctx, dot, dotmesh.CreateDotOptions{})
		require.NoError(h.t, err)
	}
	p, err := h.node.SubdotPath(ctx, dotmesh.VolumeName{Dot: dot})
	require.NoError(h.t, err)
	for name, body := range files {
		f := filepath.Join(p, filepath.FromSlash(name))
		require.NoError(h.t, os.MkdirAll(filepath.Dir(f), 0o755))
		require.NoError(h.t, os.WriteFile(f, []byte(body), 0o644))
	}
	c, err := h.node.Commit(ctx, dot, "", dotmesh.CommitOptions{Message: msg, Author: dot.Namespace})
	require.NoError(h.t, err)
	return c
}

// browser is an HTTP client with its own cookies that does not follow
// redirects, so tests see each answer.
type browser struct {
	t   *testing.T
	h   *hub
	c   *http.Client
	jar *cookiejar.Jar
}

func (h *hub) browser() *browser {
	jar, err := cookiejar.New(nil)
	require.NoError(h.t, err)
	// srv.Client() is shared: each browser needs its own jar.
	c := &http.Client{Transport: h.srv.Client().Transport, Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &browser{t: h.t, h: h, c: c, jar: jar}
}

// page is an answer: status, Location, body.
type page struct {
	status   int
	location string
	body     string
	header   http.Header
}

func (b *browser) do(method, path string, form url.Values) page {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.h.srv.URL+path, body)
	require.NoError(b.t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept", "text/html")
	resp, err := b.c.Do(req)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(b.t, err)
	return page{status: resp.StatusCode, location: resp.Header.Get("Location"), body: string(data), header: resp.Header}
}

func (b *browser) get(path string) page { return b.do("GET", path, nil) }

func (b *browser) post(path string, form url.Values) page { return b.do("POST", path, form) }

var (
	csrfRe  = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	tokenRe = regexp.MustCompile(`name="token" value="([^"]+)"`)
)

// signIn signs in through the form and returns the answer to the POST.
func (b *browser) signIn(user, key string) page {
	b.t.Helper()
	form := b.get("/ui/signin")
	m := tokenRe.FindStringSubmatch(form.body)
	require.NotNil(b.t, m, "the sign-in form carries a token")
	return b.post("/ui/signin", url.Values{"token": {m[1]}, "user": {user}, "key": {key}})
}

// mustSignIn signs in and checks it worked.
func (b *browser) mustSignIn(user, key string) {
	b.t.Helper()
	p := b.signIn(user, key)
	require.Equal(b.t, http.StatusSeeOther, p.status, p.body)
	require.Equal(b.t, "/ui/", p.location)
}

// csrf reads the session's token from a page with a form.
func (b *browser) csrf() string {
	b.t.Helper()
	p := b.get("/ui/keys")
	m := csrfRe.FindStringSubmatch(p.body)
	require.NotNil(b.t, m, "the keys page carries the CSRF token: %d %s", p.status, p.body)
	return m[1]
}

var regexpSecret = regexp.MustCompile(`<code class="copy big" tabindex="0">([^<]+)</code>`)
