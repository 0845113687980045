package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// hubEnvs starts a real node and returns the admin's environment and one
// for each of users, whose remote "hub" uses the key `dm user add`
// printed (-H) for them.
func hubEnvs(t *testing.T, users ...string) (admin map[string]string, envs map[string]map[string]string, addr string) {
	t.Helper()
	admin, n := withNode(t)
	addr = strings.TrimPrefix(n.URL, "http://")
	envs = map[string]map[string]string{}
	for _, u := range users {
		key := strings.TrimSpace(mustRun(t, admin, "user", "add", u, "-H"))
		if key == "" || strings.ContainsAny(key, " \n") {
			t.Fatalf("dm user add %s -H printed %q, not a key", u, key)
		}
		e, path := testEnv(t)
		writeConfig(t, path, &Config{CurrentRemote: "hub", Remotes: map[string]*Remote{
			"hub": {User: u, Address: addr, APIKey: key},
		}})
		envs[u] = e
	}
	return admin, envs, addr
}

// exactly checks dm's one line and exit status.
func exactly(t *testing.T, r result, want string, code int) {
	t.Helper()
	if r.err != "dm: "+want+"\n" || r.code != code {
		t.Fatalf("printed %q, exit %d;\nwant %q, exit %d", r.err, r.code, "dm: "+want+"\n", code)
	}
}

