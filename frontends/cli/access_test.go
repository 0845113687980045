package cli

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// TestAccessBadInputFailsBeforeConnecting: the hub commands refuse bad
// names, flags and arguments with one line about the input, before any
// remote is needed (there is no config here, and none may appear).
func TestAccessBadInputFailsBeforeConnecting(t *testing.T) {
	e, cfg := testEnv(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"user", "add"}, "usage: dm user add NAME"},
		{[]string{"user", "add", "bad name"}, "user name"},
		{[]string{"user", "add", "--", "-x"}, `user name "-x" starts with '-'`},
		{[]string{"user", "add", "_x"}, `user name "_x" starts with '_'`},
		{[]string{"user", "add", "a/b"}, "user name"},
		{[]string{"user", "add", "alice", "--label", "two\nlines"}, "one line of printable text"},
		{[]string{"user", "add", "alice", "--label", strings.Repeat("l", 129)}, "the limit is 128"},
		{[]string{"user", "remove", "admin"}, "the admin user cannot be removed"},
		{[]string{"user", "remove", "../x"}, "user name"},
		{[]string{"user", "bogus"}, `unknown command "bogus" for "dm user"`},
		{[]string{"key", "add", "--user", "a b"}, "user name"},
		{[]string{"key", "add", "--name", " x"}, "without leading or trailing spaces"},
		{[]string{"key", "list", "extra"}, "usage: dm key list"},
		{[]string{"key", "revoke"}, "usage: dm key revoke ID"},
		{[]string{"key", "revoke", "a/b"}, "key id name"},
		{[]string{"dot", "share", "alice/app", "bob"}, "say what to share: --read"},
		{[]string{"dot", "share", "alice/app", "bob", "--read", "--write"}, "--read or --write, not both"},
		{[]string{"dot", "share", "../app", "bob", "--read"}, `contains ".."`},
		{[]string{"dot", "share", "alice/app", "b b", "--read"}, "user name"},
		{[]string{"dot", "share", "alice/app"}, "usage: dm dot share"},
		{[]string{"dot", "unshare", "alice/app", "b/b"}, "user name"},
		{[]string{"dot", "visibility", "alice/app", "open"}, `visibility "open" must be public`},
		{[]string{"dot", "visibility", "alice/app@dev", "public"}, "without @branch"},
		{[]string{"dot", "sharing", "/abs"}, "absolute path"},
		{[]string{"audit", "--limit", "0"}, "--limit 0 must be from 1 to 10000"},
		{[]string{"audit", "--before", "x y"}, "is not an audit record id"},
		{[]string{"audit", "a.b"}, "without @branch or .subdot"},
		{[]string{"whoami", "x"}, "usage: dm whoami"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			r := runDM(t, e, c.args...)
			failsWith(t, r, c.want)
			if c.args[0] != "user" || c.args[1] != "bogus" {
				if r.code != exitInvalid && r.code != exitUsage {
					t.Fatalf("exit %d, want %d (invalid) or %d (usage)", r.code, exitInvalid, exitUsage)
				}
			}
		})
	}
	if _, err := os.Stat(cfg); !os.IsNotExist(err) {
		t.Fatalf("bad input wrote a config: %v", err)
	}
}

