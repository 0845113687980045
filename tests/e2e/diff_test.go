package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// sqlite runs a script against a SQLite database with Debian's sqlite3.
func sqlite(t *testing.T, db, script string) string {
	t.Helper()
	if _, err := exec.LookPath("sqlite3"); err != nil {
		t.Fatal("sqlite3 not found (apt-get install sqlite3): the diff tests use a real SQLite database as a source")
	}
	out, err := exec.Command("sqlite3", db, script).CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite3 %s: %v: %s", script, err, out)
	}
	return string(out)
}

// TestDiffStatusShowFiles: dm status, diff and show on the files
// backend, with a SQLite source: files added, modified, deleted (text and
// binary), rows inserted, deleted and updated, and bad input.
func TestDiffStatusShowFiles(t *testing.T) {
	e := newEnv(t)
	e.clusterInit()
	e.ok("init", "app")
	e.ok("switch", "app")
	db := filepath.Join(t.TempDir(), "shop.db")
	sqlite(t, db, "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER); INSERT INTO items VALUES (1, 'apple', 3), (2, 'pear', 5), (3, 'plum', 7);")
	e.ok("source", "add", "app.db", "sqlite", "sqlite://"+db)
	web := e.path("app.web")
	writeFile(t, filepath.Join(web, "index.html"), "<h1>shop</h1>\nline two\nline three\n")
	writeFile(t, filepath.Join(web, "logo.bin"), "\x00\x01\x02binary")
	c1 := strings.TrimSpace(e.ok("commit", "-m", "one", "-H"))

	if out := e.ok("status"); !strings.Contains(out, "nothing to commit, working state clean") {
		t.Fatalf("dm status when clean:\n%s", out)
	}
	if r := e.dm("diff", "--exit-code"); r.code != 0 || r.out != "" {
		t.Fatalf("dm diff --exit-code when clean: %v", r)
	}

	writeFile(t, filepath.Join(web, "index.html"), "<h1>shop</h1>\nline 2\nline three\n")
	writeFile(t, filepath.Join(web, "new.txt"), "new\n")
	if err := os.Remove(filepath.Join(web, "logo.bin")); err != nil {
		t.Fatal(err)
	}
	sqlite(t, db, "UPDATE items SET qty = 4 WHERE id = 1; DELETE FROM items WHERE id = 2; INSERT INTO items VALUES (4, 'fig', 1);")

	st := e.ok("status", "--rows")
	for _, want := range []string{"On branch master of app", "modified:   web/index.html", "added:      web/new.txt (4 B)", "deleted:    web/logo.bin (9 B)",
		"subdot db (sqlite database): changed", "table items: +1 -1 ~1 rows"} {
		if !strings.Contains(st, want) {
			t.Fatalf("dm status --rows lacks %q:\n%s", want, st)
		}
	}
	if r := e.dm("diff", "--exit-code", "--stat"); r.code != 1 || r.err != "" {
		t.Fatalf("dm diff --exit-code with changes: %v", r)
	}
	patch := e.ok("diff")
	for _, want := range []string{"diff --dm a/web/index.html b/web/index.html", "-line two\n+line 2\n", "diff --dm a/web/new.txt b/web/new.txt\nnew file mode 100644",
		"Binary files a/web/logo.bin and /dev/null differ (9 -> 0 bytes)", "diff --dm a/db/ b/db/ (sqlite database)", "table items (key id): +1 -1 ~1 rows",
		"  + (4) 4, 'fig', 1", "  - (2) 2, 'pear', 5", "  ~ (1) qty: 3 -> 4"} {
		if !strings.Contains(patch, want) {
			t.Fatalf("dm diff lacks %q:\n%s", want, patch)
		}
	}
	if strings.Contains(patch, "\x1b[") {
		t.Fatal("dm diff coloured output that is not a terminal")
	}
	if out := e.ok("diff", "--color=always"); !strings.Contains(out, "\x1b[32m+line 2\x1b[m") {
		t.Fatalf("dm diff --color=always:\n%q", out)
	}
	c2 := strings.TrimSpace(e.ok("commit", "-m", "two", "-d", "ticket=T-1", "-H"))

	// Two commits, by id, by HEAD^ and by branch name; the same answer.
	ns := e.ok("diff", "--name-status", c1, c2)
	if ns != "M\tweb/index.html\nD\tweb/logo.bin\nA\tweb/new.txt\nM\tdb/\n" {
		t.Fatalf("dm diff --name-status: %q", ns)
	}
	if got := e.ok("diff", "--name-status", "HEAD^", "master"); got != ns {
		t.Fatalf("dm diff --name-status HEAD^ master: %q", got)
	}
	stat := e.ok("diff", "--stat", "--lines", "HEAD^", "HEAD")
	if !regexp.MustCompile(`(?m)^ web/index.html\s+\| 2 \+-$`).MatchString(stat) || !strings.Contains(stat, " 3 files changed, 2 insertions(+), 1 deletion(-), 1 database changed") {
		t.Fatalf("dm diff --stat --lines:\n%s", stat)
	}
	if stat := e.ok("diff", "--stat", "HEAD^", "HEAD"); !regexp.MustCompile(`(?m)^ web/logo.bin\s+\| 9 -> 0 bytes$`).MatchString(stat) || !strings.Contains(stat, " 3 files changed, ") {
		t.Fatalf("dm diff --stat:\n%s", stat)
	}
	if got := e.ok("diff", "--name-status", "HEAD^", "HEAD", "--", "web/new.txt"); got != "A\tweb/new.txt\n" {
		t.Fatalf("dm diff -- web/new.txt: %q", got)
	}
	if got := e.ok("diff", "--stat", "-H", "HEAD^", "HEAD", "--", "db"); got != "table\tdb\titems\t1\t1\t1\n" {
		t.Fatalf("dm diff --stat -H -- db: %q", got)
	}
	var d dotmesh.Diff
	e.jsonOut(&d, "diff", c1, c2)
	if string(d.From.Commit) != c1 || string(d.To.Commit) != c2 || d.Stat.Modified != 1 || d.Stat.Databases != 1 || len(d.Databases) != 1 || d.Databases[0].Tables[0].Updated != 1 {
		t.Fatalf("dm diff --json: %+v", d)
	}

	show := e.ok("show")
	for _, want := range []string{"commit " + c2, "Author: admin", "Meta:   ticket=T-1", "    two", "-line two", "  ~ (1) qty: 3 -> 4"} {
		if !strings.Contains(show, want) {
			t.Fatalf("dm show lacks %q:\n%s", want, show)
		}
	}
	var shown struct {
		Commit struct {
			dotmesh.Commit
			Info map[string]any `json:"info"` // numbers as JSON numbers
		} `json:"commit"`
		Diff dotmesh.Diff `json:"diff"`
	}
	if err := json.Unmarshal([]byte(e.ok("show", "HEAD", "--json", "--max-rows", "1")), &shown); err != nil || string(shown.Commit.ID) != c2 || shown.Diff.Stat.Added != 1 {
		t.Fatalf("dm show --json: %v %+v", err, shown)
	}
	if out := e.ok("show", c1[:8]); !strings.Contains(out, "commit "+c1) || !strings.Contains(out, "    one") || !strings.Contains(out, "new file mode") {
		t.Fatalf("dm show of the first commit:\n%s", out)
	}

	// Bad input: one line, the right status, nothing changed.
	before := e.ok("log", "-H")
	for _, c := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"diff", "nosuchbranch"}, "nosuchbranch", 4},
		{[]string{"show", "deadbeef"}, "deadbeef", 4},
		{[]string{"diff", "HEAD", "--", "nothere"}, "nothere", 4},
		{[]string{"diff", "a", "b", "c"}, "too many refs", 2},
		{[]string{"diff", "--", "../etc"}, "not a path inside", 3},
		{[]string{"diff", "--max-rows", "-1"}, "--max-rows -1", 3},
		{[]string{"status", "--dot", "nosuchdot"}, "nosuchdot", 4},
	} {
		if r := e.fails(c.want, c.args...); r.code != c.code {
			t.Errorf("dm %v: exit %d, want %d: %v", c.args, r.code, c.code, r)
		}
	}
	if after := e.ok("log", "-H"); after != before {
		t.Fatal("bad input changed the history")
	}
}

