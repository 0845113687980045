package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type result struct {
	out, err string
	code     int
}

// runDM runs dm in-process with an environment holding only envm.
func runDM(t *testing.T, envm map[string]string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(context.Background(), IO{
		Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: env(envm),
	}, testWiring, args)
	return result{out.String(), errb.String(), code}
}

// failsWith checks a one-line "dm: ..." error containing want.
func failsWith(t *testing.T, r result, want string) {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("succeeded; want an error with %q (stdout %q)", want, r.out)
	}
	if !strings.HasPrefix(r.err, "dm: ") || strings.Count(r.err, "\n") != 1 || !strings.Contains(r.err, want) {
		t.Fatalf("stderr %q; want one line \"dm: ...%s...\"", r.err, want)
	}
}

func testEnv(t *testing.T) (map[string]string, string) {
	home := t.TempDir()
	return map[string]string{"HOME": home}, filepath.Join(home, ".dotmesh", "config")
}

func TestBadInputFailsBeforeConnecting(t *testing.T) {
	e, cfg := testEnv(t)
	// No config exists: each error must be about the input, not about the
	// missing remote, and no config may appear.
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"init", "../x"}, `contains ".."`},
		{[]string{"init", "/abs"}, "absolute path"},
		{[]string{"init", strings.Repeat("a", 65)}, "the limit is 64"},
		{[]string{"init"}, "usage: dm init DOT"},
		{[]string{"init", "a", "b"}, "usage: dm init DOT"},
		{[]string{"path", "app._x"}, "reserved"},
		{[]string{"commit"}, "needs a message"},
		{[]string{"commit", "-m", "x", "-d", "nokey"}, "not key=value"},
		{[]string{"commit", "-m", "x", "-d", "a b=1"}, "metadata key name"},
		{[]string{"commit", "-m", "x", "--dot", "../y"}, `contains ".."`},
		{[]string{"reset", "HEAD^x"}, "unexpected"},
		{[]string{"reset", "z.z"}, "neither HEAD nor a branch, tag or commit"},
		{[]string{"log", "a^x"}, "unexpected"},
		{[]string{"tag", "-d", "bad name"}, "tag name"},
		{[]string{"tag", "-x"}, "unknown shorthand flag"},
		{[]string{"tag", "--", "-x"}, "starts with '-'"},
		{[]string{"tag", "v1", "HEAD!"}, "neither HEAD nor a branch"},
		{[]string{"tag", "-d", "v1", "v2"}, "usage: dm tag -d NAME"},
		{[]string{"tag", "-m", "x"}, "usage: dm tag NAME [REF] -m"},
		{[]string{"branch", "-m"}, "usage: dm branch -m [OLD] NEW"},
		{[]string{"branch", "-m", "a", "_b"}, "starts with '_'"},
		{[]string{"branch", "-m", "a b", "c"}, "branch name"},
		{[]string{"checkout", "no/slash"}, "branch name"},
		{[]string{"branch", "-d", "bad name"}, "branch name"},
		{[]string{"log", "--branch", "x.y"}, "branch name"},
		{[]string{"log", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{"remote", "bogus"}, `unknown command "bogus" for "dm remote"`},
		{[]string{"remote", "add", "x y", "admin@h"}, "remote name"},
		{[]string{"remote", "add", "r", "nouser"}, "USER@HOST"},
		{[]string{"cluster", "init", "--port", "70000"}, "--port 70000"},
		{[]string{"dot", "delete", "/abs"}, "absolute path"},
		{[]string{"switch", "a@b"}, "without @branch"},
		{[]string{"remote", "add", "r", "admin@10.0.0.7"}, "or --insecure to accept plain HTTP"},
		{[]string{"remote", "add", "r", "admin@[2001:db8::1]:9"}, "or --insecure to accept plain HTTP"},
		{[]string{"remote", "add", "r", "admin@10.0.0.7", "--insecure"}, "DOTMESH_PASSWORD"},
		{[]string{"serve", "--listen", "0.0.0.0:1"}, "or pass --insecure"},
		{[]string{"init", "--", "-"}, `dot name "-" starts with '-'`},
		{[]string{"init", "_x"}, `dot name "_x" starts with '_'`},
		{[]string{"init", "__root__"}, `dot name "__root__" starts with '_'`},
		{[]string{"init", "_ns/app"}, `namespace name "_ns" starts with '_'`},
		{[]string{"branch", "__root__"}, `branch name "__root__" starts with '_'`},
		{[]string{"checkout", "-b", "--", "-"}, `branch name "-" starts with '-'`},
		{[]string{"--idle-timeout", "1s", "push", "b"}, "--idle-timeout 1s must be from 2s to 24h"},
		{[]string{"--connect-timeout", "0s", "list"}, "--connect-timeout 0s must be above 0"},
		{[]string{"--idle-timeout", "soon", "list"}, "invalid argument"},
		{[]string{"transfers", "abort"}, "usage: dm transfers abort DOT[@BRANCH]"},
		{[]string{"transfers", "abort", "a.b"}, "names a subdot"},
		{[]string{"transfers", "abort", "a@b c"}, "branch"},
		{[]string{"serve", "--transfer-pin", "0s"}, "--transfer-pin 0s"},
		{[]string{"serve", "--transfer-idle", "0s"}, "--transfer-idle 0s"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			failsWith(t, runDM(t, e, c.args...), c.want)
		})
	}
	if _, err := os.Stat(cfg); !os.IsNotExist(err) {
		t.Fatalf("bad input wrote a config: %v", err)
	}
}

func TestNoRemoteConfigured(t *testing.T) {
	e, _ := testEnv(t)
	failsWith(t, runDM(t, e, "list"), "no remote configured")
	failsWith(t, runDM(t, e, "commit", "-m", "x"), "no remote configured")
}

