package web

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// chrome starts Debian's chromium, headless, with a fresh profile, and
// returns a tab. A missing chromium fails the test, naming it.
func chrome(t *testing.T, width, height int) context.Context {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("the browser tests need Debian's chromium (apt-get install chromium; make test installs it): ", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// The test server's certificate is self-signed.
		chromedp.IgnoreCertErrors,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	// The first call starts the browser and must not have a timeout.
	require.NoError(t, chromedp.Do(ctx), "starting chromium")
	tctx, cancelTime := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTime(); cancelTab(); cancelAlloc() })
	return tctx
}

// screens is where screenshots go: $DM_TEST_ARTIFACTS, else a
// directory under the system's temp dir; never the repository.
func screens(t *testing.T) string {
	dir := os.Getenv("DM_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "dm-ui-screens")
	}
	dir = filepath.Join(dir, t.Name())
	require.NoError(t, os.MkdirAll(dir, 0o755))
	t.Logf("screenshots in %s", dir)
	return dir
}

func shot(dir, name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		png, err := chromedp.FullScreenshot(100)(ctx, t) // quality 100: PNG
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644)
	})
}

// text returns the visible text of the first element sel matches.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	require.NoError(t, err)
	return s
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	require.NoError(t, err)
	return v
}

func signInActions(base, user, key string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Navigate(base+"/ui/"),
		chromedp.WaitVisible(chromedp.ID("user")),
		chromedp.SendKeys(chromedp.ID("user"), user),
		chromedp.SendKeys(chromedp.ID("key"), key),
		chromedp.Submit(chromedp.ID("key")),
		chromedp.WaitVisible(chromedp.CSS("header .who")), // signed in
	)
}

