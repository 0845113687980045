package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/server/servertest"
)

// withNode starts a real in-process node and a config pointing at it.
func withNode(t *testing.T) (map[string]string, *servertest.Node) {
	t.Helper()
	n := servertest.Start(t)
	e, path := testEnv(t)
	addr := strings.TrimPrefix(n.URL, "http://")
	writeConfig(t, path, &Config{CurrentRemote: "local", Remotes: map[string]*Remote{
		"local": {User: "admin", Address: addr, APIKey: n.Key},
	}})
	return e, n
}

func mustRun(t *testing.T, e map[string]string, args ...string) string {
	t.Helper()
	r := runDM(t, e, args...)
	if r.code != 0 {
		t.Fatalf("dm %v: %+v", args, r)
	}
	return r.out
}

func TestListAndLogOutputModes(t *testing.T) {
	e, _ := withNode(t)
	mustRun(t, e, "init", "app")
	mustRun(t, e, "init", "zeta")
	mustRun(t, e, "switch", "app")
	p := strings.TrimSpace(mustRun(t, e, "path", "app.web"))
	if err := os.WriteFile(filepath.Join(p, "f"), make([]byte, 3000), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, e, "commit", "-m", "first\nbody", "-d", "k=v w", "-d", "a=1")

	human := mustRun(t, e, "list")
	if !regexp.MustCompile(`^  DOT\s+BRANCH\s+SIZE\s+COMMITS\s+DIRTY\n\* app\s+master\s+2\.9 KiB\s+1\s+no\n  zeta\s+master\s+0 B\s+0\s+no\n$`).MatchString(human) {
		t.Fatalf("dm list:\n%s", human)
	}
	if got := mustRun(t, e, "list", "-H"); got != "app\tmaster\t3000\t1\tno\tyes\nzeta\tmaster\t0\t0\tno\tno\n" {
		t.Fatalf("dm list -H: %q", got)
	}
	var items []listItem
	if err := json.Unmarshal([]byte(mustRun(t, e, "list", "--json")), &items); err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 || items[0].Name != "app" || !items[0].Current || items[0].Commits != 1 || items[0].Usage.Size != 3000 || items[1].Current {
		t.Fatalf("dm list --json: %+v", items)
	}

	logH := mustRun(t, e, "log", "-H")
	if !regexp.MustCompile(`^[0-9a-f]{32}\tadmin\t\d{4}-\d\d-\d\dT[^\t]+\tfirst\ta=1 k=v w\n$`).MatchString(logH) {
		t.Fatalf("dm log -H: %q", logH)
	}
	logText := mustRun(t, e, "log")
	for _, want := range []string{"commit ", "Author: admin", "Date:   ", "Meta:   a=1", "Meta:   k=v w", "    first\n    body\n"} {
		if !strings.Contains(logText, want) {
			t.Fatalf("dm log lacks %q:\n%s", want, logText)
		}
	}
	if got := mustRun(t, e, "log", "--dot", "zeta"); !strings.Contains(got, "No commits yet") {
		t.Fatalf("empty log: %q", got)
	}
	if got := mustRun(t, e, "log", "--dot", "zeta", "--json"); strings.TrimSpace(got) != "[]" {
		t.Fatalf("empty log --json: %q", got)
	}
	// -H and --json print only the result: commit prints its id.
	id := strings.TrimSpace(mustRun(t, e, "commit", "-m", "second", "-H", "--allow-empty"))
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(id) {
		t.Fatalf("commit -H: %q", id)
	}
	if got := mustRun(t, e, "log", "-n", "1", "-H"); !strings.HasPrefix(got, id+"\t") || strings.Count(got, "\n") != 1 {
		t.Fatalf("log -n 1 -H: %q", got)
	}
}

func TestUnauthorizedIsOneLine(t *testing.T) {
	e, n := withNode(t)
	path := filepath.Join(e["HOME"], ".dotmesh", "config")
	cfg, _ := LoadConfig(path)
	cfg.Remotes["local"].APIKey = n.Key + "x"
	writeConfig(t, path, cfg)
	failsWith(t, runDM(t, e, "list"), "refused the API key")
}

