package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Deny by default: a route without a declared permission is refused
// when the handler is built, and every route of the table has one.
func TestEveryRouteDeclaresAPermission(t *testing.T) {
	h := &Handler{}
	seen := map[string]bool{}
	for _, rt := range h.routes() {
		require.NoError(t, rt.check())
		key := rt.method + " " + rt.pattern
		require.False(t, seen[key], "route %s twice", key)
		seen[key] = true
		// The sign-in form is the one POST without a session; it checks
		// its own token (TestSignInRefusesWrongKeysAndThrottles).
		if rt.method == http.MethodPost && rt.pattern != "/ui/signin" {
			require.NotEqual(t, needNothing, rt.need, "%s changes something and must need a session (its CSRF token is checked with it)", key)
		}
	}
	undeclared := route{method: "GET", pattern: "/ui/x", serve: func(http.ResponseWriter, *http.Request, *req) {}}
	require.ErrorContains(t, undeclared.check(), "declares no permission")
	require.Error(t, route{method: "PUT", pattern: "/ui/x", need: needAdmin}.check())
}

// fill puts example values into a route pattern's wildcards.
func fill(pattern string) string {
	r := strings.NewReplacer("{$}", "", "{ns}", "alice", "{dot}", "app", "{commit}", "0123", "{id}", "k1", "{user}", "bob")
	return r.Replace(pattern)
}

func TestSignedOutCallsAreSentToSignIn(t *testing.T) {
	h := newHub(t, Options{})
	b := h.browser()
	for _, rt := range h.ui.routes() {
		if rt.need == needNothing {
			continue
		}
		p := b.do(rt.method, fill(rt.pattern), url.Values{})
		if rt.method == http.MethodGet {
			require.Equal(t, http.StatusSeeOther, p.status, rt.pattern)
			require.True(t, strings.HasPrefix(p.location, "/ui/signin?next="), p.location)
		} else {
			require.Equal(t, http.StatusUnauthorized, p.status, rt.pattern)
		}
	}
}

func TestSecurityHeadersAndCookieFlags(t *testing.T) {
	h := newHub(t, Options{})
	b := h.browser()
	p := b.get("/ui/signin")
	require.Equal(t, http.StatusOK, p.status)
	csp := p.header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'", "form-action 'self'"} {
		require.Contains(t, csp, want)
	}
	require.Equal(t, "nosniff", p.header.Get("X-Content-Type-Options"))
	require.Equal(t, "no-referrer", p.header.Get("Referrer-Policy"))
	require.NotContains(t, p.body, "<script")
	require.NotContains(t, p.body, "http://")

	resp := b.signIn(dotmesh.AdminUser, h.adminKey)
	require.Equal(t, http.StatusSeeOther, resp.status, resp.body)
	var sc *http.Cookie
	for _, line := range resp.header.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		require.NoError(t, err)
		if c.Name == cookieName {
			sc = c
		}
	}
	require.NotNil(t, sc, "sign-in sets the session cookie")
	require.True(t, sc.HttpOnly)
	require.True(t, sc.Secure, "served over TLS")
	require.Equal(t, http.SameSiteStrictMode, sc.SameSite)
	require.Equal(t, "/ui/", sc.Path)
	require.GreaterOrEqual(t, len(sc.Value), 43, "256 random bits")

	// Assets are served, and "/" sends a browser to the UI while API
	// clients keep the API.
	require.Equal(t, http.StatusOK, b.get("/ui/assets/style.css").status)
	root := b.get("/")
	require.Equal(t, http.StatusSeeOther, root.status)
	require.Equal(t, "/ui/", root.location)
	require.Equal(t, http.StatusNotFound, b.get("/ui/no-such-page").status)
}

func TestSignInRefusesWrongKeysAndThrottles(t *testing.T) {
	h := newHub(t, Options{Failures: 3, FailureWindow: time.Minute})
	alice := h.addUser("alice")
	b := h.browser()
	for i := 0; i < 3; i++ {
		p := b.signIn("alice", "wrong")
		require.Equal(t, http.StatusUnauthorized, p.status)
		require.Contains(t, p.body, "do not match")
	}
	// Even the right key waits now.
	p := b.signIn("alice", alice)
	require.Equal(t, http.StatusTooManyRequests, p.status)
	require.Contains(t, p.body, "Too many failed sign-ins")
	h.clock.now = h.clock.now.Add(time.Minute + time.Second)
	b.mustSignIn("alice", alice)

	// The sign-in form's token is checked too.
	b2 := h.browser()
	p = b2.post("/ui/signin", url.Values{"user": {"alice"}, "key": {alice}, "token": {"forged"}})
	require.Equal(t, http.StatusForbidden, p.status)
	// And the return address stays on the UI.
	require.Equal(t, "/ui/", safeNext("https://evil.example/"))
	require.Equal(t, "/ui/", safeNext("//evil.example/ui/"))
	require.Equal(t, "/ui/dots/a/b", safeNext("/ui/dots/a/b"))
}