// permissionCases are refusals as the node words them, and dm's line for
// each: which permission is missing, and who can grant it.
func permissionCases() []struct {
	err  error
	want string
} {
	app := dotmesh.DotName{Namespace: "alice", Name: "app"}
	adm := dotmesh.DotName{Namespace: dotmesh.DefaultNamespace, Name: "db"}
	return []struct {
		err  error
		want string
	}{
		{&dotmesh.PermissionError{User: "bob", Action: "clone", Need: dotmesh.RoleRead, Have: dotmesh.RoleNone, Dot: &app},
			`permission denied: clone needs read, and user "bob" has none on alice/app; the dot's owner (alice) or an admin can grant it: ` + "`dm dot share alice/app bob --read`"},
		{&dotmesh.PermissionError{User: "bob", Action: "push", Need: dotmesh.RoleWrite, Have: dotmesh.RoleRead, Dot: &app},
			`permission denied: push needs write, and user "bob" has read on alice/app; the dot's owner (alice) or an admin can grant it: ` + "`dm dot share alice/app bob --write`"},
		{&dotmesh.PermissionError{User: "bob", Action: "commit", Need: dotmesh.RoleWrite, Have: dotmesh.RoleNone, Dot: &adm},
			`permission denied: commit needs write, and user "bob" has none on db; the dot's owner (admin) or an admin can grant it: ` + "`dm dot share admin/db bob --write`"},
		{&dotmesh.PermissionError{User: "bob", Action: "share", Need: dotmesh.RoleOwner, Have: dotmesh.RoleWrite, Dot: &app},
			`permission denied: share needs owner, and user "bob" has write on alice/app; only the dot's owner (alice) or an admin can do this`},
		{&dotmesh.PermissionError{User: "alice", Action: "push", Need: dotmesh.RoleWrite, Have: dotmesh.RoleRead, Dot: &app, ReadOnlyKey: true},
			`permission denied: push needs write, and user "alice" uses a read-only key on alice/app; use a full key for this (` + "`dm key add`" + ` makes one)`},
		{&dotmesh.PermissionError{User: "bob", Action: "list users", Need: dotmesh.RoleAdmin, Have: dotmesh.RoleNone},
			`permission denied: list users needs admin, and user "bob" has none on this node; only an admin of the node can do this`},
		{&dotmesh.PermissionError{Action: "clone", Need: dotmesh.RoleRead, Dot: &app},
			"permission denied: clone needs read, and the anonymous caller has none on alice/app; add the remote with a user and API key (`dm remote add NAME USER@HOST`)"},
	}
}

// TestPermissionErrorWords: a refusal prints one line naming the missing
// permission and who can grant it, with its own exit status and kind.
func TestPermissionErrorWords(t *testing.T) {
	for _, c := range permissionCases() {
		var b strings.Builder
		if code := reportError(&b, c.err, false); b.String() != "dm: "+c.want+"\n" || code != exitPermission {
			t.Errorf("printed %q, exit %d;\nwant %q, exit %d", b.String(), code, "dm: "+c.want+"\n", exitPermission)
		}
		b.Reset()
		reportError(&b, c.err, true)
		var got struct{ Error, Kind string }
		if err := json.Unmarshal([]byte(b.String()), &got); err != nil || got.Error != c.want || got.Kind != "permission_denied" {
			t.Errorf("--json printed %q", b.String())
		}
	}
}

// TestOwnDot: a dot named without a namespace is in the user's own.
func TestOwnDot(t *testing.T) {
	for _, c := range []struct{ raw, user, want string }{
		{"app", "alice", "alice/app"},
		{"bob/app", "alice", "bob/app"},
		{"app", "admin", "admin/app"},
		{"app", "", "admin/app"},
		{"admin/app", "alice", "admin/app"},
	} {
		d, err := ownDot(c.raw, c.user)
		if err != nil || d.Namespace+"/"+d.Name != c.want {
			t.Errorf("ownDot(%q, %q) = %v, %v; want %s", c.raw, c.user, d, err, c.want)
		}
	}
}

// TestAccessHelp: every new command has help with examples, and the
// root's help lists them and exit status 10.
func TestAccessHelp(t *testing.T) {
	e, _ := testEnv(t)
	for _, cmd := range [][]string{{"user", "add"}, {"user", "list"}, {"user", "remove"}, {"key", "add"}, {"key", "list"},
		{"key", "revoke"}, {"whoami"}, {"audit"}, {"dot", "share"}, {"dot", "unshare"}, {"dot", "visibility"}, {"dot", "sharing"}} {
		r := runDM(t, e, append(cmd, "--help")...)
		if r.code != 0 || !strings.Contains(r.out, "Usage:") || !strings.Contains(r.out, "Examples:") {
			t.Errorf("dm %v --help: %+v", cmd, r)
		}
	}
	r := runDM(t, e, "--help")
	for _, want := range []string{"Users, keys and the audit (a hub):", "whoami", "10   permission denied"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("dm --help lacks %q", want)
		}
	}
}