func TestRemoteAddNeedsAKey(t *testing.T) {
	e, cfg := testEnv(t)
	failsWith(t, runDM(t, e, "remote", "add", "prod", "admin@127.0.0.1:1"), "DOTMESH_PASSWORD")
	if _, err := os.Stat(cfg); !os.IsNotExist(err) {
		t.Fatal("a failed remote add wrote the config")
	}
	// With a key but nobody listening: the ping fails, nothing is saved.
	e["DOTMESH_PASSWORD"] = "k"
	r := runDM(t, e, "remote", "add", "prod", "admin@127.0.0.1:1")
	failsWith(t, r, "prod")
	if _, err := os.Stat(cfg); !os.IsNotExist(err) {
		t.Fatal("a failed remote add wrote the config")
	}
}

func writeConfig(t *testing.T, path string, cfg *Config) {
	t.Helper()
	if err := SaveConfig(path, cfg); err != nil {
		t.Fatal(err)
	}
}

func TestRemoteListRmSwitch(t *testing.T) {
	e, path := testEnv(t)
	writeConfig(t, path, &Config{CurrentRemote: "local", Remotes: map[string]*Remote{
		"local": {User: "admin", Address: "127.0.0.1:32607", APIKey: "sekrit1"},
		"prod":  {User: "bob", Address: "dm.example.com:32607", APIKey: "sekrit2"},
	}})
	r := runDM(t, e, "remote")
	if r.code != 0 || r.out != "* local\n  prod\n" {
		t.Fatalf("dm remote: %+v", r)
	}
	r = runDM(t, e, "remote", "-v")
	if r.code != 0 || !strings.Contains(r.out, "bob@dm.example.com:32607") || strings.Contains(r.out, "sekrit") {
		t.Fatalf("dm remote -v: %+v", r)
	}
	r = runDM(t, e, "remote", "-v", "-H")
	if r.out != "local\tadmin@127.0.0.1:32607\tyes\nprod\tbob@dm.example.com:32607\tno\n" {
		t.Fatalf("dm remote -v -H: %q", r.out)
	}
	r = runDM(t, e, "remote", "--json")
	var items []map[string]any
	if err := json.Unmarshal([]byte(r.out), &items); err != nil || len(items) != 2 || items[0]["current"] != true {
		t.Fatalf("dm remote --json: %q %v", r.out, err)
	}
	if strings.Contains(r.out, "sekrit") {
		t.Fatal("--json printed a key")
	}

	failsWith(t, runDM(t, e, "remote", "switch", "nope"), "no remote named nope")
	if r := runDM(t, e, "remote", "switch", "prod"); r.code != 0 {
		t.Fatalf("switch: %+v", r)
	}
	cfg, _ := LoadConfig(path)
	if cfg.CurrentRemote != "prod" {
		t.Fatalf("current remote %q", cfg.CurrentRemote)
	}
	if r := runDM(t, e, "remote", "rm", "prod"); r.code != 0 {
		t.Fatalf("rm: %+v", r)
	}
	cfg, _ = LoadConfig(path)
	if cfg.CurrentRemote != "" || cfg.Remotes["prod"] != nil || cfg.Remotes["local"] == nil {
		t.Fatalf("after rm: %+v", cfg)
	}
	failsWith(t, runDM(t, e, "remote", "rm", "prod"), "no remote named prod")
	failsWith(t, runDM(t, e, "list"), "no current remote")
	// --remote picks one explicitly; -c and DOTMESH_CONFIG pick the file.
	failsWith(t, runDM(t, e, "--remote", "ghost", "list"), "no remote named ghost")
	other := filepath.Join(t.TempDir(), "cfg")
	writeConfig(t, other, &Config{CurrentRemote: "x", Remotes: map[string]*Remote{"x": {User: "admin", Address: "h:1", APIKey: "k"}}})
	if r := runDM(t, e, "-c", other, "remote"); r.out != "* x\n" {
		t.Fatalf("-c: %q", r.out)
	}
	e["DOTMESH_CONFIG"] = other
	if r := runDM(t, e, "remote"); r.out != "* x\n" {
		t.Fatalf("DOTMESH_CONFIG: %q", r.out)
	}
}

func TestHelpIsThere(t *testing.T) {
	e, _ := testEnv(t)
	for _, cmd := range [][]string{{}, {"init"}, {"list"}, {"commit"}, {"log"}, {"reset"}, {"branch"}, {"checkout"},
		{"path"}, {"dot", "show"}, {"dot", "delete"}, {"switch"}, {"remote"}, {"remote", "add"}, {"cluster", "init"},
		{"cluster", "stop"}, {"cluster", "reset"}, {"serve"}, {"transfers"}, {"transfers", "abort"}, {"version"},
		{"status"}, {"diff"}, {"show"}} {
		r := runDM(t, e, append(cmd, "--help")...)
		if r.code != 0 || !strings.Contains(r.out, "Usage:") {
			t.Errorf("dm %v --help: %+v", cmd, r)
		}
		if len(cmd) > 0 && cmd[0] != "version" && !strings.Contains(r.out, "Examples:") {
			t.Errorf("dm %v --help has no examples", cmd)
		}
	}
}

func TestVersion(t *testing.T) {
	e, _ := testEnv(t)
	r := runDM(t, e, "version")
	if r.code != 0 || r.out != "Client: "+Version+"\n" {
		t.Fatalf("%+v", r)
	}
	r = runDM(t, e, "version", "--json")
	var v map[string]string
	if err := json.Unmarshal([]byte(r.out), &v); err != nil || v["client"] != Version {
		t.Fatalf("%q %v", r.out, err)
	}
}