func TestSignOutAndExpiryEndTheSessionOnTheServer(t *testing.T) {
	h := newHub(t, Options{IdleTimeout: 10 * time.Minute, MaxAge: time.Hour})
	b := h.browser()
	b.mustSignIn(dotmesh.AdminUser, h.adminKey)
	require.Equal(t, http.StatusOK, b.get("/ui/").status)
	u, _ := url.Parse(h.srv.URL + "/ui/")
	old := b.jar.Cookies(u)

	tok := b.csrf()
	p := b.post("/ui/signout", url.Values{"csrf": {tok}})
	require.Equal(t, http.StatusSeeOther, p.status)
	require.Equal(t, http.StatusSeeOther, b.get("/ui/").status, "signed out")
	// Replaying the old cookie does not bring the session back.
	b.jar.SetCookies(u, old)
	require.Equal(t, http.StatusSeeOther, b.get("/ui/").status)

	// Idle expiry, and the absolute one even when used.
	b.mustSignIn(dotmesh.AdminUser, h.adminKey)
	h.clock.now = h.clock.now.Add(11 * time.Minute)
	require.Equal(t, http.StatusSeeOther, b.get("/ui/").status, "idle too long")
	b.mustSignIn(dotmesh.AdminUser, h.adminKey)
	for i := 0; i < 6; i++ {
		h.clock.now = h.clock.now.Add(9 * time.Minute)
		require.Equal(t, http.StatusOK, b.get("/ui/").status)
	}
	h.clock.now = h.clock.now.Add(9 * time.Minute)
	require.Equal(t, http.StatusSeeOther, b.get("/ui/").status, "past the session's maximum age")
}

func TestCSRFTokenIsChecked(t *testing.T) {
	h := newHub(t, Options{})
	alice := h.addUser("alice")
	h.addUser("bob")
	dot := dotmesh.DotName{Namespace: "alice", Name: "app"}
	h.commitFiles(dot, "first", map[string]string{"a.txt": "a"})
	b := h.browser()
	b.mustSignIn("alice", alice)
	for _, tok := range []string{"", "wrong", b.csrf() + "x"} {
		form := url.Values{"user": {"bob"}, "role": {"read"}}
		if tok != "" {
			form.Set("csrf", tok)
		}
		p := b.post("/ui/dots/alice/app/share", form)
		require.Equal(t, http.StatusForbidden, p.status)
		require.Contains(t, p.body, "nothing was changed")
	}
	sh, err := h.node.Access().Sharing(context.Background(), dot)
	require.NoError(t, err)
	require.Empty(t, sh.Grants, "refused forms changed nothing")
	// A GET never changes anything.
	require.Contains(t, []int{http.StatusNotFound, http.StatusMethodNotAllowed}, b.get("/ui/dots/alice/app/share").status)

	p := b.post("/ui/dots/alice/app/share", url.Values{"user": {"bob"}, "role": {"read"}, "csrf": {b.csrf()}})
	require.Equal(t, http.StatusSeeOther, p.status, p.body)
	sh, err = h.node.Access().Sharing(context.Background(), dot)
	require.NoError(t, err)
	require.Len(t, sh.Grants, 1)
	recs, _, err := h.node.Audit().List(context.Background(), dotmesh.AuditQuery{Dot: &dot})
	require.NoError(t, err)
	require.NotEmpty(t, recs)
	require.Equal(t, "share", recs[0].Action)
	require.Equal(t, "alice", recs[0].User)
}

// A dot the user may not read answers exactly like a missing one.
func TestUnreadableDotLooksMissing(t *testing.T) {
	h := newHub(t, Options{})
	alice := h.addUser("alice")
	bob := h.addUser("bob")
	dot := dotmesh.DotName{Namespace: "alice", Name: "secret"}
	c := h.commitFiles(dot, "first", map[string]string{"a.txt": "a"})
	b := h.browser()
	b.mustSignIn("bob", bob)
	list := b.get("/ui/")
	require.Equal(t, http.StatusOK, list.status)
	require.NotContains(t, list.body, "secret")
	hidden := b.get("/ui/dots/alice/secret")
	missing := b.get("/ui/dots/alice/nosuch")
	require.Equal(t, http.StatusNotFound, hidden.status)
	require.Equal(t, http.StatusNotFound, missing.status)
	require.Equal(t, strings.ReplaceAll(hidden.body, "secret", "X"), strings.ReplaceAll(missing.body, "nosuch", "X"))
	require.Contains(t, hidden.body, "you need the read role")
	require.Equal(t, http.StatusNotFound, b.get("/ui/dots/alice/secret/commits/"+string(c.ID)).status)
	// Bob is not its owner: no sharing page, whether shared or not.
	require.Equal(t, http.StatusNotFound, b.get("/ui/dots/alice/secret/sharing").status)
	require.NoError(t, h.node.Access().Share(context.Background(), dot, "bob", dotmesh.RoleRead, "alice"))
	require.Contains(t, b.get("/ui/").body, "secret")
	require.Equal(t, http.StatusOK, b.get("/ui/dots/alice/secret").status)
	p := b.get("/ui/dots/alice/secret/sharing")
	require.Equal(t, http.StatusForbidden, p.status)
	require.Contains(t, p.body, "needs the owner role")
	// Admin pages are the admin's.
	require.Equal(t, http.StatusForbidden, b.get("/ui/users").status)
	require.Equal(t, http.StatusForbidden, b.get("/ui/audit").status)
	_ = alice
}

