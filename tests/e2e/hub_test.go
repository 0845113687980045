package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// addRemoteAs adds the node at addr to e's client config as remote name,
// used as user with key.
func (e *env) addRemoteAs(name, user, addr, key string, flags ...string) {
	e.t.Helper()
	e.extra = []string{"DOTMESH_PASSWORD=" + key}
	defer func() { e.extra = nil }()
	e.ok(append([]string{"remote", "add", name, user + "@" + addr}, flags...)...)
}

// dmNoT runs dm without touching e.t, for goroutines.
func (e *env) dmNoT(args ...string) (result, error) {
	c := e.cmd(args...)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return result{out.String(), errb.String(), ee.ExitCode()}, nil
	}
	return result{out.String(), errb.String(), 0}, err
}

// refused runs dm and checks it is refused for lack of a permission:
// exit 10 and one line naming the missing role (and want).
func (e *env) refused(want string, args ...string) result {
	e.t.Helper()
	r := e.fails("permission denied", args...)
	if r.code != 10 || !strings.Contains(r.err, want) {
		e.t.Fatalf("dm %s: %v; want exit 10 (permission denied) with %q", strings.Join(args, " "), r, want)
	}
	return r
}

func hasDot(items []listItem, name string) bool {
	for _, it := range items {
		if it.Name == name {
			return true
		}
	}
	return false
}

