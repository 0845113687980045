package e2e

import (
	"context"
	"fmt"
	"github.com/dotmesh-io/dotmesh/api"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/client"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// TestBadInputChangesNothing: every kind of bad input gets a one-line
// error and a non-zero exit, and the state (dm list --json, dm log --json)
// is exactly what it was.
func TestBadInputChangesNothing(t *testing.T) {
	e := newEnv(t)
	e.clusterInit()
	e.ok("init", "single")
	writeFile(t, filepath.Join(e.path("single.db"), "f"), "x")
	e.ok("commit", "-m", "only")
	e.ok("init", "app")
	writeFile(t, filepath.Join(e.path("app.web"), "f"), "x")

	// Enough commits that two ids share a 4-digit prefix. Made through the
	// API client: it is set-up, and thousands of dm processes would be slow.
	prefix := makeAmbiguousPrefix(t, e)
	var missing string
	log := e.log("app")
	for i := 0; i < 1<<16; i++ {
		p := fmt.Sprintf("%04x", i)
		if !hasPrefix(log, p) {
			missing = p
			break
		}
	}

	snapshot := func() string {
		return e.ok("list", "--json") + e.ok("log", "--dot", "app", "--json") + e.ok("log", "--dot", "single", "--json")
	}
	before := snapshot()
	webBefore := readTree(t, e.path("app.web"))

	cases := []struct {
		want string
		args []string
	}{
		{"ambiguous", []string{"reset", "--hard", prefix}},
		{"no commit " + missing, []string{"reset", "--hard", missing}},
		{"has only 0 before it", []string{"reset", "--hard", "HEAD^", "--dot", "single"}},
		{"goes back", []string{"reset", "--hard", "HEAD~100000"}},
		{"neither HEAD nor", []string{"reset", "--hard", "HEAD:1"}},
		{"no branch, tag or commit HEAD-1", []string{"reset", "--hard", "HEAD-1"}},
		{`contains ".."`, []string{"init", "../x"}},
		{"absolute path", []string{"init", "/abs"}},
		{"the limit is 64", []string{"init", strings.Repeat("a", 65)}},
		{"reserved", []string{"path", "app._x"}},
		{"not found", []string{"switch", "nope"}},
		{"not found", []string{"log", "--dot", "nope"}},
		{"not found", []string{"commit", "--dot", "nope", "-m", "x"}},
		{"not found", []string{"path", "nope.web"}},
		{"not found", []string{"dot", "show", "nope"}},
		{"not found", []string{"checkout", "nope"}},
		{"not found", []string{"log", "--branch", "nope"}},
		{"not found", []string{"branch", "-d", "nope"}},
		{"not found", []string{"path", "app@nope.web"}},
		{"already exists", []string{"init", "app"}},
		{"already exists", []string{"checkout", "-b", "master"}},
		{"not key=value", []string{"commit", "-m", "x", "-d", "novalue"}},
		{"metadata key name is empty", []string{"commit", "-m", "x", "-d", "=v"}},
		{"given twice", []string{"commit", "-m", "x", "-d", "k=1", "-d", "k=2"}},
		{"needs a message", []string{"commit", "-m", " "}},
		{"unknown flag", []string{"commit", "--nope"}},
		{`backend "nope"`, []string{"init", "newdot", "--backend", "nope"}},
		{"starts with '_', which is reserved", []string{"init", "_x"}},
		{"starts with '-'", []string{"init", "--", "-x"}},
	}
	for _, c := range cases {
		e.fails(c.want, c.args...)
	}
	if after := snapshot(); after != before {
		t.Fatalf("bad input changed the state:\nbefore %s\nafter  %s", before, after)
	}
	if got := readTree(t, e.path("app.web")); !sameTree(got, webBefore) {
		t.Fatalf("bad input changed the working state: %v", got)
	}
}

func hasPrefix(log []dotmesh.Commit, p string) bool {
	for _, c := range log {
		if strings.HasPrefix(string(c.ID), p) {
			return true
		}
	}
	return false
}

func makeAmbiguousPrefix(t *testing.T, e *env) string {
	t.Helper()
	key, err := os.ReadFile(filepath.Join(e.data, "admin-api-key"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(fmt.Sprintf("http://127.0.0.1:%d", e.port), "admin", strings.TrimSpace(string(key)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	app := dotmesh.DotName{Namespace: "admin", Name: "app"}
	seen := map[string]bool{}
	for i := 0; i < 3000; i++ {
		// The first commit takes the file; the others are empty on purpose.
		cm, err := c.CommitWith(ctx, app, api.CommitRequest{Message: fmt.Sprintf("c%d", i), AllowEmpty: true})
		if err != nil {
			t.Fatal(err)
		}
		p := string(cm.ID)[:4]
		if seen[p] {
			return p
		}
		seen[p] = true
	}
	t.Fatal("no two of 3000 commit ids share 4 hex digits")
	return ""
}
