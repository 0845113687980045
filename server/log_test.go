package server_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/internal/syncbuf"
	"github.com/dotmesh-io/dotmesh/server"
	"github.com/dotmesh-io/dotmesh/server/servertest"
)

// Every request is logged with method, path, status and duration, at
// DEBUG when it succeeded and WARN when refused, and never with the key,
// right or wrong.
func TestRequestLog(t *testing.T) {
	dir := t.TempDir()
	node, _ := servertest.OpenNode(t, dir)
	defer node.Close()
	key, _, err := server.EnsureAdminKey(context.Background(), node, dir)
	if err != nil {
		t.Fatal(err)
	}
	var buf syncbuf.Buffer
	srv := httptest.NewServer(server.New(node, server.Options{Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}))
	defer srv.Close()
	n := &servertest.Node{Node: node, Key: key, URL: srv.URL}

	ok(t, n, 201, "POST", "/v1/dots", `{"name":"web"}`, nil)
	call(t, n, basic(api.AdminUser, "wrong-"+key), "GET", "/v1/dots", "")
	call(t, n, bearer(key), "GET", "/v1/dots?branch="+key, "")
	out := buf.String()
	// Successes at DEBUG, a refused key at WARN.
	for _, want := range []string{`level=DEBUG msg="http request" method=POST path=/v1/dots status=201`, "duration=", "user=admin", `level=WARN msg="http request" method=GET path=/v1/dots status=401`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, key) {
		t.Errorf("the log contains the API key:\n%s", out)
	}
}
