package daemon_test

import (
	"net/http"
	"path/filepath"
	"testing"

	"github.com/dotmesh-io/dotmesh/daemon"
)

// dm serve serves the UI under /ui/ beside the API, sends browsers at
// "/" there, and --no-ui turns it off.
func TestServeUI(t *testing.T) {
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(url string, html bool) *http.Response {
		t.Helper()
		req, err := http.NewRequest("GET", url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if html {
			req.Header.Set("Accept", "text/html")
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	r := startWith(t, daemon.Config{DataDir: filepath.Join(t.TempDir(), "data"), Listen: "127.0.0.1:0"})
	base := "http://" + r.addr
	if resp := get(base+"/ui/signin", true); resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Security-Policy") == "" {
		t.Errorf("/ui/signin: %d, CSP %q", resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}
	if resp := get(base+"/", true); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/" {
		t.Errorf("a browser at /: %d to %q, want 303 to /ui/", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp := get(base+"/healthz", false); resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz with the UI on: %d", resp.StatusCode)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}

	r = startWith(t, daemon.Config{DataDir: filepath.Join(t.TempDir(), "data"), Listen: "127.0.0.1:0", NoUI: true})
	if resp := get("http://"+r.addr+"/ui/signin", true); resp.StatusCode == http.StatusOK {
		t.Errorf("/ui/signin with NoUI: %d", resp.StatusCode)
	}
	if resp := get("http://"+r.addr+"/healthz", false); resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz with NoUI: %d", resp.StatusCode)
	}
}
