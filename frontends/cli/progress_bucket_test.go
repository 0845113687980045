//go:build !dmlight

// The light build (dmlight) leaves the bucket client to dm-node: this file's
// tests build only in the full one.

package cli

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestProgressJSONOfLongCommands: each long command with --progress=json
// prints well-formed progress lines on stderr, its phases among them,
// and leaves stdout to its result.
func TestProgressJSONOfLongCommands(t *testing.T) {
	e := withPeer(t)

	mustRun(t, e, "init", "app")
	p := strings.TrimSpace(mustRun(t, e, "path", "app.web"))
	writeRandom(t, filepath.Join(p, "big"), 4<<20)

	run := func(op string, args ...string) (string, []string) {
		t.Helper()
		r := runDM(t, e, append([]string{"--progress=json"}, args...)...)
		if r.code != 0 {
			t.Fatalf("dm %v: %+v", args, r)
		}
		return r.out, checkProgressJSON(t, r.err, op)
	}
	has := func(op string, phases []string, want string) {
		t.Helper()
		for _, ph := range phases {
			if ph == want {
				return
			}
		}
		t.Fatalf("%s: no phase %q in %v", op, want, phases)
	}

	out, ph := run("commit", "commit", "-m", "one", "-H")
	if len(strings.TrimSpace(out)) != 32 {
		t.Fatalf("commit -H printed %q", out)
	}
	has("commit", ph, "hashing")
	has("commit", ph, "syncing")

	writeRandom(t, filepath.Join(p, "big"), 1<<20)
	_, ph = run("reset", "reset", "--hard", "HEAD")
	has("reset", ph, "writing")

	_, ph = run("checkout", "checkout", "-b", "exp")
	has("checkout", ph, "done")

	_, ph = run("push", "push", "b", "app", "master")
	has("push", ph, "sending")
	has("push", ph, "finishing")

	_, ph = run("clone", "clone", "b", "app", "--local-name", "copy")
	has("clone", ph, "finishing")
	has("clone", ph, "writing")

	_, ph = run("gc", "gc")
	has("gc", ph, "sweeping")

	_, ph = run("verify", "verify")
	has("verify", ph, "verifying")

	// A bucket's gc and verify run in dm itself and show their phases too.
	pw := withEnv(e, passwordEnv, "pw-one")
	mustRun(t, pw, "remote", "add", "bk", "file://"+t.TempDir())
	mustRun(t, pw, "push", "bk", "app")
	writeRandom(t, filepath.Join(strings.TrimSpace(mustRun(t, e, "path", "app.web")), "big"), 2<<20)
	mustRun(t, e, "commit", "-m", "two")
	mustRun(t, pw, "push", "bk", "app")
	r := runDM(t, pw, "--progress=json", "gc", "bk", "--keep", "1")
	if r.code != 0 {
		t.Fatalf("dm gc bk: %+v", r)
	}
	ph = checkProgressJSON(t, r.err, "gc")
	has("gc", ph, "marking")
	has("gc", ph, "repacking")
	r = runDM(t, pw, "--progress=json", "verify", "bk", "--read-data")
	if r.code != 0 {
		t.Fatalf("dm verify bk: %+v", r)
	}
	ph = checkProgressJSON(t, r.err, "verify")
	has("verify", ph, "verifying")
	has("verify", ph, "checking commits")

	// Without a terminal and without --progress, nothing.
	if r := runDM(t, e, "commit", "-m", "two", "--allow-empty"); r.code != 0 || r.err != "" {
		t.Fatalf("commit without a terminal: %+v", r)
	}
	if r := runDM(t, e, "--progress=yes", "commit", "-m", "x"); !strings.Contains(r.err, `invalid argument "yes" for "--progress" flag: use auto, none or json`) || r.code != exitUsage {
		t.Fatalf("--progress=yes: %+v", r)
	}
}
