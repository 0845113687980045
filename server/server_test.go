package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/server/servertest"
)

type auth func(*http.Request)

func basic(user, key string) auth { return func(r *http.Request) { r.SetBasicAuth(user, key) } }
func bearer(key string) auth {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+key) }
}
func noAuth(*http.Request) {}

// call sends one request and returns the status and body.
func call(t *testing.T, n *servertest.Node, a auth, method, path, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, n.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	a(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// ok calls as admin, checks the status and decodes the answer into out.
func ok(t *testing.T, n *servertest.Node, want int, method, path, body string, out any) {
	t.Helper()
	status, b := call(t, n, basic(api.AdminUser, n.Key), method, path, body)
	if status != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, status, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decoding %s: %v", method, path, b, err)
		}
	}
}

// fails calls as admin and checks an error status, code and a one-line
// message; it returns the message.
func fails(t *testing.T, n *servertest.Node, wantStatus int, wantCode, method, path, body string) string {
	t.Helper()
	status, b := call(t, n, basic(api.AdminUser, n.Key), method, path, body)
	return checkError(t, method+" "+path, status, b, wantStatus, wantCode)
}

func checkError(t *testing.T, what string, status int, b []byte, wantStatus int, wantCode string) string {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("%s: status %d, want %d: %s", what, status, wantStatus, b)
	}
	var e api.Error
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("%s: error body %q is not an api.Error: %v", what, b, err)
	}
	if e.Code != wantCode {
		t.Errorf("%s: code %q, want %q (%s)", what, e.Code, wantCode, e.Error)
	}
	if e.Error == "" || strings.ContainsAny(e.Error, "\r\n") {
		t.Errorf("%s: message %q should be one non-empty line", what, e.Error)
	}
	return e.Error
}

func TestHealthzNeedsNoKey(t *testing.T) {
	n := servertest.Start(t)
	status, b := call(t, n, noAuth, "GET", "/healthz", "")
	if status != 200 || strings.TrimSpace(string(b)) != "ok" {
		t.Fatalf("GET /healthz: %d %q", status, b)
	}
}