// TestHub: one `dm serve` over TLS is a hub for a team. The admin adds
// alice and bob; from their own laptops (two more nodes) they push into
// their namespaces at the same time; a private dot stays private until
// shared, a read-only share lets clone but not push, a public dot shows in
// everyone's list, a read-only key clones but cannot push, a revoked key is
// refused, the audit shows who did what, and the hub verifies clean.
func TestHub(t *testing.T) {
	dir := t.TempDir()
	caPEM, cert, key := makeCA(t, filepath.Join(dir, "tls"), "127.0.0.1")
	caFile := filepath.Join(dir, "ca.pem")
	must(t, os.WriteFile(caFile, caPEM, 0o644))
	hub := startServeTLS(t, "hub", "127.0.0.1", caPEM, cert, key)
	aliceLaptop := startServe(t, "laptop", "127.0.0.2")
	bobLaptop := startServe(t, "laptop", "127.0.0.3")

	// The admin adds the users; each key is printed once (-H: alone).
	admin := newEnv(t)
	admin.addRemote(hub, "--ca-cert", caFile)
	aliceKey := strings.TrimSpace(admin.ok("user", "add", "alice", "--label", "alice's laptop", "-H"))
	human := admin.ok("user", "add", "bob")
	if !strings.Contains(human, "shown only this once") || !strings.Contains(human, "dm remote add hub bob@"+hub.addr+" --ca-cert CA.pem") {
		t.Fatalf("dm user add does not say how to use the key:\n%s", human)
	}
	bobKey := ""
	for _, l := range strings.Split(human, "\n") {
		if f := strings.TrimSpace(l); f != "" && !strings.Contains(f, " ") {
			bobKey = f
		}
	}
	if aliceKey == "" || bobKey == "" || strings.Contains(aliceKey, " ") {
		t.Fatalf("no keys printed: alice %q, bob output:\n%s", aliceKey, human)
	}
	var users []struct {
		Name  string `json:"name"`
		Admin bool   `json:"admin"`
	}
	admin.jsonOut(&users, "user", "list")
	if fmt.Sprint(users) != "[{admin true} {alice false} {bob false}]" {
		t.Fatalf("dm user list: %v", users)
	}
	admin.failsWithKind(5, "conflict", "already exists", "user", "add", "alice")

	// Each user: their laptop (as its admin) and the hub (as themselves).
	alice, bob := newEnv(t), newEnv(t)
	alice.addRemote(aliceLaptop)
	alice.addRemoteAs("hub", "alice", hub.addr, aliceKey, "--ca-cert", caFile)
	bob.addRemote(bobLaptop)
	bob.addRemoteAs("hub", "bob", hub.addr, bobKey, "--ca-cert", caFile)
	var me struct {
		User     string `json:"user"`
		ReadOnly bool   `json:"read_only"`
		Admin    bool   `json:"admin"`
	}
	alice.jsonOut(&me, "--remote", "hub", "whoami")
	if me.User != "alice" || me.ReadOnly || me.Admin {
		t.Fatalf("alice's whoami: %+v", me)
	}

	alice.on(aliceLaptop, "init", "app")
	writeFile(t, filepath.Join(alice.pathOn(aliceLaptop, "app.db"), "rows"), "alice's rows\n")
	alice.commitOn(aliceLaptop, "app", "alice's state")
	alice.on(aliceLaptop, "init", "demo")
	writeFile(t, filepath.Join(alice.pathOn(aliceLaptop, "demo"), "readme"), "a demo\n")
	alice.commitOn(aliceLaptop, "demo", "demo")
	bob.on(bobLaptop, "init", "notes")
	writeFile(t, filepath.Join(bob.pathOn(bobLaptop, "notes"), "todo"), strings.Repeat("bob's notes\n", 1000))
	bob.commitOn(bobLaptop, "notes", "bob's state")

	// Both push to their own namespaces at the same time.
	var wg sync.WaitGroup
	res := make([]result, 2)
	errs := make([]error, 2)
	for i, p := range []struct {
		e   *env
		dot string
	}{{alice, "app"}, {bob, "notes"}} {
		wg.Add(1)
		go func(i int, e *env, dot string) {
			defer wg.Done()
			res[i], errs[i] = e.dmNoT("--remote", "laptop", "push", "hub", dot)
		}(i, p.e, p.dot)
	}
	wg.Wait()
	for i, who := range []string{"alice", "bob"} {
		if errs[i] != nil || res[i].code != 0 {
			t.Fatalf("%s's push: %v %v", who, res[i], errs[i])
		}
	}
	if !strings.Contains(res[0].out, "hub's alice/app@master") || !strings.Contains(res[1].out, "hub's bob/notes@master") {
		t.Fatalf("the pushes do not say where they went: %q, %q", res[0].out, res[1].out)
	}
	alice.on(aliceLaptop, "push", "hub", "demo")
	all := admin.list()
	for _, d := range []string{"alice/app", "alice/demo", "bob/notes"} {
		if !hasDot(all, d) {
			t.Fatalf("the hub lacks %s: %+v", d, all)
		}
	}
	if l := alice.logOn(hub, "app"); len(l) != 1 || l[0].Message != "alice's state" {
		t.Fatalf("alice's log of her dot on the hub: %+v", l)
	}

	// Bob does not see alice's private dot, cannot read or clone it.
	if mine := bob.listOn("hub"); hasDot(mine, "alice/app") || hasDot(mine, "alice/demo") || !hasDot(mine, "bob/notes") {
		t.Fatalf("bob's list of the hub: %+v", mine)
	}
	bob.refused("needs read", "--remote", "hub", "log", "--dot", "alice/app")
	r := bob.refused("needs read", "--remote", "laptop", "clone", "hub", "alice/app")
	if !strings.Contains(r.err, "`dm dot share alice/app bob --read`") {
		t.Errorf("the refusal does not say who can grant it: %q", r.err)
	}
	bob.refused("needs owner", "--remote", "hub", "dot", "share", "alice/app", "bob", "--write")

	// Alice shares it read-only: bob clones it and sees her data, but
	// cannot push into it.
	alice.on(hub, "dot", "share", "app", "bob", "--read")
	var sh struct {
		Owner      string `json:"owner"`
		Visibility string `json:"visibility"`
		Grants     []struct {
			User string `json:"user"`
			Role string `json:"role"`
		} `json:"grants"`
	}
	alice.jsonOut(&sh, "--remote", "hub", "dot", "sharing", "app")
	if sh.Owner != "alice" || sh.Visibility != "private" || len(sh.Grants) != 1 || sh.Grants[0].User != "bob" || sh.Grants[0].Role != "read" {
		t.Fatalf("dm dot sharing: %+v", sh)
	}
	bob.on(bobLaptop, "clone", "hub", "alice/app")
	if got, _ := os.ReadFile(filepath.Join(bob.pathOn(bobLaptop, "app.db"), "rows")); string(got) != "alice's rows\n" {
		t.Fatalf("bob's clone of alice/app holds %q", got)
	}
	writeFile(t, filepath.Join(bob.pathOn(bobLaptop, "app.db"), "rows"), "bob was here\n")
	bob.commitOn(bobLaptop, "app", "bob's change")
	bob.refused("needs write", "--remote", "laptop", "push", "hub", "app")
	if l := alice.logOn(hub, "app"); len(l) != 1 {
		t.Fatalf("a refused push changed alice/app: %+v", l)
	}

	// A public dot shows in every user's list.
	alice.on(hub, "dot", "visibility", "demo", "public")
	if mine := bob.listOn("hub"); !hasDot(mine, "alice/demo") || !hasDot(mine, "alice/app") {
		t.Fatalf("bob's list lacks alice's public (or shared) dot: %+v", mine)
	}

	// A read-only key (CI) clones but cannot push.
	roKey := strings.TrimSpace(alice.ok("--remote", "hub", "key", "add", "--read-only", "--name", "ci", "-H"))
	ci := newEnv(t)
	ci.addRemote(aliceLaptop)
	ci.addRemoteAs("hub", "alice", hub.addr, roKey, "--ca-cert", caFile)
	ci.jsonOut(&me, "--remote", "hub", "whoami")
	if me.User != "alice" || !me.ReadOnly {
		t.Fatalf("whoami with the read-only key: %+v", me)
	}
	ci.on(aliceLaptop, "clone", "hub", "app", "--local-name", "ci-app")
	writeFile(t, filepath.Join(ci.pathOn(aliceLaptop, "ci-app.db"), "rows"), "from ci\n")
	ci.commitOn(aliceLaptop, "ci-app", "ci's change")
	ci.refused("read-only key", "--remote", "laptop", "push", "hub", "ci-app")
	ci.refused("read-only key", "--remote", "hub", "key", "add")

	// A revoked key is refused, by the hub and as a transfer's peer.
	var nk struct {
		Key struct {
			ID string `json:"id"`
		} `json:"key"`
		Secret string `json:"secret"`
	}
	alice.jsonOut(&nk, "--remote", "hub", "key", "add", "--name", "old")
	alice.addRemoteAs("hub-old", "alice", hub.addr, nk.Secret, "--ca-cert", caFile)
	var keys []struct {
		ID       string `json:"id"`
		Label    string `json:"label"`
		ReadOnly bool   `json:"read_only"`
	}
	alice.jsonOut(&keys, "--remote", "hub", "key", "list")
	if len(keys) != 3 || keys[2].ID != nk.Key.ID || keys[2].Label != "old" || !keys[1].ReadOnly {
		t.Fatalf("alice's keys: %+v", keys)
	}
	alice.on(hub, "key", "revoke", nk.Key.ID)
	alice.failsWithKind(6, "unauthorized", "remote hub-old at "+hub.addr+" refused the API key", "--remote", "hub-old", "list")
	alice.failsWithKind(6, "unauthorized", "remote hub-old at "+hub.addr+" refused the API key", "--remote", "laptop", "pull", "hub-old", "app")

	// The audit shows the pushes and the share; alice sees her dot's.
	var page struct {
		Records []struct {
			User   string `json:"user"`
			Action string `json:"action"`
			Dot    string `json:"dot"`
		} `json:"records"`
	}
	admin.jsonOut(&page, "audit", "--limit", "1000")
	seen := map[string]bool{}
	for _, rec := range page.Records {
		seen[rec.User+" "+rec.Action+" "+rec.Dot] = true
	}
	for _, want := range []string{"alice push alice/app", "bob push bob/notes", "alice share alice/app", "alice visibility alice/demo", "admin user-add "} {
		found := false
		for k := range seen {
			found = found || strings.HasPrefix(k, want)
		}
		if !found {
			t.Errorf("the hub's audit lacks %q: %v", want, seen)
		}
	}
	alice.jsonOut(&page, "--remote", "hub", "audit", "app")
	for _, rec := range page.Records {
		if rec.Dot != "alice/app" {
			t.Errorf("dm audit app shows another dot's record: %+v", rec)
		}
	}
	if len(page.Records) == 0 {
		t.Error("alice sees no audit of her dot")
	}
	bob.refused("needs owner", "--remote", "hub", "audit", "alice/app")
	if out := admin.ok("audit"); !strings.Contains(out, "ACTION") || !strings.Contains(out, "alice/app") {
		t.Errorf("dm audit:\n%s", out)
	}

	// The hub is clean after all this.
	var v struct {
		Backends map[string]struct {
			Damaged  []json.RawMessage `json:"damaged"`
			Problems []string          `json:"problems"`
		} `json:"backends"`
	}
	admin.jsonOut(&v, "verify")
	if len(v.Backends) == 0 {
		t.Fatal("dm verify on the hub checked no backend")
	}
	for name, rep := range v.Backends {
		if len(rep.Damaged) != 0 || len(rep.Problems) != 0 {
			t.Fatalf("the hub's backend %s: %+v", name, rep)
		}
	}

	// Users with dots cannot be removed; the admin can remove others.
	admin.fails("namespace bob still holds", "user", "remove", "bob")
	admin.ok("user", "add", "carol", "-H")
	admin.ok("user", "remove", "carol")
}

// listOn is `dm --remote NAME list --json`.
func (e *env) listOn(remote string) []listItem {
	e.t.Helper()
	var items []listItem
	e.jsonOut(&items, "--remote", remote, "list")
	return items
}
