package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// setRemote writes remote name into e's client config as it is, without
// the ping `dm remote add` does: a remote with a wrong key, or one that
// cannot be reached.
func (e *env) setRemote(name, addr, key string) {
	e.t.Helper()
	var raw map[string]any
	b, err := os.ReadFile(e.config)
	must(e.t, err)
	must(e.t, json.Unmarshal(b, &raw))
	raw["remotes"].(map[string]any)[name] = map[string]any{"user": "admin", "address": addr, "api_key": key}
	b, _ = json.Marshal(raw)
	must(e.t, os.WriteFile(e.config, b, 0o600))
}

// failsWithKind runs dm, plain and with --json, and checks the exit status,
// the one line on stderr and the JSON error object.
func (e *env) failsWithKind(code int, kind, want string, args ...string) {
	e.t.Helper()
	r := e.fails(want, args...)
	if r.code != code {
		e.t.Errorf("dm %s: exit %d, want %d (%s): %v", strings.Join(args, " "), r.code, code, kind, r)
	}
	j := e.dm(append(args, "--json")...)
	var obj struct {
		Error string `json:"error"`
		Kind  string `json:"kind"`
	}
	if err := json.Unmarshal([]byte(j.err), &obj); err != nil || strings.Count(j.err, "\n") != 1 {
		e.t.Errorf("dm %s --json: stderr is not one JSON line: %v", strings.Join(args, " "), j)
		return
	}
	if j.code != code || obj.Kind != kind || !strings.Contains(obj.Error, want) || j.out != "" {
		e.t.Errorf("dm %s --json: exit %d, %+v, stdout %q; want exit %d, kind %q, error with %q, empty stdout", strings.Join(args, " "), j.code, obj, j.out, code, kind, want)
	}
}

// TestExitCodes: each kind of error, made by real commands against a real
// node (or a remote that is not there), has its own exit status and JSON
// kind, as README and `dm --help` document.
func TestExitCodes(t *testing.T) {
	e := newEnv(t)
	e.clusterInit()
	e.ok("init", "app")
	writeFile(t, filepath.Join(e.path("app.web"), "f"), "x")
	e.ok("commit", "-m", "one")
	key, err := os.ReadFile(filepath.Join(e.data, "admin-api-key"))
	must(t, err)
	e.setRemote("badkey", "127.0.0.1:"+strconv.Itoa(e.port), "not-the-key-not-the-key-not-the-key")
	e.setRemote("down", "127.0.0.1:"+strconv.Itoa(freePort(t)), strings.TrimSpace(string(key)))
	e.setRemote("nodns", "no-such-host.invalid:32607", strings.TrimSpace(string(key)))
	notDir := filepath.Join(t.TempDir(), "config-is-a-dir")
	must(t, os.Mkdir(notDir, 0o700))

	cases := []struct {
		code int
		kind string
		want string
		args []string
	}{
		{2, "usage", "unknown command", []string{"nope"}},
		{2, "usage", "unknown flag", []string{"commit", "--nope"}},
		{2, "usage", "usage: dm init", []string{"init"}},
		{3, "invalid", `contains ".."`, []string{"init", "../x"}},
		{3, "invalid", "not key=value", []string{"commit", "-m", "x", "-d", "novalue"}},
		{4, "not_found", "not found", []string{"log", "--dot", "nope"}},
		{4, "not_found", "no remote named nowhere", []string{"push", "nowhere"}},
		{5, "conflict", "already exists", []string{"init", "app"}},
		{5, "conflict", "already exists", []string{"checkout", "-b", "master"}},
		{6, "unauthorized", "remote badkey at 127.0.0.1", []string{"--remote", "badkey", "list"}},
		{7, "unavailable", "no dotmesh node answers", []string{"--remote", "down", "list"}},
		{7, "unavailable", "no-such-host.invalid of the dotmesh node at http://no-such-host.invalid:32607 has no address; check the address", []string{"--remote", "nodns", "list"}},
		{1, "error", "config-is-a-dir", []string{"-c", notDir, "list"}},
	}
	for _, c := range cases {
		e.failsWithKind(c.code, c.kind, c.want, c.args...)
	}

	help := e.ok("--help")
	for _, want := range []string{"Exit status:", "4    not found", "7    unavailable", `{"error": MESSAGE, "kind": KIND}`} {
		if !strings.Contains(help, want) {
			t.Errorf("dm --help lacks %q", want)
		}
	}
}

// TestPushPeerRefusedKey: when the peer of a push refuses the key dm
// handed over, the error names the peer (not the node dm talks to) and how
// to replace its key, with the unauthorized exit status.
func TestPushPeerRefusedKey(t *testing.T) {
	a := startServe(t, "a", "127.0.0.1")
	b := startServe(t, "b", "127.0.0.2")
	e := newEnv(t)
	e.addRemote(a)
	e.addRemote(b)
	e.on(a, "init", "app")
	writeFile(t, filepath.Join(e.pathOn(a, "app.web"), "f"), "x")
	e.commitOn(a, "app", "one")
	e.setRemote("b", b.addr, "not-the-key-not-the-key-not-the-key")

	e.failsWithKind(6, "unauthorized", fmt.Sprintf("remote b at %s refused the API key", b.addr), "--remote", "a", "push", "b", "app")
	r := e.dm("--remote", "a", "push", "b", "app")
	if strings.Contains(r.err, "remote a ") || !strings.Contains(r.err, "`dm remote rm b`, then `dm remote add b USER@"+b.addr+"`") {
		t.Errorf("the error blames the wrong node or gives no way out: %q", r.err)
	}
}

// TestDataDirCannotBeMade: a data directory that cannot be created gets
// advice, from `dm cluster init` and from `dm serve`, not a bare mkdir
// error.
func TestDataDirCannotBeMade(t *testing.T) {
	e := newEnv(t)
	locked := filepath.Join(t.TempDir(), "locked")
	must(t, os.Mkdir(locked, 0o755))
	if os.Geteuid() == 0 {
		// root passes mode checks; an immutable directory refuses even
		// root (EPERM, "operation not permitted").
		if out, err := exec.Command("chattr", "+i", locked).CombinedOutput(); err != nil {
			t.Fatalf("chattr +i (e2fsprogs, on a file system with attributes) is needed to refuse root a mkdir: %v: %s", err, out)
		}
		t.Cleanup(func() { exec.Command("chattr", "-i", locked).Run() })
	} else {
		must(t, os.Chmod(locked, 0o555))
		t.Cleanup(func() { os.Chmod(locked, 0o755) })
	}
	data := filepath.Join(locked, "data")
	want := "cannot create the data directory " + data
	advice := "choose a directory you own with --data-dir"
	r := e.fails(want, "cluster", "init", "--data-dir", data, "--port", strconv.Itoa(freePort(t)))
	if !strings.Contains(r.err, advice) {
		t.Errorf("dm cluster init: %q lacks the advice %q", r.err, advice)
	}
	r = e.dm("serve", "--data-dir", data, "--listen", "127.0.0.1:"+strconv.Itoa(freePort(t)))
	if r.code == 0 || !strings.Contains(r.err, want) || !strings.Contains(r.err, advice) {
		t.Errorf("dm serve: %v; want an error with %q and %q", r, want, advice)
	}
}