func TestReadOnlyKeyGetsAReadOnlySession(t *testing.T) {
	h := newHub(t, Options{})
	h.addUser("alice")
	_, ro, err := h.node.APIKeys().Issue(context.Background(), "alice", "ci", true)
	require.NoError(t, err)
	h.commitFiles(dotmesh.DotName{Namespace: "alice", Name: "app"}, "first", map[string]string{"a.txt": "a"})
	b := h.browser()
	b.mustSignIn("alice", ro)
	require.Contains(t, b.get("/ui/").body, "read-only")
	require.Equal(t, http.StatusForbidden, b.get("/ui/dots/alice/app/sharing").status)
	p := b.post("/ui/keys", url.Values{"csrf": {b.csrf()}, "label": {"more"}})
	require.Equal(t, http.StatusForbidden, p.status)
	require.Contains(t, p.body, "read-only key")
	keys, err := h.node.APIKeys().List(context.Background(), "alice")
	require.NoError(t, err)
	require.Len(t, keys, 2, "no key was made")
}

func TestPagesShowDotsHistoryFilesAndChanges(t *testing.T) {
	h := newHub(t, Options{})
	alice := h.addUser("alice")
	dot := dotmesh.DotName{Namespace: "alice", Name: "app"}
	h.commitFiles(dot, "first", map[string]string{"readme.txt": "hello", "conf/app.yml": "a: 1"})
	c := h.commitFiles(dot, "<b>second</b>", map[string]string{"readme.txt": "hello <script>alert(1)</script>", "new.txt": "n"})
	b := h.browser()
	b.mustSignIn("alice", alice)

	list := b.get("/ui/?q=APP")
	require.Equal(t, http.StatusOK, list.status)
	require.Contains(t, list.body, `href="/ui/dots/alice/app"`)
	require.Contains(t, b.get("/ui/?q=zzz").body, "No dot you may read matches")

	dp := b.get("/ui/dots/alice/app")
	require.Equal(t, http.StatusOK, dp.status, dp.body)
	require.Contains(t, dp.body, "&lt;b&gt;second&lt;/b&gt;", "messages are escaped")
	require.Contains(t, dp.body, "dm clone hub alice/app")
	require.Contains(t, dp.body, "/commits/"+string(c.ID))

	cp := b.get("/ui/dots/alice/app/commits/" + string(c.ID))
	require.Equal(t, http.StatusOK, cp.status, cp.body)
	require.Contains(t, cp.body, "readme.txt")
	require.Contains(t, cp.body, "Changed since its parent")
	require.Contains(t, cp.body, "new.txt")

	fp := b.get("/ui/dots/alice/app/file/" + string(c.ID) + "?path=" + url.QueryEscape(firstFilePath(t, h, dot, c, "readme.txt")))
	require.Equal(t, http.StatusOK, fp.status, fp.body)
	require.Contains(t, fp.body, "hello &lt;script&gt;alert(1)&lt;/script&gt;")
	require.NotContains(t, fp.body, "<script>")

	for _, bad := range []string{"?skip=-1", "?skip=x", "?branch=..", "?nope=1", "?skip=1&skip=2"} {
		require.Equal(t, http.StatusBadRequest, b.get("/ui/dots/alice/app"+bad).status, bad)
	}
	require.Equal(t, http.StatusBadRequest, b.get("/ui/dots/alice/app/file/"+string(c.ID)+"?path=../x").status)
}