// TestLogShowsPrunedHistory: after gc, dm log marks the oldest commit
// left as where history was pruned, in text and JSON.
func TestLogShowsPrunedHistory(t *testing.T) {
	e, _ := withNode(t)
	mustRun(t, e, "init", "app")
	mustRun(t, e, "switch", "app")
	var ids []string
	for _, m := range []string{"one", "two", "three"} {
		p := strings.TrimSpace(mustRun(t, e, "path", "app"))
		if err := os.WriteFile(filepath.Join(p, "f"), []byte(m), 0o644); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, strings.TrimSpace(mustRun(t, e, "commit", "-m", m, "-H")))
	}
	if got := mustRun(t, e, "log"); strings.Contains(got, "pruned") {
		t.Fatalf("dm log before gc:\n%s", got)
	}
	mustRun(t, e, "gc", "app", "--keep", "2")
	got := mustRun(t, e, "log")
	if !strings.Contains(got, "commit "+ids[1]+" (pruned)\n") || strings.Count(got, "pruned") != 2 || !strings.Contains(got, "parent "+ids[0]+" and older commits are not on this node") {
		t.Fatalf("dm log after gc:\n%s", got)
	}
	var log []struct {
		ID     string `json:"id"`
		Pruned bool   `json:"pruned"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, e, "log", "--json")), &log); err != nil {
		t.Fatal(err)
	}
	if len(log) != 2 || log[0].Pruned || !log[1].Pruned || log[1].ID != ids[1] {
		t.Fatalf("dm log --json after gc: %+v", log)
	}
}

func TestTagsLogRefsAndBranchRename(t *testing.T) {
	e, _ := withNode(t)
	mustRun(t, e, "init", "app")
	mustRun(t, e, "switch", "app")
	p := strings.TrimSpace(mustRun(t, e, "path", "app.web"))
	commit := func(msg string) string {
		if err := os.WriteFile(filepath.Join(p, "f"), []byte(msg), 0o644); err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(mustRun(t, e, "commit", "-m", msg, "-H"))
	}
	c1 := commit("one")
	c2 := commit("two")
	if got := mustRun(t, e, "tag", "v1", "HEAD^", "-m", "first\nrelease"); !strings.Contains(got, "Tagged "+c1[:12]+" of app as v1.") {
		t.Fatalf("dm tag v1: %q", got)
	}
	if got := strings.TrimSpace(mustRun(t, e, "tag", "v2", "-H")); got != c2 {
		t.Fatalf("dm tag v2 -H: %q, want %s", got, c2)
	}
	failsWith(t, runDM(t, e, "tag", "v1"), "has a tag v1 already")
	failsWith(t, runDM(t, e, "branch", "v2"), "has a tag v2 already")
	failsWith(t, runDM(t, e, "tag", "master"), "has a branch master already")

	list := mustRun(t, e, "tag")
	if !regexp.MustCompile(`^TAG\s+COMMIT\s+CREATED\s+MESSAGE\nv1\s+` + c1[:12] + `\s+\S+ \S+\s+first\nv2\s+` + c2[:12] + `\s+\S+ \S+\s+\n$`).MatchString(list) {
		t.Fatalf("dm tag:\n%s", list)
	}
	if got := mustRun(t, e, "tag", "-H"); !regexp.MustCompile(`^v1\t` + c1 + `\tadmin\t\d{4}-[^\t]+\tfirst\nv2\t` + c2 + `\tadmin\t[^\t]+\t\n$`).MatchString(got) {
		t.Fatalf("dm tag -H: %q", got)
	}

	// dm log decorates; dm log REF starts at any ref.
	logText := mustRun(t, e, "log")
	for _, want := range []string{"commit " + c2 + " (HEAD -> master, tag: v2)\n", "commit " + c1 + " (tag: v1)\n"} {
		if !strings.Contains(logText, want) {
			t.Fatalf("dm log lacks %q:\n%s", want, logText)
		}
	}
	var items []struct {
		ID   string   `json:"id"`
		Refs []string `json:"refs"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, e, "log", "--json")), &items); err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 || items[0].ID != c2 || strings.Join(items[0].Refs, ",") != "HEAD -> master,tag: v2" || strings.Join(items[1].Refs, ",") != "tag: v1" {
		t.Fatalf("dm log --json: %+v", items)
	}
	if got := mustRun(t, e, "log", "-H", "v1"); !strings.HasPrefix(got, c1+"\t") || strings.Count(got, "\n") != 1 {
		t.Fatalf("dm log -H v1: %q", got)
	}
	if got := mustRun(t, e, "log", "-H", "master^"); !strings.HasPrefix(got, c1+"\t") {
		t.Fatalf("dm log -H master^: %q", got)
	}
	failsWith(t, runDM(t, e, "log", "nosuch"), "no branch, tag or commit nosuch")

	// Branches from any ref; rename, also of the current branch.
	mustRun(t, e, "branch", "fix", "v1")
	mustRun(t, e, "branch", "-m", "fix", "fix-2")
	if got := mustRun(t, e, "branch", "-H"); got != "fix-2\t"+c1+"\tno\nmaster\t"+c2+"\tyes\n" {
		t.Fatalf("dm branch -H after rename: %q", got)
	}
	mustRun(t, e, "branch", "-m", "main")
	if got := mustRun(t, e, "branch"); got != "  fix-2\n* main\n" {
		t.Fatalf("dm branch after renaming the current branch: %q", got)
	}
	if got := mustRun(t, e, "log"); !strings.Contains(got, "(HEAD -> main, tag: v2)") {
		t.Fatalf("dm log after the rename:\n%s", got)
	}
	failsWith(t, runDM(t, e, "branch", "-m", "fix-2", "v1"), "has a tag v1 already")
	mustRun(t, e, "reset", "--hard", "v1")
	if got := mustRun(t, e, "tag", "-d", "v2"); !strings.Contains(got, "Deleted tag v2 of app.") {
		t.Fatalf("dm tag -d: %q", got)
	}
	failsWith(t, runDM(t, e, "tag", "-d", "v2"), "no tag v2")
	if got := strings.TrimSpace(mustRun(t, e, "tag", "--json")); !strings.HasPrefix(got, `[`) || strings.Contains(got, `"v2"`) {
		t.Fatalf("dm tag --json: %q", got)
	}
}