// The scenario in a real browser: alice signs in, browses to a
// dot committed a moment before, opens a commit, its files and one
// file, shares the dot with bob through the form, signs out; bob does
// not see the private dot nor open it by its address until it is
// shared.
func TestBrowserScenario(t *testing.T) {
	h := newHub(t, Options{})
	alice := h.addUser("alice")
	bob := h.addUser("bob")
	dot := dotmesh.DotName{Namespace: "alice", Name: "orders-service-with-a-rather-long-name-to-check-wrapping"}
	h.commitFiles(dot, "schema v1", map[string]string{"readme.txt": "orders\n", "db/schema.sql": "create table orders (id int);\n"})
	c := h.commitFiles(dot, "add customers table and a much longer commit message that should be cut neatly in the list",
		map[string]string{"db/schema.sql": "create table orders (id int);\ncreate table customers (id int, name text);\n", "readme.txt": "orders & customers <v2>\n"})
	dir := screens(t)
	base := h.srv.URL
	dotPath := "/ui/dots/" + dot.Namespace + "/" + dot.Name
	do := func(ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		require.NoError(t, chromedp.Do(ctx, steps...))
	}

	a := chrome(t, 1280, 900)
	do(a, chromedp.Navigate(base+"/ui/"), chromedp.WaitVisible(chromedp.ID("user")), shot(dir, "01-signin"))
	do(a, signInActions(base, "alice", alice), chromedp.WaitVisible(chromedp.CSS("table.list")), shot(dir, "02-dots"))
	require.Contains(t, text(t, a, "main"), dot.Name)
	require.Empty(t, eval[string](t, a, "document.cookie"), "the session cookie is HttpOnly")

	do(a, chromedp.Click(chromedp.CSS(`a[href="`+dotPath+`"]`)), chromedp.WaitVisible(chromedp.CSS(".history")), shot(dir, "03-dot"))
	main := text(t, a, "main")
	require.Contains(t, main, "dm clone hub "+dot.String())
	require.Contains(t, main, "schema v1")

	do(a, chromedp.Click(chromedp.CSS(`a.id[href*="/commits/`+string(c.ID)+`"]`)), chromedp.WaitVisible(chromedp.CSS(".files")), shot(dir, "04-commit"))
	main = text(t, a, "main")
	require.Contains(t, main, "Changed since its parent")
	require.Contains(t, main, "modified")
	require.Contains(t, main, dotmesh.DefaultSubdot)
	// The patch as dm show has it, with the added line marked.
	require.Contains(t, text(t, a, "pre.patch .add"), "+create table customers (id int, name text);")
	require.Contains(t, eval[[]string](t, a, `[...document.querySelectorAll("pre.patch .add")].map(e => e.textContent)`), "+orders & customers <v2>")

	// The dot page links to the uncommitted changes of its branch.
	require.NoError(t, os.WriteFile(filepath.Join(h.subdotPath(dot), "draft.txt"), []byte("wip\n"), 0o644))
	do(a, chromedp.Navigate(base+dotPath), chromedp.WaitVisible(chromedp.CSS(".history")),
		chromedp.Click(chromedp.CSS(`a[href$="/changes?branch=master"]`)), chromedp.WaitVisible(chromedp.CSS("section.subdot")), shot(dir, "04b-changes"))
	require.Contains(t, text(t, a, "section.subdot"), "draft.txt")
	require.NoError(t, os.Remove(filepath.Join(h.subdotPath(dot), "draft.txt")))
	do(a, chromedp.Navigate(base+dotPath+"/commits/"+string(c.ID)), chromedp.WaitVisible(chromedp.CSS(".files")))

	do(a,
		chromedp.Click(chromedp.CSS(`td.name a[href$="dir=`+dotmesh.DefaultSubdot+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`td.name a[href*="readme.txt"]`)),
		shot(dir, "05-directory"),
		chromedp.Click(chromedp.CSS(`td.name a[href*="readme.txt"]`)),
		chromedp.WaitVisible(chromedp.CSS("pre.file")),
		shot(dir, "06-file"),
	)
	require.Equal(t, "orders & customers <v2>", strings.TrimSpace(text(t, a, "pre.file")))

	// Bob does not see the private dot, and its address answers as a
	// missing dot would.
	b := chrome(t, 1280, 900)
	do(b, signInActions(base, "bob", bob), shot(dir, "07-bob-dots"))
	require.NotContains(t, text(t, b, "main"), dot.Name)
	do(b, chromedp.Navigate(base+dotPath), chromedp.WaitVisible(chromedp.CSS(".error")), shot(dir, "08-bob-refused"))
	require.Contains(t, text(t, b, "main"), "you need the read role")

	// Alice shares it through the form.
	do(a,
		chromedp.Navigate(base+dotPath+"/sharing"),
		chromedp.WaitVisible(chromedp.ID("share-user")),
		chromedp.SendKeys(chromedp.ID("share-user"), "bob"),
		chromedp.Submit(chromedp.ID("share-user")),
		chromedp.WaitVisible(chromedp.CSS(".flash")),
		shot(dir, "09-sharing"),
	)
	require.Contains(t, text(t, a, "main"), "bob may now read")

	do(b, chromedp.Navigate(base+"/ui/"), chromedp.WaitVisible(chromedp.CSS("table.list")))
	require.Contains(t, text(t, b, "main"), dot.Name)
	do(b, chromedp.Navigate(base+dotPath), chromedp.WaitVisible(chromedp.CSS(".history")))

	// Keys page, then sign out: the session is gone on the server too.
	do(a,
		chromedp.Navigate(base+"/ui/keys"),
		chromedp.WaitVisible(chromedp.ID("key-label")),
		shot(dir, "10-keys"),
		chromedp.Click(chromedp.CSS("header form button")),
		chromedp.WaitVisible(chromedp.ID("user")),
		chromedp.Navigate(base+dotPath),
		chromedp.WaitVisible(chromedp.ID("user")),
	)
	h.ui.sessions.mu.Lock()
	n := 0
	for _, s := range h.ui.sessions.m {
		if s.p.User == "alice" {
			n++
		}
	}
	h.ui.sessions.mu.Unlock()
	require.Zero(t, n, "signing out deleted alice's session")

	// The admin's pages: users with their keys, and the audit, which
	// holds alice's share.
	do(a, signInActions(base, dotmesh.AdminUser, h.adminKey),
		chromedp.Navigate(base+"/ui/users"), chromedp.WaitVisible(chromedp.ID("user-name")), shot(dir, "13-users"),
		chromedp.Navigate(base+"/ui/audit"), chromedp.WaitVisible(chromedp.CSS("table.list")), shot(dir, "14-audit"))
	audit := text(t, a, "main")
	require.Contains(t, audit, "share")
	require.Contains(t, audit, "bob read")

	// On a phone: nothing wider than the screen.
	p := chrome(t, 390, 844)
	do(p, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), signInActions(base, "bob", bob), chromedp.Navigate(base+dotPath), chromedp.WaitVisible(chromedp.CSS(".history")), shot(dir, "11-phone-dot"))
	require.False(t, eval[bool](t, p, "document.documentElement.scrollWidth > window.innerWidth"), "the dot page fits a phone's width")
	do(p, chromedp.Navigate(base+"/ui/"), chromedp.WaitVisible(chromedp.CSS("table.list")), shot(dir, "12-phone-dots"))
	require.False(t, eval[bool](t, p, "document.documentElement.scrollWidth > window.innerWidth"), "the dot list fits a phone's width")
}
