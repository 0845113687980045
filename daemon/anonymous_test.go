package daemon_test

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/dotmesh-io/dotmesh/daemon"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// TestAnonymousRead: Config.AnonymousRead (dm serve --anonymous-read)
// lets calls without credentials read public dots, and only those.
func TestAnonymousRead(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	r := startWith(t, daemon.Config{DataDir: dir, Listen: "127.0.0.1:0", AnonymousRead: true})
	c := connect(t, r, dir)
	for _, name := range []string{"pub", "priv"} {
		if _, err := c.CreateDot(ctx, dotmesh.DotName{Name: name}, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.SetVisibility(ctx, dotmesh.DotName{Name: "pub"}, dotmesh.VisibilityPublic); err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, []byte) {
		t.Helper()
		resp, err := http.Get("http://" + r.addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b json.RawMessage
		_ = json.NewDecoder(resp.Body).Decode(&b)
		return resp.StatusCode, b
	}
	status, b := get("/v1/dots")
	var list []dotmesh.DotStatus
	if status != 200 || json.Unmarshal(b, &list) != nil || len(list) != 1 || list[0].Dot.Name != "pub" {
		t.Fatalf("anonymous list: %d %s", status, b)
	}
	if status, b := get("/v1/dots/admin/pub"); status != 200 {
		t.Fatalf("anonymous status of a public dot: %d %s", status, b)
	}
	if status, b := get("/v1/dots/admin/priv"); status != 403 {
		t.Fatalf("anonymous status of a private dot: %d %s", status, b)
	}
	if status, b := get("/v1/users"); status != 403 {
		t.Fatalf("anonymous list of users: %d %s", status, b)
	}
}
