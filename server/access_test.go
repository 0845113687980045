package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/client"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/server"
	"github.com/dotmesh-io/dotmesh/server/servertest"
)

func newClient(t *testing.T, url, user, key string) *client.Client {
	t.Helper()
	c, err := client.New(url, user, key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestAccessAPI drives users, keys, sharing, visibility and the audit
// through the client, as the CLI and the UI do.
func TestAccessAPI(t *testing.T) {
	ctx := context.Background()
	n := servertest.Start(t)
	admin := newClient(t, n.URL, api.AdminUser, n.Key)

	me, err := admin.Me(ctx)
	if err != nil || me.User != api.AdminUser || !me.Admin {
		t.Fatalf("admin's Me: %+v %v", me, err)
	}
	ak, err := admin.AddUser(ctx, "alice", "laptop")
	if err != nil || ak.User.Name != "alice" || ak.Secret == "" || ak.Key.Label != "laptop" {
		t.Fatalf("AddUser: %+v %v", ak, err)
	}
	bk, err := admin.AddUser(ctx, "bob", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.AddUser(ctx, "../x", ""); !errors.Is(err, dotmesh.ErrInvalidName) {
		t.Fatalf("a bad user name: %v", err)
	}
	users, err := admin.Users(ctx)
	if err != nil || len(users) != 3 {
		t.Fatalf("Users: %+v %v", users, err)
	}
	alice := newClient(t, n.URL, "alice", ak.Secret)
	bob := newClient(t, n.URL, "bob", bk.Secret)

	// A name without namespace is the caller's own.
	d, err := alice.CreateDot(ctx, dotmesh.DotName{Name: "app"}, "")
	if err != nil || d.Namespace != "alice" {
		t.Fatalf("alice creates app: %+v %v", d, err)
	}
	app := dotmesh.DotName{Namespace: "alice", Name: "app"}
	c1, err := alice.CommitWith(ctx, dotmesh.DotName{Name: "app"}, api.CommitRequest{Message: "first", AllowEmpty: true})
	if err != nil || c1.Author != "alice" {
		t.Fatalf("alice commits: %+v %v", c1, err)
	}
	// Users cannot make dots in others' namespaces; admins can.
	_, err = bob.CreateDot(ctx, dotmesh.DotName{Namespace: "alice", Name: "x"}, "")
	var pe *dotmesh.PermissionError
	if !errors.As(err, &pe) || pe.User != "bob" || pe.Need != dotmesh.RoleOwner || pe.Have != dotmesh.RoleNone || pe.Dot == nil || *pe.Dot != (dotmesh.DotName{Namespace: "alice", Name: "x"}) {
		t.Fatalf("bob creates alice/x: %#v (%v)", pe, err)
	}
	if _, err := admin.CreateDot(ctx, dotmesh.DotName{Namespace: "bob", Name: "given"}, ""); err != nil {
		t.Fatalf("admin creates bob/given: %v", err)
	}

	// Bob sees nothing of alice's until she shares; the refusal of a dot
	// he cannot see is the refusal of one that does not exist.
	_, errApp := bob.Status(ctx, app)
	_, errNone := bob.Status(ctx, dotmesh.DotName{Namespace: "alice", Name: "nothing"})
	if !errors.Is(errApp, dotmesh.ErrPermissionDenied) || errApp.Error() != "permission denied: status needs read, and user \"bob\" has none on alice/app" {
		t.Fatalf("bob's status of alice/app: %v", errApp)
	}
	if errNone.Error() != "permission denied: status needs read, and user \"bob\" has none on alice/nothing" {
		t.Fatalf("bob's status of a missing dot: %v", errNone)
	}
	if list, err := bob.ListDots(ctx); err != nil || len(list) != 1 || list[0].Dot.Name != "given" {
		t.Fatalf("bob's list before sharing: %+v %v", list, err)
	}
	if err := bob.Share(ctx, app, "bob", dotmesh.RoleWrite); !errors.Is(err, dotmesh.ErrPermissionDenied) {
		t.Fatalf("bob shares alice's dot with himself: %v", err)
	}
	if err := alice.Share(ctx, app, "bob", dotmesh.RoleRead); err != nil {
		t.Fatal(err)
	}
	if err := alice.Share(ctx, app, "bob", dotmesh.RoleOwner); !errors.Is(err, dotmesh.ErrInvalidArgument) {
		t.Fatalf("sharing as owner: %v", err)
	}
	sh, err := alice.Sharing(ctx, app)
	if err != nil || sh.Owner != "alice" || len(sh.Grants) != 1 || sh.Grants[0].User != "bob" || sh.Grants[0].Role != dotmesh.RoleRead {
		t.Fatalf("Sharing: %+v %v", sh, err)
	}
	if list, err := bob.ListDots(ctx); err != nil || len(list) != 2 {
		t.Fatalf("bob's list after sharing: %+v %v", list, err)
	}
	if _, err := bob.Log(ctx, app, "", 0); err != nil {
		t.Fatalf("bob reads the log: %v", err)
	}
	_, err = bob.Commit(ctx, app, "", "by bob", nil)
	if !errors.As(err, &pe) || pe.Need != dotmesh.RoleWrite || pe.Have != dotmesh.RoleRead || pe.Action != "commit" {
		t.Fatalf("bob commits with read: %v", err)
	}
	if err := alice.Share(ctx, app, "bob", dotmesh.RoleWrite); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.CommitWith(ctx, app, api.CommitRequest{Message: "by bob", AllowEmpty: true}); err != nil {
		t.Fatalf("bob commits with write: %v", err)
	}
	if err := bob.DeleteDot(ctx, app); !errors.As(err, &pe) || pe.Need != dotmesh.RoleOwner {
		t.Fatalf("bob deletes alice's dot: %v", err)
	}

	// Keys: a read-only key reads and changes nothing, not even keys.
	ro, err := alice.AddKey(ctx, "alice", "ci", true)
	if err != nil || !ro.Key.ReadOnly {
		t.Fatalf("AddKey: %+v %v", ro, err)
	}
	aliceRO := newClient(t, n.URL, "alice", ro.Secret)
	if p, err := aliceRO.Me(ctx); err != nil || !p.ReadOnly || p.User != "alice" {
		t.Fatalf("read-only Me: %+v %v", p, err)
	}
	if _, err := aliceRO.Log(ctx, app, "", 0); err != nil {
		t.Fatalf("a read-only key reads: %v", err)
	}
	_, err = aliceRO.Commit(ctx, app, "", "ro", nil)
	if !errors.As(err, &pe) || !pe.ReadOnlyKey || pe.Need != dotmesh.RoleWrite {
		t.Fatalf("a read-only key commits: %v", err)
	}
	if _, err := aliceRO.AddKey(ctx, "alice", "more", false); !errors.As(err, &pe) || !pe.ReadOnlyKey {
		t.Fatalf("a read-only key makes a key: %v", err)
	}
	if err := aliceRO.RevokeKey(ctx, "alice", ro.Key.ID); !errors.As(err, &pe) || !pe.ReadOnlyKey {
		t.Fatalf("a read-only key revokes a key: %v", err)
	}
	if _, err := bob.Keys(ctx, "alice"); !errors.As(err, &pe) || pe.Need != dotmesh.RoleAdmin {
		t.Fatalf("bob lists alice's keys: %v", err)
	}
	keys, err := admin.Keys(ctx, "alice")
	if err != nil || len(keys) != 2 {
		t.Fatalf("admin lists alice's keys: %+v %v", keys, err)
	}
	if err := alice.RevokeKey(ctx, "alice", ro.Key.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := aliceRO.Me(ctx); !errors.Is(err, dotmesh.ErrUnauthorized) {
		t.Fatalf("a revoked key: %v", err)
	}

	// Visibility and anonymous readers.
	anonSrv := httptest.NewServer(server.New(n.Node, server.Options{Logger: servertest.Logger(t), AnonymousRead: true}))
	t.Cleanup(anonSrv.Close)
	anonList := func() []dotmesh.DotStatus {
		t.Helper()
		var list []dotmesh.DotStatus
		status, b := call(t, &servertest.Node{URL: anonSrv.URL}, noAuth, "GET", "/v1/dots", "")
		if status != 200 {
			t.Fatalf("anonymous list: %d %s", status, b)
		}
		mustJSON(t, b, &list)
		return list
	}
	if l := anonList(); len(l) != 0 {
		t.Fatalf("anonymous sees %+v", l)
	}
	if err := bob.SetVisibility(ctx, app, dotmesh.VisibilityPublic); !errors.Is(err, dotmesh.ErrPermissionDenied) {
		t.Fatalf("a writer makes it public: %v", err)
	}
	if err := alice.SetVisibility(ctx, app, dotmesh.VisibilityPublic); err != nil {
		t.Fatal(err)
	}
	if l := anonList(); len(l) != 1 || l[0].Dot.Name != "app" {
		t.Fatalf("anonymous sees %+v after making app public", l)
	}
	if status, b := call(t, &servertest.Node{URL: anonSrv.URL}, noAuth, "POST", "/v1/dots/alice/app/commits", `{"message":"anon"}`); status != 403 {
		t.Fatalf("anonymous commit: %d %s", status, b)
	}
	if status, _ := call(t, n, noAuth, "GET", "/v1/dots/alice/app", ""); status != 401 {
		t.Fatalf("without --anonymous-read, no credentials: %d", status)
	}
	if err := alice.Unshare(ctx, app, "bob"); err != nil {
		t.Fatal(err)
	}

	// The audit: the admin reads all, an owner their dot's.
	page, err := alice.Audit(ctx, dotmesh.AuditQuery{Dot: &dotmesh.DotName{Name: "app"}})
	if err != nil {
		t.Fatal(err)
	}
	var commits, shares int
	for _, r := range page.Records {
		if r.Dot != "alice/app" {
			t.Errorf("alice's audit of app has %+v", r)
		}
		switch r.Action {
		case "commit":
			commits++
			if r.Commit == "" || r.Branch != "master" || (r.User != "alice" && r.User != "bob") {
				t.Errorf("commit record %+v", r)
			}
		case "share":
			shares++
		}
	}
	if commits != 2 || shares != 2 {
		t.Fatalf("audit of alice/app: %d commits, %d shares: %+v", commits, shares, page.Records)
	}
	if _, err := alice.Audit(ctx, dotmesh.AuditQuery{}); !errors.As(err, &pe) || pe.Need != dotmesh.RoleAdmin {
		t.Fatalf("alice reads the node's audit: %v", err)
	}
	all, err := admin.Audit(ctx, dotmesh.AuditQuery{Limit: 2})
	if err != nil || len(all.Records) != 2 || all.Next == "" {
		t.Fatalf("admin's first audit page: %+v %v", all, err)
	}

	// Users with dots cannot be removed; others can.
	if err := admin.RemoveUser(ctx, "alice"); !errors.Is(err, dotmesh.ErrInUse) {
		t.Fatalf("removing alice with dots: %v", err)
	}
	if err := bob.RemoveUser(ctx, "alice"); !errors.Is(err, dotmesh.ErrPermissionDenied) {
		t.Fatalf("bob removes alice: %v", err)
	}
	if err := admin.DeleteDot(ctx, dotmesh.DotName{Namespace: "bob", Name: "given"}); err != nil {
		t.Fatal(err)
	}
	if err := admin.RemoveUser(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Me(ctx); !errors.Is(err, dotmesh.ErrUnauthorized) {
		t.Fatalf("a removed user's key: %v", err)
	}
}

// TestTransferNamespaces: a user pushing to a hub without naming the
// remote dot pushes into their namespace there, and cloning another's dot
// makes it the caller's own locally; the upstream follows.
func TestTransferNamespaces(t *testing.T) {
	ctx := context.Background()
	hub := servertest.Start(t)
	laptop := servertest.Start(t)
	hubAdmin := newClient(t, hub.URL, api.AdminUser, hub.Key)
	ak, err := hubAdmin.AddUser(ctx, "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hubAdmin.AddUser(ctx, "bob", ""); err != nil {
		t.Fatal(err)
	}
	lapAdmin := newClient(t, laptop.URL, api.AdminUser, laptop.Key)
	lk, err := lapAdmin.AddUser(ctx, "carol", "")
	if err != nil {
		t.Fatal(err)
	}
	carol := newClient(t, laptop.URL, "carol", lk.Secret)
	if _, err := carol.CreateDot(ctx, dotmesh.DotName{Name: "app"}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := carol.CommitWith(ctx, dotmesh.DotName{Name: "app"}, api.CommitRequest{Message: "first", AllowEmpty: true}); err != nil {
		t.Fatal(err)
	}
	remote := api.TransferRemote{Name: "hub", URL: hub.URL, User: "alice", APIKey: ak.Secret}
	res, err := carol.Transfer(ctx, api.TransferRequest{Op: "push", Dot: "app", Remote: remote}, nil)
	if err != nil || res.Commits != 1 {
		t.Fatalf("carol pushes app to alice@hub: %+v %v", res, err)
	}
	if _, err := hub.Node.Dot(ctx, dotmesh.DotName{Namespace: "alice", Name: "app"}); err != nil {
		t.Fatalf("the push did not land in alice/app: %v", err)
	}
	d, err := laptop.Node.Dot(ctx, dotmesh.DotName{Namespace: "carol", Name: "app"})
	if err != nil || d.Upstreams["hub"] != "alice/app" {
		t.Fatalf("upstream of carol/app: %+v %v", d, err)
	}
	// Both sides audit the push: the run here, the finish on the hub.
	// The transfer's answer streams: its last line may reach the client
	// before the audit record is written, just after.
	var lapAudit []dotmesh.AuditRecord
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		lapAudit, _, err = laptop.Node.Audit().List(ctx, dotmesh.AuditQuery{Limit: 1})
		if err != nil || (len(lapAudit) == 1 && lapAudit[0].Action == "push") || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || len(lapAudit) != 1 || lapAudit[0].Action != "push" || lapAudit[0].User != "carol" || lapAudit[0].Dot != "carol/app" || lapAudit[0].Commit == "" {
		t.Fatalf("the laptop's audit of the push: %+v %v", lapAudit, err)
	}
	hubAudit, _, err := hub.Node.Audit().List(ctx, dotmesh.AuditQuery{Limit: 1})
	if err != nil || len(hubAudit) != 1 || hubAudit[0].Action != "push" || hubAudit[0].User != "alice" || hubAudit[0].Dot != "alice/app" || hubAudit[0].Commit != string(lapAudit[0].Commit) {
		t.Fatalf("the hub's audit of the push: %+v %v", hubAudit, err)
	}
	// A push that moves the hub's existing branch: its Finish rides on the
	// commit's request and writes the audit record in the head's
	// transaction, once.
	second, err := carol.CommitWith(ctx, dotmesh.DotName{Name: "app"}, api.CommitRequest{Message: "second", AllowEmpty: true})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := carol.Transfer(ctx, api.TransferRequest{Op: "push", Dot: "app", Remote: remote}, nil); err != nil || res.Commits != 1 {
		t.Fatalf("carol pushes a second commit of app to alice@hub: %+v %v", res, err)
	}
	hubAudit, _, err = hub.Node.Audit().List(ctx, dotmesh.AuditQuery{Limit: 2})
	if err != nil || len(hubAudit) != 2 || hubAudit[0].Action != "push" || hubAudit[0].User != "alice" || hubAudit[0].Dot != "alice/app" ||
		hubAudit[0].Branch != "master" || hubAudit[0].Commit != string(second.ID) || hubAudit[1].Commit != lapAudit[0].Commit {
		t.Fatalf("the hub's audit of the second push (newest first; want one record of commit %s, then the first push's): %+v %v", second.ID, hubAudit, err)
	}
	// Pushing into bob's namespace is refused by the hub, as the peer's
	// refusal.
	_, err = carol.Transfer(ctx, api.TransferRequest{Op: "push", Dot: "app", RemoteDot: "bob/app", Remote: remote}, nil)
	var pe *dotmesh.PermissionError
	if !errors.As(err, &pe) || pe.User != "alice" {
		t.Fatalf("pushing into bob/app: %v", err)
	}
	// The hub's alice clones... from the laptop: a clone of carol's dot
	// lands in the caller's namespace under its own name.
	if err := lapAdmin.SetVisibility(ctx, dotmesh.DotName{Namespace: "carol", Name: "app"}, dotmesh.VisibilityPublic); err != nil {
		t.Fatal(err)
	}
	lapDave, err := lapAdmin.AddUser(ctx, "dave", "")
	if err != nil {
		t.Fatal(err)
	}
	dave := newClient(t, laptop.URL, "dave", lapDave.Secret)
	res, err = dave.Transfer(ctx, api.TransferRequest{Op: "clone", Dot: "alice/app", RemoteDot: "alice/app", Remote: remote}, nil)
	if err != nil {
		t.Fatalf("dave clones alice/app from the hub: %v", err)
	}
	d, err = laptop.Node.Dot(ctx, dotmesh.DotName{Namespace: "dave", Name: "app"})
	if err != nil || d.Upstreams["hub"] != "alice/app" {
		t.Fatalf("dave's clone: %+v %v (result %+v)", d, err, res)
	}
	// Clone into another's namespace: refused before anything moves.
	_, err = dave.Transfer(ctx, api.TransferRequest{Op: "clone", Dot: "carol/copy", RemoteDot: "alice/app", Remote: remote}, nil)
	if !errors.As(err, &pe) || pe.User != "dave" || pe.Need != dotmesh.RoleOwner {
		t.Fatalf("dave clones into carol's namespace: %v", err)
	}
}

func mustJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
}

// unfinished is a transport whose Finish fails: the receiver keeps what
// arrived as an incoming transfer. Its last commit carries no finish
// along (dotmesh.FinishAlong), so that Finish is the one called.
type unfinished struct{ *client.Client }

func (u unfinished) SendCommit(ctx context.Context, dot dotmesh.DotName, branch string, c dotmesh.Commit, base *dotmesh.CommitID, format string, data io.Reader) error {
	return u.Client.SendCommit(dotmesh.WithFinishAlong(ctx, nil), dot, branch, c, base, format, data)
}

func (unfinished) Finish(context.Context, dotmesh.DotName, string, dotmesh.FinishRequest) (*dotmesh.FinishResult, error) {
	return nil, errors.New("cut off before finish")
}

// TestIncomingFiltered: the incoming transfers listed are those of dots
// the caller may read, and only writers abort them.
func TestIncomingFiltered(t *testing.T) {
	ctx := context.Background()
	hub := servertest.Start(t)
	src := servertest.Start(t)
	admin := newClient(t, hub.URL, api.AdminUser, hub.Key)
	ak, err := admin.AddUser(ctx, "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	bk, err := admin.AddUser(ctx, "bob", "")
	if err != nil {
		t.Fatal(err)
	}
	alice, bob := newClient(t, hub.URL, "alice", ak.Secret), newClient(t, hub.URL, "bob", bk.Secret)
	app := dotmesh.DotName{Namespace: "admin", Name: "app"}
	if _, err := src.Node.CreateDot(ctx, app, dotmesh.CreateDotOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Node.Commit(ctx, app, "", dotmesh.CommitOptions{Message: "one", AllowEmpty: true}); err != nil {
		t.Fatal(err)
	}
	target := dotmesh.DotName{Namespace: "alice", Name: "app"}
	if _, err := src.Node.Push(ctx, app, "", unfinished{alice}, dotmesh.TransferOptions{RemoteDot: target}); err == nil {
		t.Fatal("the push finished")
	}
	for who, c := range map[string]*client.Client{"admin": admin, "alice": alice} {
		if in, err := c.IncomingTransfers(ctx); err != nil || len(in) != 1 || in[0].Namespace != "alice" {
			t.Fatalf("%s's incoming: %+v %v", who, in, err)
		}
	}
	if in, err := bob.IncomingTransfers(ctx); err != nil || len(in) != 0 {
		t.Fatalf("bob's incoming: %+v %v", in, err)
	}
	// A listing for people has them too, in one request; from a node that
	// predates api.ListTableHeader (here: the header taken away), in two.
	var requests atomic.Int32
	var oldNode atomic.Bool
	h := hub.Server.Config.Handler
	hub.Server.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if oldNode.Load() {
			r.Header.Del(api.ListTableHeader)
		}
		h.ServeHTTP(w, r)
	})
	// The answer leaves out what a table does not show.
	if _, err := hub.Node.CreateDot(ctx, app, dotmesh.CreateDotOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := hub.Node.Commit(ctx, app, "", dotmesh.CommitOptions{Message: "one", AllowEmpty: true}); err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest("GET", hub.URL+"/v1/dots", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(api.AdminUser, hub.Key)
	req.Header.Set(api.ListTableHeader, "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var list api.DotList
	mustJSON(t, body, &list)
	if len(list.Dots) != 1 || list.Dots[0].Commits != 1 || list.Dots[0].Head != nil || list.Dots[0].Branches != nil || len(list.Incoming) != 1 {
		t.Fatalf("a table's listing: %s", body)
	}
	req.Header.Set(api.ListTableHeader, api.ListTableRows)
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	var table api.DotTable
	mustJSON(t, body, &table)
	if len(table.Rows) != 1 || table.Rows[0].Commits != 1 || table.Rows[0].Namespace != "admin" || table.Rows[0].Branch != "master" || len(table.Incoming) != 1 {
		t.Fatalf("a table's rows: %s", body)
	}
	for _, old := range []bool{false, true} {
		oldNode.Store(old)
		for who, c := range map[string]*client.Client{"admin": admin, "alice": alice, "bob": bob} {
			requests.Store(0)
			dots, in, err := c.ListDotsTableIncoming(ctx)
			want, wantRequests := 1, 1
			if who == "bob" {
				want = 0
			}
			if old {
				wantRequests = 2
			}
			if err != nil || len(in) != want || (want == 1 && in[0].Namespace != "alice") || requests.Load() != int32(wantRequests) {
				t.Fatalf("old node %v: %s's listing: incoming %+v, %v, in %d requests (want %d)", old, who, in, err, requests.Load(), wantRequests)
			}
			if all, err := c.ListDotsTable(ctx); err != nil || !reflect.DeepEqual(all, dots) {
				t.Fatalf("old node %v: %s's listing: dots %+v, ListDotsTable %+v, %v", old, who, dots, all, err)
			}
		}
	}
	var pe *dotmesh.PermissionError
	if _, err := bob.AbortIncoming(ctx, target, ""); !errors.As(err, &pe) || pe.Need != dotmesh.RoleWrite {
		t.Fatalf("bob aborts alice's incoming transfer: %v", err)
	}
	if res, err := alice.AbortIncoming(ctx, target, ""); err != nil || len(res.Aborted) != 1 {
		t.Fatalf("alice aborts: %+v %v", res, err)
	}
}