// firstFilePath finds the tree path of a file by its base name: the
// tree's top-level directories are subdots.
func firstFilePath(t *testing.T, h *hub, dot dotmesh.DotName, c *dotmesh.Commit, name string) string {
	t.Helper()
	ctx := context.Background()
	root, err := h.node.Files().List(ctx, dot, "", string(c.ID), "", "", 100)
	require.NoError(t, err)
	for _, e := range root.Entries {
		if !e.Mode.IsDir() {
			continue
		}
		sub, err := h.node.Files().List(ctx, dot, "", string(c.ID), e.Path, "", 100)
		require.NoError(t, err)
		for _, f := range sub.Entries {
			if strings.HasSuffix(f.Path, "/"+name) {
				return f.Path
			}
		}
	}
	t.Fatalf("no %s in commit %s", name, c.ID)
	return ""
}

func TestHistoryIsPaged(t *testing.T) {
	h := newHub(t, Options{})
	alice := h.addUser("alice")
	dot := dotmesh.DotName{Namespace: "alice", Name: "long"}
	var ids []dotmesh.CommitID
	for i := 0; i < commitsPerPage+5; i++ {
		ids = append(ids, h.commitFiles(dot, "c", map[string]string{"f": strings.Repeat("x", i)}).ID)
	}
	b := h.browser()
	b.mustSignIn("alice", alice)
	first := b.get("/ui/dots/alice/long")
	require.Contains(t, first.body, string(ids[len(ids)-1]))
	require.NotContains(t, first.body, string(ids[0]))
	require.Contains(t, first.body, "skip=50")
	second := b.get("/ui/dots/alice/long?skip=50&branch=master")
	require.Equal(t, http.StatusOK, second.status, second.body)
	require.Contains(t, second.body, string(ids[0]))
	require.NotContains(t, second.body, string(ids[len(ids)-1]))
}

func TestKeysAndUsersPages(t *testing.T) {
	h := newHub(t, Options{})
	alice := h.addUser("alice")
	admin := h.browser()
	admin.mustSignIn(dotmesh.AdminUser, h.adminKey)
	p := admin.post("/ui/users", url.Values{"csrf": {admin.csrf()}, "name": {"carol"}, "label": {"laptop"}})
	require.Equal(t, http.StatusOK, p.status, p.body)
	require.Contains(t, p.body, "shown only this once")
	_, err := h.node.Users().Get(context.Background(), "carol")
	require.NoError(t, err)
	p = admin.post("/ui/users", url.Values{"csrf": {admin.csrf()}, "name": {"-bad"}})
	require.Equal(t, http.StatusBadRequest, p.status)

	// Alice makes a key and revokes it; a session signed in with a
	// revoked key ends.
	b := h.browser()
	b.mustSignIn("alice", alice)
	p = b.post("/ui/keys", url.Values{"csrf": {b.csrf()}, "label": {"second"}})
	require.Equal(t, http.StatusOK, p.status, p.body)
	m := regexpSecret.FindStringSubmatch(p.body)
	require.NotNil(t, m)
	other := h.browser()
	other.mustSignIn("alice", m[1])
	keys, err := h.node.APIKeys().List(context.Background(), "alice")
	require.NoError(t, err)
	require.Len(t, keys, 2)
	second := keys[0]
	if second.Label != "second" {
		second = keys[1]
	}
	p = b.post("/ui/keys/"+second.ID+"/revoke", url.Values{"csrf": {b.csrf()}})
	require.Equal(t, http.StatusSeeOther, p.status, p.body)
	require.Equal(t, http.StatusSeeOther, other.get("/ui/").status, "the revoked key's session ended")
	require.Equal(t, http.StatusOK, b.get("/ui/").status)
	assert.Equal(t, http.StatusOK, admin.get("/ui/audit").status)
}

// A key revoked or a user removed elsewhere (the API, the CLI) ends
// their UI sessions at the next request.
func TestRevocationElsewhereEndsSessions(t *testing.T) {
	h := newHub(t, Options{})
	alice := h.addUser("alice")
	h.addUser("bob")
	_, bob2, err := h.node.APIKeys().Issue(context.Background(), "bob", "second", false)
	require.NoError(t, err)
	a, b := h.browser(), h.browser()
	a.mustSignIn("alice", alice)
	b.mustSignIn("bob", bob2)
	keys, err := h.node.APIKeys().List(context.Background(), "alice")
	require.NoError(t, err)
	require.NoError(t, h.node.APIKeys().Revoke(context.Background(), "alice", keys[0].ID))
	require.Equal(t, http.StatusSeeOther, a.get("/ui/").status)
	require.Equal(t, http.StatusOK, b.get("/ui/").status)
	require.NoError(t, h.node.Users().Remove(context.Background(), "bob"))
	require.Equal(t, http.StatusSeeOther, b.get("/ui/").status)
	// The admin's legacy key keeps working.
	adm := h.browser()
	adm.mustSignIn(dotmesh.AdminUser, h.adminKey)
	require.Equal(t, http.StatusOK, adm.get("/ui/users").status)
}
