package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/server"
	"github.com/dotmesh-io/dotmesh/server/servertest"
)

func TestAuthRequired(t *testing.T) {
	n := servertest.Start(t)
	if err := n.Node.APIKeys().Put(context.Background(), dotmesh.APIKey{User: "alice", Hash: server.HashKey("alice-key-0123456789abcdef0123456789")}); err != nil {
		t.Fatal(err)
	}
	bad := map[string]auth{
		"none":               noAuth,
		"basic wrong key":    basic(api.AdminUser, n.Key+"x"),
		"basic empty key":    basic(api.AdminUser, ""),
		"basic unknown user": basic("mallory", n.Key),
		"basic bad user":     basic("../admin", n.Key),
		"basic other's key":  basic("alice", n.Key),
		"bearer wrong key":   bearer("nope"),
		"bearer empty":       bearer(""),
		"other scheme":       func(r *http.Request) { r.Header.Set("Authorization", "Token "+n.Key) },
	}
	routes := []struct{ method, path, body string }{
		{"GET", "/v1/ping", ""},
		{"GET", "/v1/dots", ""},
		{"POST", "/v1/dots", `{"name":"web"}`},
		{"GET", "/v1/dots/admin/web", ""},
		{"DELETE", "/v1/dots/admin/web", ""},
		{"POST", "/v1/dots/admin/web/commits", `{"message":"m"}`},
		{"POST", "/v1/path", `{"volume":"web"}`},
		{"GET", "/v1/incoming", ""},
		{"POST", "/v1/incoming/abort", `{"name":"web"}`},
		{"GET", "/v1/no-such-route", ""},
	}
	for name, a := range bad {
		for _, r := range routes {
			status, b := call(t, n, a, r.method, r.path, r.body)
			checkError(t, name+": "+r.method+" "+r.path, status, b, 401, "unauthorized")
		}
	}
	// The header that tells browsers and curl to retry with credentials.
	req, _ := http.NewRequest("GET", n.URL+"/v1/dots", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("WWW-Authenticate"); got != `Basic realm="dotmesh"` {
		t.Errorf("WWW-Authenticate = %q", got)
	}
	// None of the requests changed anything.
	dots, err := n.Node.ListDots(context.Background())
	if err != nil || len(dots) != 0 {
		t.Fatalf("unauthenticated requests left dots %v (%v)", dots, err)
	}
}

func TestAuthAccepted(t *testing.T) {
	n := servertest.Start(t)
	const aliceKey = "alice-key-0123456789abcdef0123456789"
	if err := n.Node.APIKeys().Put(context.Background(), dotmesh.APIKey{User: "alice", Hash: server.HashKey(aliceKey)}); err != nil {
		t.Fatal(err)
	}
	_, _, bobKey, err := n.Node.Users().Add(context.Background(), "bob", "")
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		a    auth
		user string
	}{
		"basic admin":  {basic(api.AdminUser, n.Key), api.AdminUser},
		"bearer admin": {bearer(n.Key), api.AdminUser},
		"bearer lower": {func(r *http.Request) { r.Header.Set("Authorization", "bearer "+n.Key) }, api.AdminUser},
		"basic alice":  {basic("alice", aliceKey), "alice"},
		"bearer bob":   {bearer(bobKey), "bob"}, // a bearer key of any user
	} {
		status, b := call(t, n, c.a, "GET", "/v1/ping", "")
		var p api.Ping
		if status != 200 || json.Unmarshal(b, &p) != nil || p.User != c.user {
			t.Errorf("%s: %d %s, want user %s", name, status, b, c.user)
		}
	}
	// A dot named without namespace is in the caller's; the
	// authenticated user is the commit author.
	status, b := call(t, n, basic("alice", aliceKey), "POST", "/v1/dots", `{"name":"web"}`)
	var d dotmesh.Dot
	if status != 201 || json.Unmarshal(b, &d) != nil || d.Namespace != "alice" {
		t.Fatalf("alice creates a dot: %d %s", status, b)
	}
	status, b = call(t, n, basic("alice", aliceKey), "POST", "/v1/dots/alice/web/commits", `{"message":"by alice","allow_empty":true}`)
	var c dotmesh.Commit
	if status != 201 || json.Unmarshal(b, &c) != nil || c.Author != "alice" {
		t.Errorf("alice's commit: %d %s", status, b)
	}
}