// TestHubCommands drives the user, key, sharing, whoami and audit
// commands against a real node, as its admin and as two users, in each
// output mode.
func TestHubCommands(t *testing.T) {
	admin, us, addr := hubEnvs(t, "alice", "bob")
	alice, bob := us["alice"], us["bob"]

	if got := mustRun(t, admin, "user", "list", "-H"); !regexp.MustCompile(`^admin\tyes\t\S+\nalice\tno\t\S+\nbob\tno\t\S+\n$`).MatchString(got) {
		t.Fatalf("dm user list -H: %q", got)
	}
	if got := mustRun(t, admin, "user", "list"); !regexp.MustCompile(`^USER\s+ADMIN\s+CREATED\nadmin\s+yes\s`).MatchString(got) {
		t.Fatalf("dm user list:\n%s", got)
	}
	human := mustRun(t, admin, "user", "add", "carol", "--label", "carol's laptop")
	if !strings.Contains(human, "Added user carol.") || !strings.Contains(human, "shown only this once") || !strings.Contains(human, "dm remote add local carol@"+addr) {
		t.Fatalf("dm user add:\n%s", human)
	}
	mustRun(t, admin, "user", "remove", "carol")
	failsWith(t, runDM(t, admin, "user", "remove", "carol"), "not found")

	var me struct {
		Remote   string `json:"remote"`
		User     string `json:"user"`
		ReadOnly bool   `json:"read_only"`
		Admin    bool   `json:"admin"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, alice, "whoami", "--json")), &me); err != nil || me.User != "alice" || me.Admin || me.ReadOnly || me.Remote != "hub" {
		t.Fatalf("alice's whoami: %+v %v", me, err)
	}
	if got := mustRun(t, alice, "whoami"); !regexp.MustCompile(`User:\s+alice\n`).MatchString(got) || !strings.Contains(got, "(full)") {
		t.Fatalf("dm whoami:\n%s", got)
	}

	// A dot named without a namespace is alice's own.
	mustRun(t, alice, "init", "app")
	dir := strings.TrimSpace(mustRun(t, alice, "path", "app"))
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("alice"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, alice, "commit", "-m", "one")
	if got := mustRun(t, alice, "list", "-H"); !strings.HasPrefix(got, "alice/app\tmaster\t") {
		t.Fatalf("alice's dm list -H: %q", got)
	}
	if got := mustRun(t, bob, "list", "-H"); got != "" {
		t.Fatalf("bob sees alice's private dot: %q", got)
	}

	// Refusals: which permission, who grants it, exit 10.
	exactly(t, runDM(t, bob, "log", "--dot", "alice/app"),
		`permission denied: log needs read, and user "bob" has none on alice/app; the dot's owner (alice) or an admin can grant it: `+"`dm dot share alice/app bob --read`", exitPermission)
	r := runDM(t, bob, "dot", "share", "alice/app", "bob", "--write")
	if r.code != exitPermission || !strings.Contains(r.err, "only the dot's owner (alice) or an admin can do this") {
		t.Fatalf("bob sharing alice's dot: %+v", r)
	}
	r = runDM(t, bob, "user", "list", "--json")
	var jerr struct{ Error, Kind string }
	if err := json.Unmarshal([]byte(r.err), &jerr); err != nil || jerr.Kind != "permission_denied" || r.code != exitPermission || !strings.Contains(jerr.Error, "only an admin of the node can do this") {
		t.Fatalf("bob listing users: %+v", r)
	}

	mustRun(t, alice, "dot", "share", "app", "bob", "--read")
	if got := mustRun(t, alice, "dot", "sharing", "app", "-H"); !regexp.MustCompile(`^owner\talice\nvisibility\tprivate\ngrant\tbob\tread\talice\t\S+\n$`).MatchString(got) {
		t.Fatalf("dm dot sharing -H: %q", got)
	}
	if got := mustRun(t, bob, "log", "--dot", "alice/app", "-H"); !strings.Contains(got, "one") {
		t.Fatalf("bob's log of the shared dot: %q", got)
	}
	r = runDM(t, bob, "commit", "--dot", "alice/app", "-m", "bob's")
	if r.code != exitPermission || !strings.Contains(r.err, "needs write") || !strings.Contains(r.err, "`dm dot share alice/app bob --write`") {
		t.Fatalf("bob committing to a read share: %+v", r)
	}
	mustRun(t, alice, "dot", "unshare", "app", "bob")
	if r := runDM(t, bob, "log", "--dot", "alice/app"); r.code != exitPermission {
		t.Fatalf("after unshare bob still reads: %+v", r)
	}
	mustRun(t, alice, "dot", "visibility", "app", "public")
	if got := mustRun(t, bob, "list", "-H"); !strings.HasPrefix(got, "alice/app\t") {
		t.Fatalf("bob's list lacks the public dot: %q", got)
	}

	// Keys: a read-only one reads and is refused the rest; a revoked one
	// is refused.
	ro := strings.TrimSpace(mustRun(t, alice, "key", "add", "--read-only", "--name", "ci", "-H"))
	var keys []struct {
		ID       string `json:"id"`
		Label    string `json:"label"`
		ReadOnly bool   `json:"read_only"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, alice, "key", "list", "--json")), &keys); err != nil || len(keys) != 2 || keys[1].Label != "ci" || !keys[1].ReadOnly {
		t.Fatalf("dm key list --json: %+v %v", keys, err)
	}
	if got := mustRun(t, alice, "key", "list", "-H"); !strings.Contains(got, keys[1].ID+"\tci\tread-only\t") {
		t.Fatalf("dm key list -H: %q", got)
	}
	ci, path := testEnv(t)
	writeConfig(t, path, &Config{CurrentRemote: "hub", Remotes: map[string]*Remote{
		"hub": {User: "alice", Address: addr, APIKey: ro},
	}})
	mustRun(t, ci, "log", "--dot", "app")
	r = runDM(t, ci, "commit", "--dot", "app", "-m", "from ci")
	if r.code != exitPermission || !strings.Contains(r.err, "uses a read-only key") || !strings.Contains(r.err, "use a full key for this") {
		t.Fatalf("a read-only key committing: %+v", r)
	}
	mustRun(t, alice, "key", "revoke", keys[1].ID)
	if r := runDM(t, ci, "log", "--dot", "app"); r.code != exitUnauthorized || !strings.Contains(r.err, "refused the API key") {
		t.Fatalf("a revoked key: %+v", r)
	}
	failsWith(t, runDM(t, bob, "key", "list", "--user", "alice"), "permission denied")

	// The audit: all of it for the admin, a dot's for its owner.
	got := mustRun(t, admin, "audit", "-H")
	for _, want := range []string{"\talice\tshare\talice/app\t", "\talice\tcommit\talice/app\t"} {
		if !strings.Contains(got, want) {
			t.Errorf("dm audit -H lacks %q:\n%s", want, got)
		}
	}
	var page struct {
		Records []struct{ Dot, User, Action string } `json:"records"`
		Next    string                               `json:"next"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, alice, "audit", "app", "--json", "--limit", "2")), &page); err != nil || len(page.Records) != 2 || page.Next == "" {
		t.Fatalf("alice's dm audit app --limit 2: %+v %v", page, err)
	}
	if got := mustRun(t, alice, "audit", "app", "--limit", "2"); !strings.Contains(got, "Older records: add --before "+page.Next) {
		t.Fatalf("dm audit does not say how to page:\n%s", got)
	}
	if r := runDM(t, bob, "audit"); r.code != exitPermission {
		t.Fatalf("bob reads the whole audit: %+v", r)
	}

	// A user whose namespace holds dots stays.
	r = runDM(t, admin, "user", "remove", "alice")
	failsWith(t, r, "namespace alice still holds 1 dot(s)")
	if r.code != exitConflict {
		t.Fatalf("dm user remove alice: exit %d, want %d", r.code, exitConflict)
	}
}
