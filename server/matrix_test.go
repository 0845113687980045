package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/backend/dump"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/server"
	"github.com/dotmesh-io/dotmesh/server/servertest"
)

// The permission matrix: every route of the table, called by every kind
// of principal, against the role each has on the dot. The expectation is
// written here, apart from the table, and the table's declared role must
// agree with it.

// mcase is one call of the matrix. Placeholders in path and body: {D}
// the dot (ns/name), {ns} and {name} its parts, {C} a commit of it, {K}
// a key id of alice's.
type mcase struct {
	method, pattern string // the route table's entry
	path, body      string
	// need is what the call needs: public, auth, self (alice, or an
	// admin), admin, or read/write/owner on the dot of the call.
	need string
	// noAudit: a successful call records nothing (a dry run, a transfer
	// whose peer cannot be reached).
	noAudit bool
}

var matrix = []mcase{
	{"GET", "/healthz", "/healthz", "", "public", false},
	{"GET", "/v1/ping", "/v1/ping", "", "auth", false},
	{"GET", "/v1/me", "/v1/me", "", "auth", false},
	{"GET", "/v1/dots", "/v1/dots", "", "auth", false},
	{"POST", "/v1/dots", "/v1/dots", `{"namespace":"alice","name":"new1"}`, "owner", false},
	{"GET", "/v1/dots/{ns}/{dot}", "/v1/dots/{D}", "", "read", false},
	{"DELETE", "/v1/dots/{ns}/{dot}", "/v1/dots/{D}", "", "owner", false},
	{"GET", "/v1/dots/{ns}/{dot}/branches", "/v1/dots/{D}/branches", "", "read", false},
	{"POST", "/v1/dots/{ns}/{dot}/branches", "/v1/dots/{D}/branches", `{"name":"b2"}`, "write", false},
	{"DELETE", "/v1/dots/{ns}/{dot}/branches/{branch}", "/v1/dots/{D}/branches/dev", "", "write", false},
	{"POST", "/v1/dots/{ns}/{dot}/checkout", "/v1/dots/{D}/checkout", `{"branch":"dev"}`, "write", false},
	{"POST", "/v1/dots/{ns}/{dot}/commits", "/v1/dots/{D}/commits", `{"message":"m","allow_empty":true}`, "write", false},
	{"GET", "/v1/dots/{ns}/{dot}/commits", "/v1/dots/{D}/commits", "", "read", false},
	{"GET", "/v1/dots/{ns}/{dot}/refs/{ref}", "/v1/dots/{D}/refs/HEAD", "", "read", false},
	{"POST", "/v1/dots/{ns}/{dot}/reset", "/v1/dots/{D}/reset", `{"ref":"HEAD","hard":true}`, "write", false},
	{"POST", "/v1/dots/{ns}/{dot}/labels", "/v1/dots/{D}/labels", `{"set":{"tier":"db"},"overwrite":true}`, "write", false},
	{"GET", "/v1/dots/{ns}/{dot}/subdots", "/v1/dots/{D}/subdots", "", "read", false},
	{"GET", "/v1/dots/{ns}/{dot}/diff", "/v1/dots/{D}/diff?from=HEAD&to={C}&path=db&path=web&content=1", "", "read", false},
	{"GET", "/v1/dots/{ns}/{dot}/status", "/v1/dots/{D}/status?rows=0", "", "read", false},
	{"POST", "/v1/path", "/v1/path", `{"volume":"{D}.sub"}`, "write", false},
	{"GET", "/v1/incoming", "/v1/incoming", "", "auth", false},
	{"POST", "/v1/incoming/abort", "/v1/incoming/abort", `{"namespace":"{ns}","name":"{name}"}`, "write", false},
	{"POST", "/v1/gc", "/v1/gc", `{"namespace":"{ns}","name":"{name}","keep":1,"dry_run":true}`, "owner", true},
	{"POST", "/v1/gc", "/v1/gc", `{"keep":0}`, "admin", false},
	{"POST", "/v1/verify", "/v1/verify", `{}`, "admin", false},
	// Policies.
	{"GET", "/v1/policies", "/v1/policies", "", "auth", false},
	{"POST", "/v1/policies", "/v1/policies", `{"every":"1h","keep":"daily=7","labels":["app=shop"]}`, "admin", false},
	{"POST", "/v1/policies/remove", "/v1/policies/remove", `{"labels":["app=shop"]}`, "admin", false},
	{"GET", "/v1/dots/{ns}/{dot}/policy", "/v1/dots/{D}/policy", "", "read", false},
	{"POST", "/v1/dots/{ns}/{dot}/policy", "/v1/dots/{D}/policy", `{"every":"1h","keep":"last=3"}`, "write", false},
	{"POST", "/v1/dots/{ns}/{dot}/policy/prune", "/v1/dots/{D}/policy/prune", `{"keep":"last=1","dry_run":true}`, "write", true},
	{"POST", "/v1/dots/{ns}/{dot}/policy/prune", "/v1/dots/{D}/policy/prune", `{"keep":"last=50"}`, "write", false},
	{"DELETE", "/v1/dots/{ns}/{dot}/policy", "/v1/dots/{D}/policy", "", "write", false},
	// Tags, history, branch rename.
	{"GET", "/v1/dots/{ns}/{dot}/tags", "/v1/dots/{D}/tags", "", "read", false},
	{"POST", "/v1/dots/{ns}/{dot}/tags", "/v1/dots/{D}/tags", `{"name":"t1"}`, "write", false},
	{"DELETE", "/v1/dots/{ns}/{dot}/tags/{tag}", "/v1/dots/{D}/tags/v0", "", "write", false},
	{"POST", "/v1/dots/{ns}/{dot}/branches/{branch}/rename", "/v1/dots/{D}/branches/dev/rename", `{"name":"dev2"}`, "write", false},
	{"GET", "/v1/dots/{ns}/{dot}/history", "/v1/dots/{D}/history?ref=dev", "", "read", false},
	// Transfers: the peer's side...
	{"GET", "/v1/dots/{ns}/{dot}/transfer", "/v1/dots/{D}/transfer?branch=master", "", "read", false},
	{"POST", "/v1/dots/{ns}/{dot}/transfer/commits", "/v1/dots/{D}/transfer/commits?branch=master&format=native:dump", "x", "write", false},
	{"GET", "/v1/dots/{ns}/{dot}/transfer/commits/{id}", "/v1/dots/{D}/transfer/commits/{C}?format=bogus", "", "read", false},
	{"POST", "/v1/dots/{ns}/{dot}/transfer/finish", "/v1/dots/{D}/transfer/finish?branch=master", `{"head":"{C}","old_head":"{C}"}`, "write", false},
	{"GET", "/v1/dots/{ns}/{dot}/transfer/commits/{id}/objects", "/v1/dots/{D}/transfer/commits/{C}/objects?format=bogus", "", "read", false},
	{"POST", "/v1/dots/{ns}/{dot}/transfer/have", "/v1/dots/{D}/transfer/have?branch=master", `{"commit":"{C}","format":"bogus","ids":[]}`, "write", false},
	{"POST", "/v1/dots/{ns}/{dot}/transfer/commits/{id}/fetch", "/v1/dots/{D}/transfer/commits/{C}/fetch", `{}`, "read", false},
	// ...and this node running one against a peer that is not there.
	{"POST", "/v1/transfers", "/v1/transfers", `{"op":"push","dot":"{D}","remote":{"url":"http://127.0.0.1:1","api_key":"k"}}`, "read", true},
	{"POST", "/v1/transfers", "/v1/transfers", `{"op":"pull","dot":"{D}","remote":{"url":"http://127.0.0.1:1","api_key":"k"}}`, "write", true},
	{"POST", "/v1/transfers", "/v1/transfers", `{"op":"clone","dot":"alice/copy","remote_dot":"x/app","remote":{"url":"http://127.0.0.1:1","api_key":"k"}}`, "owner", true},
	// Cluster.
	{"POST", "/v1/dots/{ns}/{dot}/branches/{branch}/release", "/v1/dots/{D}/branches/master/release", `{"to":"n2"}`, "admin", false},
	{"POST", "/v1/dots/{ns}/{dot}/branches/{branch}/take-over", "/v1/dots/{D}/branches/master/take-over", `{}`, "admin", false},
	{"GET", "/v1/cluster/nodes", "/v1/cluster/nodes", "", "admin", false},
	{"GET", "/v1/dots/{ns}/{dot}/replication", "/v1/dots/{D}/replication", "", "read", false},
	// Sources.
	{"GET", "/v1/dots/{ns}/{dot}/sources", "/v1/dots/{D}/sources", "", "read", false},
	{"POST", "/v1/dots/{ns}/{dot}/sources", "/v1/dots/{D}/sources", `{"subdot":"db","kind":"redis","url":"redis://127.0.0.1:1"}`, "write", false},
	{"DELETE", "/v1/dots/{ns}/{dot}/sources/{subdot}", "/v1/dots/{D}/sources/db", "", "write", false},
	{"POST", "/v1/dots/{ns}/{dot}/sources/{subdot}/lifecycle", "/v1/dots/{D}/sources/db/lifecycle", `{"action":"stop"}`, "write", false},
	// Mounts.
	{"POST", "/v1/mounts", "/v1/mounts", `{"volume":"{D}.m","consumer":"flex","id":"x1"}`, "write", false},
	{"DELETE", "/v1/mounts", "/v1/mounts", `{"volume":"{D}.m","consumer":"flex","id":"x1"}`, "write", false},
	{"DELETE", "/v1/mounts", "/v1/mounts", `{"consumer":"flex","id":"x1"}`, "admin", false},
	// Users, keys, sharing, the audit.
	{"GET", "/v1/users", "/v1/users", "", "admin", false},
	{"POST", "/v1/users", "/v1/users", `{"name":"erin"}`, "admin", false},
	{"DELETE", "/v1/users/{user}", "/v1/users/dave", "", "admin", false},
	{"GET", "/v1/users/{user}/keys", "/v1/users/alice/keys", "", "self", false},
	{"POST", "/v1/users/{user}/keys", "/v1/users/alice/keys", `{"label":"x"}`, "self", false},
	{"DELETE", "/v1/users/{user}/keys/{id}", "/v1/users/alice/keys/{K}", "", "self", false},
	{"GET", "/v1/dots/{ns}/{dot}/sharing", "/v1/dots/{D}/sharing", "", "owner", false},
	{"PUT", "/v1/dots/{ns}/{dot}/sharing/{user}", "/v1/dots/{D}/sharing/dave", `{"role":"read"}`, "owner", false},
	{"DELETE", "/v1/dots/{ns}/{dot}/sharing/{user}", "/v1/dots/{D}/sharing/carol", "", "owner", false},
	{"PUT", "/v1/dots/{ns}/{dot}/visibility", "/v1/dots/{D}/visibility", `{"visibility":"public"}`, "owner", false},
	{"GET", "/v1/audit", "/v1/audit", "", "admin", false},
	// The passwords of the store encrypted at rest (this one is plain:
	// the admin's calls get past the guard and find no keys).
	{"GET", "/v1/store/keys", "/v1/store/keys", "", "admin", false},
	{"POST", "/v1/store/keys", "/v1/store/keys", `{"password":"x"}`, "admin", false},
	{"DELETE", "/v1/store/keys/{id}", "/v1/store/keys/0123456789abcdef", "", "admin", false},
	{"GET", "/v1/audit", "/v1/audit?dot={D}", "", "owner", false},
	// Hooks run commands on the node: the admin's, even to read (a URL
	// may hold a password).
	{"GET", "/v1/hooks", "/v1/hooks", "", "admin", false},
	{"GET", "/v1/dots/{ns}/{dot}/hooks", "/v1/dots/{D}/hooks", "", "admin", false},
	{"PUT", "/v1/dots/{ns}/{dot}/hooks/{stage}", "/v1/dots/{D}/hooks/pre-commit", `{"kind":"command","command":["true"],"timeout":1000000000}`, "admin", false},
	{"DELETE", "/v1/dots/{ns}/{dot}/hooks/{stage}", "/v1/dots/{D}/hooks/post-commit", "", "admin", false},
}