func TestRoutes(t *testing.T) {
	n := servertest.Start(t)

	var ping api.Ping
	ok(t, n, 200, "GET", "/v1/ping", "", &ping)
	if ping.User != api.AdminUser || ping.Version != "test" || len(ping.Backends) != 1 || ping.Backends[0] != "dump" {
		t.Errorf("ping = %+v", ping)
	}

	var d dotmesh.Dot
	ok(t, n, 201, "POST", "/v1/dots", `{"name":"web"}`, &d)
	if d.Namespace != "admin" || d.Name != "web" || d.Backend != "dump" || d.Current != "master" {
		t.Errorf("created %+v", d)
	}
	ok(t, n, 201, "POST", "/v1/dots", `{"namespace":"team","name":"db","backend":"files"}`, &d)
	if d.Backend != "dump" {
		t.Errorf("backend alias files: got backend %q", d.Backend)
	}

	var list []dotmesh.DotStatus
	ok(t, n, 200, "GET", "/v1/dots", "", &list)
	if len(list) != 2 || list[0].Dot.Name != "web" || list[1].Dot.Namespace != "team" {
		t.Fatalf("list = %+v", list)
	}

	var pr api.PathResponse
	ok(t, n, 200, "POST", "/v1/path", `{"volume":"web.db"}`, &pr)
	if err := os.WriteFile(filepath.Join(pr.Path, "data"), []byte("one"), 0o644); err != nil {
		t.Fatalf("writing into the subdot path %q: %v", pr.Path, err)
	}

	var st dotmesh.DotStatus
	ok(t, n, 200, "GET", "/v1/dots/admin/web", "", &st)
	if st.Dot.Name != "web" || st.Branch.Name != "master" || !st.Usage.Dirty {
		t.Errorf("status = %+v", st)
	}

	var c1, c2 dotmesh.Commit
	ok(t, n, 201, "POST", "/v1/dots/admin/web/commits", `{"message":"first","metadata":{"ticket":"42"}}`, &c1)
	if c1.Author != api.AdminUser || c1.Message != "first" || c1.Metadata["ticket"] != "42" || c1.Branch != "master" {
		t.Errorf("commit = %+v", c1)
	}
	if err := os.WriteFile(filepath.Join(pr.Path, "data"), []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	ok(t, n, 201, "POST", "/v1/dots/admin/web/commits", `{"branch":"master","message":"second"}`, &c2)
	if c2.Parent != c1.ID {
		t.Errorf("second commit's parent %s, want %s", c2.Parent, c1.ID)
	}

	var log []dotmesh.Commit
	ok(t, n, 200, "GET", "/v1/dots/admin/web/commits", "", &log)
	if len(log) != 2 || log[0].ID != c2.ID || log[1].ID != c1.ID {
		t.Errorf("log = %+v", log)
	}
	ok(t, n, 200, "GET", "/v1/dots/admin/web/commits?branch=master&limit=1", "", &log)
	if len(log) != 1 || log[0].ID != c2.ID {
		t.Errorf("log limit 1 = %+v", log)
	}

	var got dotmesh.Commit
	ok(t, n, 200, "GET", "/v1/dots/admin/web/refs/HEAD%5E", "", &got)
	if got.ID != c1.ID {
		t.Errorf("HEAD^ = %s, want %s", got.ID, c1.ID)
	}
	ok(t, n, 200, "GET", "/v1/dots/admin/web/refs/"+string(c2.ID[:8])+"?branch=master", "", &got)
	if got.ID != c2.ID {
		t.Errorf("prefix ref = %s, want %s", got.ID, c2.ID)
	}

	var subs []string
	ok(t, n, 200, "GET", "/v1/dots/admin/web/subdots?branch=master", "", &subs)
	if len(subs) != 1 || subs[0] != "db" {
		t.Errorf("subdots = %v", subs)
	}

	var b dotmesh.Branch
	ok(t, n, 201, "POST", "/v1/dots/admin/web/branches", `{"name":"dev","from":"HEAD^"}`, &b)
	if b.Name != "dev" || b.Head != c1.ID {
		t.Errorf("branch = %+v", b)
	}
	var bs []dotmesh.Branch
	ok(t, n, 200, "GET", "/v1/dots/admin/web/branches", "", &bs)
	if len(bs) != 2 || bs[0].Name != "dev" || bs[1].Name != "master" {
		t.Errorf("branches = %+v", bs)
	}
	ok(t, n, 200, "POST", "/v1/dots/admin/web/checkout", `{"branch":"dev"}`, &d)
	if d.Current != "dev" {
		t.Errorf("after checkout dev: current %q", d.Current)
	}
	ok(t, n, 200, "POST", "/v1/dots/admin/web/checkout", `{"branch":"feature","create":true}`, &d)
	if d.Current != "feature" {
		t.Errorf("after checkout -b feature: current %q", d.Current)
	}
	ok(t, n, 200, "POST", "/v1/dots/admin/web/checkout", `{"branch":"master"}`, nil)
	ok(t, n, 204, "DELETE", "/v1/dots/admin/web/branches/feature", "", nil)

	// hard: the dump backend reports a file written in the same clock tick
	// as its commit as dirty (racily clean), which is not the server's concern.
	ok(t, n, 200, "POST", "/v1/dots/admin/web/reset", `{"ref":"HEAD^","hard":true}`, &got)
	if got.ID != c1.ID {
		t.Errorf("reset to %s, want %s", got.ID, c1.ID)
	}
	if data, err := os.ReadFile(filepath.Join(pr.Path, "data")); err != nil || string(data) != "one" {
		t.Errorf("after reset the subdot holds %q, %v; want %q", data, err, "one")
	}
	if err := os.WriteFile(filepath.Join(pr.Path, "data"), []byte("dirty"), 0o644); err != nil {
		t.Fatal(err)
	}
	fails(t, n, 409, "dirty", "POST", "/v1/dots/admin/web/reset", `{"ref":"HEAD"}`)
	ok(t, n, 200, "POST", "/v1/dots/admin/web/reset", `{"branch":"master","ref":"HEAD","hard":true}`, &got)

	ok(t, n, 204, "DELETE", "/v1/dots/admin/web", "", nil)
	fails(t, n, 404, "not_found", "GET", "/v1/dots/admin/web", "")
	ok(t, n, 200, "GET", "/v1/dots", "", &list)
	if len(list) != 1 {
		t.Errorf("after delete, %d dots listed", len(list))
	}
}

func TestEmptyListsAreArrays(t *testing.T) {
	n := servertest.Start(t)
	for _, path := range []string{"/v1/dots", "/v1/dots/admin/x/commits", "/v1/dots/admin/x/subdots"} {
		if path != "/v1/dots" {
			ok(t, n, 201, "POST", "/v1/dots", `{"name":"x"}`, nil)
		}
		status, b := call(t, n, basic(api.AdminUser, n.Key), "GET", path, "")
		if status != 200 || strings.TrimSpace(string(b)) != "[]" {
			t.Errorf("GET %s = %d %s, want 200 []", path, status, b)
		}
		if path != "/v1/dots" {
			ok(t, n, 204, "DELETE", "/v1/dots/admin/x", "", nil)
		}
	}
}

func TestNotFoundAndConflict(t *testing.T) {
	n := servertest.Start(t)
	ok(t, n, 201, "POST", "/v1/dots", `{"name":"web"}`, nil)
	fails(t, n, 409, "already_exists", "POST", "/v1/dots", `{"name":"web"}`)
	fails(t, n, 404, "not_found", "GET", "/v1/dots/admin/nope", "")
	fails(t, n, 404, "not_found", "DELETE", "/v1/dots/admin/nope", "")
	fails(t, n, 404, "not_found", "GET", "/v1/dots/admin/web/commits?branch=nope", "")
	fails(t, n, 404, "not_found", "GET", "/v1/dots/admin/web/refs/HEAD", "") // no commits yet
	fails(t, n, 404, "not_found", "POST", "/v1/dots/admin/web/checkout", `{"branch":"nope"}`)
	fails(t, n, 404, "not_found", "POST", "/v1/path", `{"volume":"nope.db"}`)
	fails(t, n, 409, "conflict", "POST", "/v1/dots/admin/web/commits", `{"message":"m"}`) // nothing to commit
	ok(t, n, 201, "POST", "/v1/dots/admin/web/commits", `{"message":"m","allow_empty":true}`, nil)
	fails(t, n, 404, "not_found", "GET", "/v1/dots/admin/web/refs/HEAD~5", "")
	fails(t, n, 404, "not_found", "GET", "/v1/dots/admin/web/refs/0000", "")
	ok(t, n, 201, "POST", "/v1/dots/admin/web/branches", `{"name":"dev"}`, nil)
	fails(t, n, 409, "already_exists", "POST", "/v1/dots/admin/web/branches", `{"name":"dev"}`)
	fails(t, n, 409, "in_use", "DELETE", "/v1/dots/admin/web/branches/master", "")
	fails(t, n, 404, "not_found", "DELETE", "/v1/dots/admin/web/branches/nope", "")
	fails(t, n, 400, "invalid_argument", "POST", "/v1/dots/admin/web/commits", `{"message":"  "}`)
	fails(t, n, 400, "invalid_argument", "POST", "/v1/dots", `{"name":"z","backend":"tape"}`)
	// Unknown routes and methods answer in JSON too.
	fails(t, n, 404, "not_found", "GET", "/v1/nothing", "")
	status, b := call(t, n, basic(api.AdminUser, n.Key), "PUT", "/v1/dots", "")
	checkError(t, "PUT /v1/dots", status, b, 405, "invalid_argument")
}

func TestResetAmbiguousPrefix(t *testing.T) {
	n := servertest.Start(t)
	var d dotmesh.Dot
	ok(t, n, 201, "POST", "/v1/dots", `{"name":"web"}`, &d)
	// Two real commits, then their ids are rewritten in the registry to
	// share a prefix: random ids would need ~300 commits to collide.
	var c1, c2 dotmesh.Commit
	ok(t, n, 201, "POST", "/v1/dots/admin/web/commits", `{"message":"one","allow_empty":true}`, &c1)
	ok(t, n, 201, "POST", "/v1/dots/admin/web/commits", `{"message":"two","allow_empty":true}`, &c2)
	renameCommits(t, n, d.ID, map[dotmesh.CommitID]dotmesh.CommitID{
		c1.ID: "abcd0000000000000000000000000001",
		c2.ID: "abcd0000000000000000000000000002",
	})
	msg := fails(t, n, 409, "ambiguous", "POST", "/v1/dots/admin/web/reset", `{"ref":"abcd","hard":true}`)
	if !strings.Contains(msg, "abcd") {
		t.Errorf("ambiguity message %q does not name the prefix", msg)
	}
	fails(t, n, 409, "ambiguous", "GET", "/v1/dots/admin/web/refs/abcd", "")
	var got dotmesh.Commit
	ok(t, n, 200, "GET", "/v1/dots/admin/web/refs/abcd0000000000000000000000000001", "", &got)
	if got.Message != "one" {
		t.Errorf("full id resolves to %+v", got)
	}
}

func TestBadRequests(t *testing.T) {
	n := servertest.Start(t)
	ok(t, n, 201, "POST", "/v1/dots", `{"name":"web"}`, nil)
	cases := []struct {
		method, path, body, code, want string
	}{
		{"POST", "/v1/dots", `{"name":"web",`, "invalid_argument", "JSON"},
		{"POST", "/v1/dots", `{"name":"x","colour":"red"}`, "invalid_argument", `unknown field "colour"`},
		{"POST", "/v1/dots", `{"name":1}`, "invalid_argument", `"name"`},
		{"POST", "/v1/dots", `{"name":"x"} {"name":"y"}`, "invalid_argument", "after the JSON object"},
		{"POST", "/v1/dots", `[]`, "invalid_argument", "JSON object"},
		{"POST", "/v1/dots", `null`, "invalid_argument", "JSON object"},
		{"POST", "/v1/dots", ``, "invalid_argument", "empty"},
		{"POST", "/v1/dots", `{"name":"a b"}`, "invalid_name", "dot name"},
		{"POST", "/v1/dots", `{"namespace":"../etc","name":"x"}`, "invalid_name", "namespace"},
		{"POST", "/v1/dots", `{"name":"` + strings.Repeat("x", 65) + `"}`, "invalid_name", "limit"},
		{"GET", "/v1/dots/admin/we%20b", "", "invalid_name", "dot name"},
		{"GET", "/v1/dots/ad%2Fmin/web", "", "invalid_name", "namespace"},
		{"GET", "/v1/dots/admin/%2E%2E", "", "invalid_name", "dot name"},
		{"DELETE", "/v1/dots/admin/web/branches/b%40d", "", "invalid_name", "branch"},
		{"POST", "/v1/dots/admin/web/branches", `{"name":"a/b"}`, "invalid_name", "branch"},
		{"POST", "/v1/dots/admin/web/checkout", `{"branch":""}`, "invalid_name", "branch"},
		{"POST", "/v1/dots/admin/web/commits", `{"message":"m","metadata":{"a b":"c"}}`, "invalid_name", "metadata key"},
		{"POST", "/v1/dots/admin/web/commits", `{"message":"m","metadata":{"k":1}}`, "invalid_argument", "metadata"},
		{"GET", "/v1/dots/admin/web/commits?limit=x", "", "invalid_argument", "limit"},
		{"GET", "/v1/dots/admin/web/commits?limit=-1", "", "invalid_argument", "limit"},
		{"GET", "/v1/dots/admin/web/commits?brnach=dev", "", "invalid_argument", `"brnach"`},
		{"GET", "/v1/dots/admin/web/commits?branch=a&branch=b", "", "invalid_argument", "2 times"},
		{"GET", "/v1/dots/admin/web/commits?branch=a%20b", "", "invalid_name", "branch"},
		{"GET", "/v1/dots/admin/web/refs/HEAD%3F", "", "invalid_name", "ref"},
		{"POST", "/v1/dots/admin/web/reset", `{"ref":"x.y"}`, "invalid_name", "ref"},
		{"POST", "/v1/path", `{"volume":"web.__secret"}`, "invalid_name", "reserved"},
		{"POST", "/v1/path", `{"volume":"a/b/c"}`, "invalid_name", "'/'"},
	}
	for _, c := range cases {
		msg := fails(t, n, 400, c.code, c.method, c.path, c.body)
		if !strings.Contains(msg, c.want) {
			t.Errorf("%s %s %s: message %q does not contain %q", c.method, c.path, c.body, msg, c.want)
		}
	}
	// Nothing above created anything.
	var list []dotmesh.DotStatus
	ok(t, n, 200, "GET", "/v1/dots", "", &list)
	if len(list) != 1 {
		t.Errorf("bad requests changed the dots: %d listed", len(list))
	}
}

func TestContentTypeAndSize(t *testing.T) {
	n := servertest.Start(t)
	req, _ := http.NewRequest("POST", n.URL+"/v1/dots", strings.NewReader(`{"name":"web"}`))
	req.Header.Set("Content-Type", "text/plain")
	req.SetBasicAuth(api.AdminUser, n.Key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	checkError(t, "text/plain body", resp.StatusCode, b, 400, "invalid_argument")

	big := `{"name":"web","backend":"` + strings.Repeat("x", 2<<20) + `"}`
	req, _ = http.NewRequest("POST", n.URL+"/v1/dots", bytes.NewReader([]byte(big)))
	req.SetBasicAuth(api.AdminUser, n.Key)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	checkError(t, "2 MiB body", resp.StatusCode, b, 413, "invalid_argument")
}

// renameCommits rewrites commit ids in the registry (layout documented in
// dotmesh/registry.go): records, parents and branch heads and origins.
func renameCommits(t *testing.T, n *servertest.Node, dot dotmesh.DotID, ids map[dotmesh.CommitID]dotmesh.CommitID) {
	t.Helper()
	ctx := context.Background()
	rename := func(id dotmesh.CommitID) dotmesh.CommitID {
		if to, ok := ids[id]; ok {
			return to
		}
		return id
	}
	var ops []dotmesh.Op
	kvs, err := n.Store.List(ctx, "commits/"+string(dot)+"/")
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range kvs {
		var c dotmesh.Commit
		if err := json.Unmarshal(kv.Value, &c); err != nil {
			t.Fatal(err)
		}
		c.ID, c.Parent = rename(c.ID), rename(c.Parent)
		v, _ := json.Marshal(c)
		ops = append(ops, dotmesh.DeleteOp(kv.Key), dotmesh.PutOp("commits/"+string(dot)+"/"+string(c.ID), v))
	}
	kvs, err = n.Store.List(ctx, "branches/"+string(dot)+"/")
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range kvs {
		var b dotmesh.Branch
		if err := json.Unmarshal(kv.Value, &b); err != nil {
			t.Fatal(err)
		}
		b.Head, b.Origin = rename(b.Head), rename(b.Origin)
		v, _ := json.Marshal(b)
		ops = append(ops, dotmesh.PutOp(kv.Key, v))
	}
	if _, err := n.Store.Txn(ctx, nil, ops); err != nil {
		t.Fatal(err)
	}
}

// TestErrorReasons: the typed errors of the core reach the wire as a
// reason with their data; errors without one send none.
func TestErrorReasons(t *testing.T) {
	n := servertest.Start(t)
	ok(t, n, 201, "POST", "/v1/dots", `{"name":"web"}`, nil)
	for _, c := range []struct {
		method, path, body string
		want               *api.Reason
	}{
		{"GET", "/v1/dots/admin/nope", "", &api.Reason{Type: api.ReasonNotFound, Kind: dotmesh.KindDot, Namespace: "admin", Dot: "nope"}},
		{"POST", "/v1/dots/admin/web/checkout", `{"branch":"dev"}`, &api.Reason{Type: api.ReasonNotFound, Kind: dotmesh.KindBranch, Name: "dev", Namespace: "admin", Dot: "web"}},
		{"GET", "/v1/dots/admin/web/refs/HEAD", "", &api.Reason{Type: api.ReasonNoCommits, Namespace: "admin", Dot: "web", Branch: "master"}},
		{"POST", "/v1/incoming/abort", `{"name":"web"}`, &api.Reason{Type: api.ReasonNotFound, Kind: dotmesh.KindIncoming, Namespace: "admin", Dot: "web"}},
		{"POST", "/v1/dots", `{"name":"web"}`, nil},
	} {
		status, b := call(t, n, basic(api.AdminUser, n.Key), c.method, c.path, c.body)
		var e api.Error
		if err := json.Unmarshal(b, &e); err != nil || status < 400 {
			t.Fatalf("%s %s: %d %s", c.method, c.path, status, b)
		}
		if !reflect.DeepEqual(e.Reason, c.want) {
			t.Errorf("%s %s: reason %+v, want %+v (%s)", c.method, c.path, e.Reason, c.want, b)
		}
	}
}
