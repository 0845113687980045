//go:build !dmlight

// The light build (dmlight) leaves the text diff to dm-node: this file's
// tests build only in the full one.

package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHookCommands drives dm hook against a real node: the admin sets a
// failing pre-commit hook, dm commit exits 11 with the hook's words and
// commits nothing; a user who owns the dot is refused hooks (exit 10,
// nothing changed); the long log and dm show say each commit's
// consistency, --json carries it in info.
func TestHookCommands(t *testing.T) {
	admin, us, _ := hubEnvs(t, "alice")
	alice := us["alice"]
	mustRun(t, admin, "init", "app")
	p := strings.TrimSpace(mustRun(t, admin, "path", "app"))
	if err := os.WriteFile(filepath.Join(p, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, admin, "hook", "set", "app", "pre-commit", "--timeout", "5s", "--", "/bin/sh", "-c", "echo not ready >&2; exit 4")
	list := mustRun(t, admin, "hook", "list")
	if !strings.HasPrefix(strings.Split(list, "\n")[1], "app ") || !strings.Contains(list, "pre-commit") || !strings.Contains(list, "/bin/sh -c echo not ready >&2; exit 4") || !strings.Contains(list, "5s") {
		t.Fatalf("dm hook list:\n%s", list)
	}
	r := runDM(t, admin, "commit", "-m", "blocked")
	if r.code != exitHookFailed || !strings.Contains(r.err, "pre-commit hook /bin/sh of app failed, nothing committed") || !strings.Contains(r.err, "not ready") || strings.Count(r.err, "\n") != 1 {
		t.Fatalf("dm commit with a failing pre-commit hook: %+v", r)
	}
	if got := mustRun(t, admin, "log"); !strings.Contains(got, "No commits yet") {
		t.Fatalf("a commit was made although its hook failed:\n%s", got)
	}
	if r := runDM(t, admin, "commit", "-m", "blocked", "--json"); !strings.Contains(r.err, `"kind":"hook_failed"`) || r.code != exitHookFailed {
		t.Fatalf("dm commit --json with a failing hook: %+v", r)
	}

	// Owning a dot is not enough to run commands on the node.
	mustRun(t, alice, "init", "mine")
	r = runDM(t, alice, "hook", "set", "mine", "pre-commit", "--", "/bin/true")
	if r.code != exitPermission || !strings.Contains(r.err, "needs admin") {
		t.Fatalf("dm hook set by the dot's owner: %+v", r)
	}
	if r := runDM(t, alice, "hook", "list", "mine"); r.code != exitPermission {
		t.Fatalf("dm hook list by the dot's owner: %+v", r)
	}
	if got := mustRun(t, admin, "hook", "list", "alice/mine", "--json"); !strings.Contains(got, `"hooks": []`) {
		t.Fatalf("the owner's refused hook was stored: %s", got)
	}

	// Bad input: one line, nothing stored.
	for _, args := range [][]string{
		{"hook", "set", "app", "pre-push", "--", "/bin/true"},
		{"hook", "set", "app", "quiesce", "postgresql"},
		{"hook", "set", "app", "pre-commit", "/bin/true"},
		{"hook", "set", "app", "pre-commit", "--timeout", "soon", "--", "/bin/true"},
	} {
		if r := runDM(t, admin, args...); r.code == 0 || strings.Count(r.err, "\n") != 1 {
			t.Errorf("dm %v: %+v", args, r)
		}
	}

	mustRun(t, admin, "hook", "remove", "app", "pre-commit")
	mustRun(t, admin, "commit", "-m", "first")
	if got := mustRun(t, admin, "log"); !strings.Contains(got, "State:  file-by-file\n") {
		t.Fatalf("dm log does not say the commit's consistency:\n%s", got)
	}
	if got := mustRun(t, admin, "show"); !strings.Contains(got, "State:  file-by-file\n") {
		t.Fatalf("dm show does not say the commit's consistency:\n%s", got)
	}
	var items []struct {
		Info map[string]any `json:"info"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, admin, "log", "--json")), &items); err != nil || len(items) != 1 || items[0].Info["consistency"] != "file-by-file" {
		t.Fatalf("dm log --json: %+v, %v", items, err)
	}
	if r := runDM(t, admin, "hook", "remove", "app", "pre-commit"); r.code != exitNotFound {
		t.Fatalf("removing a hook twice: %+v", r)
	}
}