// mprincipal is one caller of the matrix.
type mprincipal struct {
	name string
	// role on the dot of the calls (RoleNone: cannot see it); admin for
	// the admin.
	role     dotmesh.Role
	readOnly bool
	user     string // "" for anonymous
	unauth   bool   // refused before any role: 401
	public   bool   // calls go to the public dot
	anonSrv  bool   // calls go to the server with AnonymousRead
}

var principals = []mprincipal{
	{name: "admin", role: dotmesh.RoleAdmin, user: "admin"},
	{name: "owner", role: dotmesh.RoleOwner, user: "alice"},
	{name: "writer", role: dotmesh.RoleWrite, user: "bob"},
	{name: "reader", role: dotmesh.RoleRead, user: "carol"},
	{name: "unrelated", role: dotmesh.RoleNone, user: "dave"},
	{name: "owner's read-only key", role: dotmesh.RoleRead, readOnly: true, user: "alice"},
	{name: "revoked key", unauth: true},
	{name: "anonymous", unauth: true},
	{name: "anonymous, --anonymous-read, private dot", role: dotmesh.RoleNone, anonSrv: true},
	{name: "anonymous, --anonymous-read, public dot", role: dotmesh.RoleRead, anonSrv: true, public: true},
}

// fixture is a node with four users and two dots of alice's: app
// (private; bob may write, carol read) and pub (public).
type fixture struct {
	n      *servertest.Node
	anon   *httptest.Server
	auth   map[string]func(*http.Request) // by principal name
	commit map[string]string              // head of master, by dot
	spare  string                         // a key id of alice's, to revoke
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	n := servertest.Start(t)
	anon := httptest.NewServer(server.New(n.Node, server.Options{
		Logger: servertest.Logger(t), Version: "test", AnonymousRead: true,
		BackendAliases: map[string]string{dump.UserName: dump.Name},
	}))
	t.Cleanup(anon.Close)
	f := &fixture{n: n, anon: anon, auth: map[string]func(*http.Request){}, commit: map[string]string{}}
	f.auth["admin"] = basic(api.AdminUser, n.Key)
	secrets := map[string]string{}
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		_, _, secret, err := n.Node.Users().Add(ctx, u, "first")
		if err != nil {
			t.Fatalf("adding user %s: %v", u, err)
		}
		secrets[u] = secret
	}
	f.auth["owner"] = basic("alice", secrets["alice"])
	f.auth["writer"] = basic("bob", secrets["bob"])
	f.auth["reader"] = bearer(secrets["carol"]) // a bearer key names no user
	f.auth["unrelated"] = basic("dave", secrets["dave"])
	_, ro, err := n.Node.APIKeys().Issue(ctx, "alice", "ci", true)
	if err != nil {
		t.Fatalf("issuing a read-only key: %v", err)
	}
	f.auth["owner's read-only key"] = basic("alice", ro)
	gone, goneSecret, err := n.Node.APIKeys().Issue(ctx, "alice", "old", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Node.APIKeys().Revoke(ctx, "alice", gone.ID); err != nil {
		t.Fatal(err)
	}
	f.auth["revoked key"] = basic("alice", goneSecret)
	spare, _, err := n.Node.APIKeys().Issue(ctx, "alice", "spare", false)
	if err != nil {
		t.Fatal(err)
	}
	f.spare = spare.ID
	for _, name := range []string{"app", "pub"} {
		d := dotmesh.DotName{Namespace: "alice", Name: name}
		if _, err := n.Node.CreateDot(ctx, d, dotmesh.CreateDotOptions{}); err != nil {
			t.Fatalf("creating %s: %v", d, err)
		}
		c, err := n.Node.Commit(ctx, d, "", dotmesh.CommitOptions{Message: "first", Author: "alice", AllowEmpty: true})
		if err != nil {
			t.Fatal(err)
		}
		f.commit[d.Namespace+"/"+d.Name] = string(c.ID)
		if _, err := n.Node.CreateBranch(ctx, d, "dev", ""); err != nil {
			t.Fatal(err)
		}
		if _, err := n.Node.Tags().Create(ctx, d, "v0", dotmesh.TagOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := n.Node.Access().Share(ctx, d, "bob", dotmesh.RoleWrite, "alice"); err != nil {
			t.Fatal(err)
		}
		if err := n.Node.Access().Share(ctx, d, "carol", dotmesh.RoleRead, "alice"); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.Node.Access().SetVisibility(ctx, dotmesh.DotName{Namespace: "alice", Name: "pub"}, dotmesh.VisibilityPublic); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Node.SetHook(ctx, dotmesh.DotName{Namespace: "alice", Name: "app"}, dotmesh.Hook{Stage: dotmesh.HookPostCommit, Kind: dotmesh.HookCommand, Command: []string{"true"}}); err != nil {
		t.Fatal(err)
	}
	return f
}

// snapshot is every key and value of the registry.
func (f *fixture) snapshot(t *testing.T) map[string]string {
	t.Helper()
	kvs, err := f.n.Store.List(context.Background(), "")
	if err != nil {
		t.Fatalf("listing the registry: %v", err)
	}
	out := map[string]string{}
	for _, kv := range kvs {
		out[kv.Key] = string(kv.Value)
	}
	return out
}

func (f *fixture) auditCount(t *testing.T) int {
	t.Helper()
	recs, _, err := f.n.Node.Audit().List(context.Background(), dotmesh.AuditQuery{Limit: 1000})
	if err != nil {
		t.Fatalf("reading the audit: %v", err)
	}
	return len(recs)
}

func roleNamed(s string) dotmesh.Role {
	r, err := dotmesh.ParseRole(s)
	if err != nil {
		panic(s)
	}
	return r
}

// expect returns whether p may make call c, and when not the status and
// the role the refusal must name.
func expect(c mcase, changes bool, p mprincipal) (allowed bool, status int, need dotmesh.Role) {
	if c.need == "public" {
		return true, 0, 0
	}
	if p.unauth {
		return false, http.StatusUnauthorized, 0
	}
	roFail := p.readOnly && changes
	switch c.need {
	case "auth":
		return true, 0, 0
	case "admin":
		return p.role == dotmesh.RoleAdmin, http.StatusForbidden, dotmesh.RoleAdmin
	case "self":
		ok := p.role == dotmesh.RoleAdmin || (p.user == "alice" && !roFail)
		need := dotmesh.RoleAdmin
		if roFail {
			need = dotmesh.RoleWrite
		}
		return ok, http.StatusForbidden, need
	}
	need = roleNamed(c.need)
	if roFail && need < dotmesh.RoleWrite {
		need = dotmesh.RoleWrite
	}
	return p.role >= need, http.StatusForbidden, need
}

func (f *fixture) expand(s string, p mprincipal) string {
	dot := "alice/app"
	if p.public {
		dot = "alice/pub"
	}
	ns, name, _ := strings.Cut(dot, "/")
	return strings.NewReplacer("{D}", dot, "{ns}", ns, "{name}", name, "{C}", f.commit[dot], "{K}", f.spare).Replace(s)
}

func (f *fixture) call(t *testing.T, c mcase, p mprincipal) (int, []byte) {
	t.Helper()
	base := f.n.URL
	if p.anonSrv {
		base = f.anon.URL
	}
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(f.expand(c.body, p))
	}
	req, err := http.NewRequest(c.method, base+f.expand(c.path, p), body)
	if err != nil {
		t.Fatal(err)
	}
	if c.body != "" && !strings.HasSuffix(c.pattern, "/transfer/commits") {
		req.Header.Set("Content-Type", "application/json")
	}
	if a := f.auth[p.name]; a != nil {
		a(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", c.method, c.path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestPermissionMatrix drives every route of the table with every kind
// of principal: allowed calls get past the guard, refused ones get 403
// (401 without valid credentials) naming the missing role and change
// nothing in the registry; allowed changes are audited.
func TestPermissionMatrix(t *testing.T) {
	table, _ := server.RouteTable()
	covered := map[string]bool{}
	for _, c := range matrix {
		covered[c.method+" "+c.pattern] = true
	}
	changes, audited := map[string]bool{}, map[string]bool{}
	for _, rt := range table {
		key := rt.Method + " " + rt.Pattern
		if !covered[key] {
			t.Errorf("route %s is in the table but not in the permission matrix: add it to matrix with the role it needs", key)
		}
		changes[key] = rt.Audit != "" || (rt.Access == "dot" && rt.Need > dotmesh.RoleRead)
		audited[key] = rt.Audit != ""
		// The table's declared role agrees with the matrix's.
		for _, c := range matrix {
			if c.method+" "+c.pattern != key {
				continue
			}
			want := map[string]string{"public": "public", "auth": "authenticated", "admin": "admin", "self": "self"}[c.need]
			if want == "" && rt.Access == "dot" && rt.Need.String() != c.need {
				t.Errorf("%s: the table needs %s, the matrix %s", key, rt.Need, c.need)
			}
			if want != "" && rt.Access != want && rt.Access != "body" {
				t.Errorf("%s: the table's access is %s, the matrix's %s", key, rt.Access, want)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("permission matrix: %d routes, %d calls x %d principals = %d checks", len(table), len(matrix), len(principals), len(matrix)*len(principals))
	f := newFixture(t)
	for _, c := range matrix {
		for _, p := range principals {
			what := fmt.Sprintf("%s %s as %s", c.method, f.expand(c.path, p), p.name)
			allowed, wantStatus, need := expect(c, changes[c.method+" "+c.pattern], p)
			before := f.snapshot(t)
			audits := f.auditCount(t)
			status, b := f.call(t, c, p)
			if !allowed {
				checkRefusal(t, what, status, b, wantStatus, need)
				if after := f.snapshot(t); !reflect.DeepEqual(before, after) {
					t.Errorf("%s: refused, but the registry changed: %s", what, diffKeys(before, after))
				}
				continue
			}
			if status == http.StatusUnauthorized || status == http.StatusForbidden {
				t.Errorf("%s: refused with %d, want it allowed: %s", what, status, b)
				continue
			}
			if changes[c.method+" "+c.pattern] {
				if audited[c.method+" "+c.pattern] && status >= 200 && status < 300 && !c.noAudit {
					if got := f.auditCount(t); got != audits+1 {
						t.Errorf("%s: answered %d and left %d new audit records, want 1", what, status, got-audits)
					}
				}
				f = newFixture(t) // the call may have changed what the next ones need
			}
		}
	}
}

func checkRefusal(t *testing.T, what string, status int, b []byte, wantStatus int, need dotmesh.Role) {
	t.Helper()
	if status != wantStatus {
		t.Errorf("%s: status %d, want %d: %s", what, status, wantStatus, b)
		return
	}
	var e api.Error
	if err := json.Unmarshal(b, &e); err != nil {
		t.Errorf("%s: error body %q: %v", what, b, err)
		return
	}
	if wantStatus == http.StatusUnauthorized {
		if e.Code != "unauthorized" {
			t.Errorf("%s: code %s", what, e.Code)
		}
		return
	}
	re := &api.RemoteError{Status: status, Message: e.Error, Code: e.Code, Reason: e.Reason}
	var pe *dotmesh.PermissionError
	if !errors.As(re, &pe) {
		t.Errorf("%s: the refusal carries no PermissionError: %s", what, b)
		return
	}
	if pe.Need != need || !strings.Contains(e.Error, "needs "+need.String()) {
		t.Errorf("%s: the refusal names %s (%q), want %s", what, pe.Need, e.Error, need)
	}
}

func diffKeys(a, b map[string]string) string {
	var out []string
	for k, v := range a {
		if w, ok := b[k]; !ok {
			out = append(out, "-"+k)
		} else if w != v {
			out = append(out, "~"+k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, "+"+k)
		}
	}
	return strings.Join(out, " ")
}

// TestEveryRouteInTable: the mux holds exactly the table's routes, and
// nothing in the package registers a route past it.
func TestEveryRouteInTable(t *testing.T) {
	table, mux := server.RouteTable()
	for _, rt := range table {
		path := strings.NewReplacer("{ns}", "a", "{dot}", "b", "{branch}", "c", "{ref}", "d", "{id}", "e", "{subdot}", "f", "{user}", "g").Replace(rt.Pattern)
		r := httptest.NewRequest(rt.Method, path, nil)
		if _, pattern := mux.Handler(r); pattern != rt.Method+" "+rt.Pattern {
			t.Errorf("%s %s is served by %q", rt.Method, rt.Pattern, pattern)
		}
	}
	// Only register adds to the mux: no Handle or HandleFunc elsewhere.
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			fn, ok := n.(*ast.FuncDecl)
			if ok && fn.Name.Name == "register" && name == "routes.go" {
				return false
			}
			if sel, ok := n.(*ast.SelectorExpr); ok && (sel.Sel.Name == "HandleFunc" || sel.Sel.Name == "Handle") {
				t.Errorf("%s: %s registers a route outside the route table", fset.Position(sel.Pos()), sel.Sel.Name)
			}
			return true
		})
	}
}

// TestRouteWithoutRolePanics: deny by default, at startup.
func TestRouteWithoutRolePanics(t *testing.T) {
	for _, c := range []struct{ method, pattern, access string }{
		{"GET", "/v1/x", ""},
		{"GET", "/v1/dots/{ns}/{dot}/x", "dot"}, // no role
		{"GET", "/v1/x", "dot"},                 // no dot to check
		{"GET", "/v1/x", "self"},                // no user
		{"POST", "/v1/x", "body"},               // no check
		{"GET", "/v1/x", "public"},              // only /healthz is public
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%+v: registered without panic", c)
				}
			}()
			server.ValidateRoute(c.method, c.pattern, c.access)
		}()
	}
}