// TestDiffOnSnapshotBackends: the same file changes give the same
// name-status, stat and status on zfs and btrfs as on files.
func TestDiffOnSnapshotBackends(t *testing.T) {
	t.Run("zfs", func(t *testing.T) {
		e := zfsEnv(t)
		e.ok("init", "app")
		snapshotDiff(t, e)
	})
	t.Run("btrfs", func(t *testing.T) {
		e := btrfsEnv(t, "--enable-backends", "btrfs")
		e.ok("init", "app", "--backend", "btrfs")
		snapshotDiff(t, e)
	})
	t.Run("files", func(t *testing.T) {
		e := newEnv(t)
		e.clusterInit()
		e.ok("init", "app")
		snapshotDiff(t, e)
	})
}

func snapshotDiff(t *testing.T, e *env) {
	t.Helper()
	e.ok("switch", "app")
	web := e.path("app.web")
	writeFile(t, filepath.Join(web, "a.txt"), "one\ntwo\n")
	writeFile(t, filepath.Join(web, "gone.txt"), "bye\n")
	if err := os.MkdirAll(filepath.Join(web, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.ok("commit", "-m", "one")
	writeFile(t, filepath.Join(web, "a.txt"), "one\n2\n")
	writeFile(t, filepath.Join(web, "sub", "b.txt"), "b\n")
	if err := os.Remove(filepath.Join(web, "gone.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a.txt", filepath.Join(web, "link")); err != nil {
		t.Fatal(err)
	}
	want := "A\tweb/link\nA\tweb/sub/\nA\tweb/sub/b.txt\nD\tweb/gone.txt\nM\tweb/a.txt\n"
	sortedLines := func(s string) string {
		l := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
		sort.Strings(l)
		return strings.Join(l, "\n") + "\n"
	}
	if got := sortedLines(e.ok("diff", "--name-status")); got != want {
		t.Fatalf("dm diff --name-status of the working state: %q; want %q", got, want)
	}
	st := e.ok("status")
	for _, w := range []string{"modified:   web/a.txt (8 B -> 6 B)", "deleted:    web/gone.txt (4 B)", "added:      web/sub/b.txt (2 B)"} {
		if !strings.Contains(st, w) {
			t.Fatalf("dm status lacks %q:\n%s", w, st)
		}
	}
	e.ok("commit", "-m", "two")
	if got := sortedLines(e.ok("diff", "--name-status", "HEAD^", "HEAD")); got != want {
		t.Fatalf("dm diff --name-status HEAD^ HEAD: %q; want %q", got, want)
	}
	patch := e.ok("show")
	for _, w := range []string{"-two\n+2\n", "diff --dm a/web/link b/web/link\nnew file mode 120000", "+a.txt"} {
		if !strings.Contains(patch, w) {
			t.Fatalf("dm show lacks %q:\n%s", w, patch)
		}
	}
	if out := e.ok("status"); !strings.Contains(out, "nothing to commit, working state clean") {
		t.Fatalf("dm status after the commit:\n%s", out)
	}
}
