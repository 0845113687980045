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

// writeIn writes content to file in the working tree of volume v.
func writeIn(t *testing.T, e map[string]string, v, file, content string) {
	t.Helper()
	dir := strings.TrimSpace(mustRun(t, e, "path", v))
	if err := os.WriteFile(filepath.Join(dir, file), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readIn(t *testing.T, e map[string]string, v, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(strings.TrimSpace(mustRun(t, e, "path", v)), file))
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

// head is the id of the head commit of a dot's current branch.
func head(t *testing.T, e map[string]string, dot string) string {
	t.Helper()
	return strings.Fields(mustRun(t, e, "log", "-H", "-n", "1", "--dot", dot) + " none")[0]
}

type allItem struct {
	Dot, Node, Status, Detail, Commit, Error, Kind string
}

func allJSON(t *testing.T, r result) []allItem {
	t.Helper()
	var items []allItem
	if err := json.Unmarshal([]byte(r.out), &items); err != nil {
		t.Fatalf("not a JSON array: %v\n%+v", err, r)
	}
	return items
}

func TestDotLabelAndList(t *testing.T) {
	e, _ := withNode(t)
	for _, d := range []string{"db", "web", "other"} {
		mustRun(t, e, "init", d)
	}
	if got := mustRun(t, e, "dot", "label", "db", "app=shop", "tier=db", "example.com/team=core"); !strings.Contains(got, "Labels of db: app=shop,example.com/team=core,tier=db") {
		t.Fatalf("dm dot label: %q", got)
	}
	mustRun(t, e, "dot", "label", "web", "app=shop", "tier=web")
	exactly(t, runDM(t, e, "dot", "label", "db", "tier=cache"), "already exists: dot db has label tier=db already; --overwrite changes it", exitConflict)
	exactly(t, runDM(t, e, "dot", "label", "db", "ti er=x"), `invalid argument: label key "ti er": contains ' '; use only letters, digits, '-', '_' and '.'`, exitInvalid)
	exactly(t, runDM(t, e, "dot", "label", "db", "tier"), `invalid argument: label argument "tier" is neither KEY=VALUE (set) nor KEY- (remove)`, exitInvalid)
	exactly(t, runDM(t, e, "dot", "label", "nope", "a=b"), "not found: dot nope does not exist; `dm list` shows the dots", exitNotFound)
	mustRun(t, e, "dot", "label", "db", "tier=cache", "example.com/team-", "--overwrite")
	if got := mustRun(t, e, "dot", "label", "db"); got != "app=shop,tier=cache\n" {
		t.Fatalf("dm dot label db: %q", got)
	}
	if got := mustRun(t, e, "dot", "label", "db", "-H"); got != "app\tshop\ntier\tcache\n" {
		t.Fatalf("dm dot label db -H: %q", got)
	}
	got := mustRun(t, e, "list", "--show-labels")
	if !regexp.MustCompile(`(?m)^  DOT\s+BRANCH\s+SIZE\s+COMMITS\s+DIRTY\s+LABELS\n  db\s.*\sapp=shop,tier=cache\n\* other\s.*\s<none>\n  web\s.*\sapp=shop,tier=web\n`).MatchString(got) {
		t.Fatalf("dm list --show-labels:\n%s", got)
	}
	if got := mustRun(t, e, "list", "-H", "--label", "app=shop", "--label", "tier!=web"); !strings.HasPrefix(got, "db\t") || strings.Count(got, "\n") != 1 {
		t.Fatalf("dm list -H --label app=shop --label tier!=web: %q", got)
	}
	var items []listItem
	if err := json.Unmarshal([]byte(mustRun(t, e, "list", "--json", "--label", "!app")), &items); err != nil || len(items) != 1 || items[0].Name != "other" {
		t.Fatalf("dm list --json --label '!app': %+v %v", items, err)
	}
	if err := json.Unmarshal([]byte(mustRun(t, e, "list", "--json", "--label", "tier")), &items); err != nil || len(items) != 2 || items[0].Dot.Labels["tier"] != "cache" {
		t.Fatalf("dm list --json --label tier: %+v %v", items, err)
	}
	exactly(t, runDM(t, e, "list", "--label", "a=b=c"), `invalid argument: selector "a=b=c": label value "b=c": contains '='; use only letters, digits, '-', '_' and '.'`, exitInvalid)
}

// commit --all: changed dots are committed, an unchanged one is skipped
// (not a failure), and a dot the user may only read fails without
// stopping the others; dm exits with that failure's status.
func TestCommitAll(t *testing.T) {
	admin, us, _ := hubEnvs(t, "alice")
	alice := us["alice"]
	mustRun(t, admin, "init", "shared")
	writeIn(t, admin, "shared", "f", "admin's")
	mustRun(t, admin, "dot", "share", "admin/shared", "alice", "--read")
	for _, d := range []string{"a1", "a2", "a3"} {
		mustRun(t, alice, "init", d)
	}
	writeIn(t, alice, "a1", "f", "one")
	writeIn(t, alice, "a3", "f", "three")

	r := runDM(t, alice, "commit", "--all", "-m", "nightly")
	if r.code != exitPermission {
		t.Fatalf("commit --all with a read-only dot: %+v; want exit %d", r, exitPermission)
	}
	lines := strings.Split(strings.TrimRight(r.out, "\n"), "\n")
	if len(lines) != 5 || !regexp.MustCompile(`^shared: failed: permission denied: commit needs write, and user "alice" has read on shared`).MatchString(lines[0]) ||
		!regexp.MustCompile(`^alice/a1: committed [0-9a-f]{12} on master$`).MatchString(lines[1]) ||
		lines[2] != "alice/a2: skipped: nothing to commit" ||
		!regexp.MustCompile(`^alice/a3: committed [0-9a-f]{12} on master$`).MatchString(lines[3]) ||
		lines[4] != "4 dots: 2 done, 1 skipped, 1 failed." {
		t.Fatalf("commit --all printed:\n%s", r.out)
	}
	if !strings.HasPrefix(r.err, "dm: 1 of 4 dots failed (the first, shared: permission denied") || strings.Count(r.err, "\n") != 1 {
		t.Fatalf("commit --all error: %q", r.err)
	}
	if head(t, admin, "shared") != "none" {
		t.Fatal("the read-only dot got a commit")
	}

	// --namespace chooses; --json is an array; all unchanged is exit 0.
	r = runDM(t, alice, "commit", "--all", "--namespace", "alice", "-m", "again", "--json")
	items := allJSON(t, r)
	if r.code != 0 || len(items) != 3 || items[0].Status != "skipped" || items[2].Detail != "nothing to commit" {
		t.Fatalf("commit --all --namespace alice --json: %+v, %+v", r, items)
	}
	writeIn(t, alice, "a2", "f", "two")
	r = runDM(t, alice, "commit", "--all", "--namespace", "alice", "-m", "two", "-H")
	if r.code != 0 || !regexp.MustCompile(`^alice/a1\tskipped\tnothing to commit\nalice/a2\tdone\tcommitted [0-9a-f]{12} on master\nalice/a3\tskipped\tnothing to commit\n$`).MatchString(r.out) {
		t.Fatalf("commit --all -H: %+v", r)
	}

	// Selectors need --all; --all names no dot; nothing chosen is not found.
	exactly(t, runDM(t, alice, "commit", "--label", "a=b", "-m", "x"), "--namespace and --label choose the dots of --all; add --all (or name one dot)", exitUsage)
	exactly(t, runDM(t, alice, "commit", "--all", "--dot", "a1", "-m", "x"), "--all acts on many dots: name no dot (choose them with --namespace and --label)", exitUsage)
	exactly(t, runDM(t, alice, "commit", "--all", "--label", "nobody=here", "-m", "x"), "no dot on remote hub matches the selection (nobody=here); `dm list --show-labels` shows the dots and their labels", exitNotFound)
	exactly(t, runDM(t, alice, "commit", "--all", "--label", "-x", "-m", "x"), `invalid argument: selector "-x": label key "-x": must begin and end with a letter or digit`, exitInvalid)
}

// A deployment's restore: tag --all marks three dots with different
// subdots, and reset --all --hard brings each back; a dot lacking the tag
// makes reset --all refuse before changing any dot.
func TestTagAllResetAll(t *testing.T) {
	e, _ := withNode(t)
	files := map[string][2]string{ // dot -> volume, file
		"db":    {"db.pgdata", "table"},
		"cache": {"cache.redis", "dump.rdb"},
		"site":  {"site", "index.html"},
	}
	order := []string{"cache", "db", "site"}
	for _, d := range order {
		mustRun(t, e, "init", d)
		mustRun(t, e, "dot", "label", d, "app=shop")
		writeIn(t, e, files[d][0], files[d][1], d+" v1")
	}
	mustRun(t, e, "commit", "--all", "-m", "v1")
	r := runDM(t, e, "tag", "--all", "release-42", "-m", "shop 4.2")
	if r.code != 0 || !regexp.MustCompile(`^cache: tagged [0-9a-f]{12} as release-42\ndb: tagged [0-9a-f]{12} as release-42\nsite: tagged [0-9a-f]{12} as release-42\n3 dots: 3 done, 0 failed.\n$`).MatchString(r.out) {
		t.Fatalf("tag --all: %+v", r)
	}
	tagged := map[string]string{}
	for _, d := range order {
		tagged[d] = head(t, e, d)
		writeIn(t, e, files[d][0], files[d][1], d+" v2")
	}
	mustRun(t, e, "commit", "--all", "-m", "v2")
	// A dot without the tag, and uncommitted changes in one with it.
	mustRun(t, e, "init", "logs")
	writeIn(t, e, "logs", "log", "x")
	mustRun(t, e, "commit", "--dot", "logs", "-m", "logs")
	writeIn(t, e, "site", "index.html", "site dirty")
	before := map[string]string{}
	for _, d := range append(order, "logs") {
		before[d] = head(t, e, d)
	}
	unchanged := func() {
		t.Helper()
		for _, d := range append(order, "logs") {
			if h := head(t, e, d); h != before[d] {
				t.Fatalf("dot %s moved from %s to %s", d, before[d], h)
			}
		}
		for _, d := range []string{"cache", "db"} {
			if got := readIn(t, e, files[d][0], files[d][1]); got != d+" v2" {
				t.Fatalf("dot %s's file: %q", d, got)
			}
		}
		if got := readIn(t, e, "site", "index.html"); got != "site dirty" {
			t.Fatalf("site's uncommitted change: %q", got)
		}
	}
	exactly(t, runDM(t, e, "reset", "--all", "--hard", "release-42"), "no dot was reset: dot logs has no release-42 (of 4 chosen)", exitNotFound)
	unchanged()
	exactly(t, runDM(t, e, "reset", "--all", "--label", "app=shop", "release-42"), "no dot was reset: site has uncommitted changes; commit them, or add --hard to discard them", exitConflict)
	unchanged()
	// logs has release-42 on another branch only: not in master's history.
	mustRun(t, e, "branch", "--dot", "logs", "side")
	mustRun(t, e, "checkout", "--dot", "logs", "side")
	writeIn(t, e, "logs", "log", "side")
	mustRun(t, e, "commit", "--dot", "logs", "-m", "side")
	mustRun(t, e, "tag", "--dot", "logs", "release-42")
	mustRun(t, e, "checkout", "--dot", "logs", "master")
	exactly(t, runDM(t, e, "reset", "--all", "--hard", "release-42"), "no dot was reset: release-42 is not in the history of the current branch of logs (of 4 chosen); check out the branch that has it there", exitNotFound)
	unchanged()
	mustRun(t, e, "tag", "--dot", "logs", "-d", "release-42")

	r = runDM(t, e, "reset", "--all", "--label", "app=shop", "--hard", "release-42", "--json")
	items := allJSON(t, r)
	if r.code != 0 || len(items) != 3 {
		t.Fatalf("reset --all --hard release-42: %+v", r)
	}
	for i, d := range order {
		if items[i].Dot != d || items[i].Status != "done" || items[i].Commit != tagged[d] || head(t, e, d) != tagged[d] {
			t.Fatalf("dot %s after reset --all: %+v, head %s; want %s", d, items[i], head(t, e, d), tagged[d])
		}
		if got := readIn(t, e, files[d][0], files[d][1]); got != d+" v1" {
			t.Fatalf("dot %s's file after reset --all: %q", d, got)
		}
	}
	if head(t, e, "logs") != before["logs"] {
		t.Fatal("reset --all --label app=shop moved logs")
	}
	// tag --all again: the dots that have it fail (exists), logs gets it.
	r = runDM(t, e, "tag", "--all", "release-42")
	if r.code != exitConflict || !strings.Contains(r.out, "logs: tagged ") || !strings.Contains(r.out, "cache: failed: already exists") || !strings.Contains(r.out, "4 dots: 1 done, 3 failed.") {
		t.Fatalf("tag --all over existing tags: %+v", r)
	}
	exactly(t, runDM(t, e, "tag", "--all", "-d", "release-42"), "usage: dm tag --all NAME [REF] (--all makes tags; list and delete them per dot)", exitUsage)
	exactly(t, runDM(t, e, "tag", "--all"), "usage: dm tag --all NAME [REF] (--all makes tags; list and delete them per dot)", exitUsage)
}

// push --all and pull --all between two real nodes: a dot that has
// diverged on the receiver fails (exit 5) and the others are pushed.
func TestPushPullAll(t *testing.T) {
	e, _ := withNode(t)
	other := servertest.Start(t)
	cfgPath := filepath.Join(e["HOME"], ".dotmesh", "config")
	cfg, err := LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Remotes["b"] = &Remote{User: "admin", Address: strings.TrimPrefix(other.URL, "http://"), APIKey: other.Key}
	writeConfig(t, cfgPath, cfg)
	for _, d := range []string{"p1", "p2", "p3"} {
		mustRun(t, e, "init", d)
		writeIn(t, e, d, "f", d)
	}
	mustRun(t, e, "commit", "--all", "-m", "first")
	// p2 exists on b with its own history.
	mustRun(t, e, "--remote", "b", "init", "p2")
	dir := strings.TrimSpace(mustRun(t, e, "--remote", "b", "path", "p2"))
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("b's own"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, e, "--remote", "b", "commit", "--dot", "p2", "-m", "b's own")

	r := runDM(t, e, "push", "--all", "b")
	if r.code != exitConflict {
		t.Fatalf("push --all with a diverged dot: %+v", r)
	}
	if !regexp.MustCompile(`^p1: pushed @master to [0-9a-f]{12}: 1 commit\(s\), .*\np2: failed: .*\np3: pushed @master to [0-9a-f]{12}: 1 commit\(s\), .*\n3 dots: 2 done, 1 failed.\n$`).MatchString(r.out) {
		t.Fatalf("push --all printed:\n%s", r.out)
	}
	for _, d := range []string{"p1", "p3"} {
		if got, want := strings.Fields(mustRun(t, e, "--remote", "b", "log", "-H", "--dot", d))[0], head(t, e, d); got != want {
			t.Fatalf("%s's head on b: %s; want %s", d, got, want)
		}
	}
	r = runDM(t, e, "pull", "--all", "--label", "!none", "b", "--json")
	items := allJSON(t, r)
	if r.code == 0 || len(items) != 3 || items[0].Status != "skipped" || items[1].Status != "failed" || items[2].Status != "skipped" {
		t.Fatalf("pull --all: %+v %+v", r, items)
	}
	exactly(t, runDM(t, e, "push", "--all", "b", "p1"), "--all acts on many dots: name no dot (choose them with --namespace and --label)", exitUsage)
	exactly(t, runDM(t, e, "push", "--all", "nowhere"), "no remote named nowhere; `dm remote add nowhere USER@HOST` adds it, `dm remote` lists them", exitNotFound)
}

func TestAllNodesNeedsACluster(t *testing.T) {
	e, _ := withNode(t)
	for _, verb := range []string{"gc", "verify"} {
		exactly(t, runDM(t, e, verb, "--all-nodes"), "not supported: this node is not part of a cluster (dm serve --store etcd makes one)", exitNotSupported)
	}
}
