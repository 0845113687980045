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

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// TestStatusDiffShowOnANode: the three verbs against a real in-process
// node, in each output mode, with --exit-code's statuses.
func TestStatusDiffShowOnANode(t *testing.T) {
	e, _ := withNode(t)
	mustRun(t, e, "init", "app")
	mustRun(t, e, "switch", "app")
	web := strings.TrimSpace(mustRun(t, e, "path", "app.web"))
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(web, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.txt", "1\n2\n3\n")
	write("b.bin", "\x00\x01")
	c1 := strings.TrimSpace(mustRun(t, e, "commit", "-m", "one", "-H"))

	if got := mustRun(t, e, "status"); !strings.HasSuffix(got, "nothing to commit, working state clean\n") || !strings.Contains(got, "On branch master of app\nHEAD is "+shortID(c1)) {
		t.Fatalf("clean status: %q", got)
	}
	if got := mustRun(t, e, "status", "-H"); got != "" {
		t.Fatalf("clean status -H: %q", got)
	}
	if r := runDM(t, e, "diff", "--exit-code"); r.code != 0 || r.out != "" || r.err != "" {
		t.Fatalf("diff --exit-code when clean: %+v", r)
	}

	write("a.txt", "1\ntwo\n3\n")
	write("c.txt", "new\n")
	if err := os.Remove(filepath.Join(web, "b.bin")); err != nil {
		t.Fatal(err)
	}
	if got := mustRun(t, e, "status", "-H"); got != "file\tweb\tM\tweb/a.txt\t6\t8\nfile\tweb\tD\tweb/b.bin\t2\t0\nfile\tweb\tA\tweb/c.txt\t0\t4\n" {
		t.Fatalf("status -H: %q", got)
	}
	var st dotmesh.Status
	if err := json.Unmarshal([]byte(mustRun(t, e, "status", "--json")), &st); err != nil || st.Clean || string(st.Head) != c1 || st.Branch != "master" {
		t.Fatalf("status --json: %v %+v", err, st)
	}
	r := runDM(t, e, "diff", "--exit-code", "--name-status")
	if r.code != 1 || r.err != "" || r.out != "M\tweb/a.txt\nD\tweb/b.bin\nA\tweb/c.txt\n" {
		t.Fatalf("diff --exit-code --name-status with changes: %+v", r)
	}
	patch := mustRun(t, e, "diff", "-U", "1")
	for _, want := range []string{"diff --dm a/web/a.txt b/web/a.txt\n--- a/web/a.txt\n+++ b/web/a.txt\n@@ -1,3 +1,3 @@\n 1\n-2\n+two\n 3\n",
		"diff --dm a/web/b.bin b/web/b.bin\ndeleted file mode 100644\nBinary files a/web/b.bin and /dev/null differ (2 -> 0 bytes)\n",
		"diff --dm a/web/c.txt b/web/c.txt\nnew file mode 100644\n--- /dev/null\n+++ b/web/c.txt\n@@ -0,0 +1 @@\n+new\n"} {
		if !strings.Contains(patch, want) {
			t.Fatalf("diff lacks %q:\n%s", want, patch)
		}
	}
	c2 := strings.TrimSpace(mustRun(t, e, "commit", "-m", "two", "-H"))
	if got := mustRun(t, e, "diff", "--stat", "--lines", "-H", c1, c2); got != "1\t1\tweb/a.txt\n-\t-\tweb/b.bin\n1\t0\tweb/c.txt\n" {
		t.Fatalf("diff --stat --lines -H: %q", got)
	}
	if got := mustRun(t, e, "diff", "--stat", "-H", c1, c2); got != "6\t8\tweb/a.txt\n2\t0\tweb/b.bin\n0\t4\tweb/c.txt\n" {
		t.Fatalf("diff --stat -H: %q", got)
	}
	if got := mustRun(t, e, "diff", "--stat", "--lines", "HEAD^", "HEAD", "--", "web/c.txt"); got != " web/c.txt | 1 +\n 1 file changed, 1 insertion(+)\n" {
		t.Fatalf("diff --stat --lines -- web/c.txt: %q", got)
	}
	if got := mustRun(t, e, "diff", "--stat", "HEAD^", "HEAD", "--", "web/c.txt"); got != " web/c.txt | 0 -> 4 bytes\n 1 file changed, 4 B added(+), 0 B removed(-)\n" {
		t.Fatalf("diff --stat -- web/c.txt: %q", got)
	}
	// One ref: that commit against the working state (clean: HEAD's).
	if got := mustRun(t, e, "diff", "--name-status", c1); got != "M\tweb/a.txt\nD\tweb/b.bin\nA\tweb/c.txt\n" {
		t.Fatalf("diff REF: %q", got)
	}
	show := mustRun(t, e, "show", "--name-status")
	if !strings.HasPrefix(show, "commit "+c2+"\n") || !strings.Contains(show, "\n    two\n\nM\tweb/a.txt\n") {
		t.Fatalf("show --name-status:\n%s", show)
	}
	var shown struct {
		Commit *jsonCommit
		Diff   *dotmesh.Diff
	}
	if err := json.Unmarshal([]byte(mustRun(t, e, "show", "--json", "HEAD")), &shown); err != nil || string(shown.Commit.ID) != c2 || string(shown.Diff.From.Commit) != c1 || shown.Diff.Stat.Added != 1 {
		t.Fatalf("show --json: %v %+v", err, shown)
	}
	// The first commit: everything in it shows as added, as git show of
	// a root commit.
	first := mustRun(t, e, "show", "--name-status", c1)
	if !strings.HasPrefix(first, "commit "+c1+"\n") || !strings.HasSuffix(first, "\n    one\n\nA\tweb/\nA\tweb/a.txt\nA\tweb/b.bin\n") {
		t.Fatalf("show --name-status of the first commit:\n%s", first)
	}
	if got := mustRun(t, e, "show", c1, "-U", "1"); !strings.Contains(got, "diff --dm a/web/a.txt b/web/a.txt\nnew file mode 100644\n--- /dev/null\n+++ b/web/a.txt\n@@ -0,0 +1,3 @@\n+1\n+2\n+3\n") {
		t.Fatalf("show of the first commit:\n%s", got)
	}
	var root struct {
		Commit *jsonCommit
		Diff   *dotmesh.Diff
	}
	if err := json.Unmarshal([]byte(mustRun(t, e, "show", "--json", c1)), &root); err != nil || string(root.Commit.ID) != c1 || root.Diff.From.Commit != "" || root.Diff.Stat.Added != 3 {
		t.Fatalf("show --json of the first commit: %v %+v", err, root)
	}
	failsWith(t, runDM(t, e, "show", "HEAD~5"), "HEAD~5")
	failsWith(t, runDM(t, e, "diff", "HEAD", "--", "web/nothere"), "web/nothere")
	if r := runDM(t, e, "diff", "--json", "HEAD", "--", "web/nothere"); r.code != exitNotFound || !strings.Contains(r.err, `"kind":"not_found"`) {
		t.Fatalf("diff --json of a missing path: %+v", r)
	}

	// gc removes the first commit: the second is shown all added, saying so.
	mustRun(t, e, "gc", "app", "--keep", "1")
	pruned := mustRun(t, e, "show", "--name-status", c2)
	if !strings.Contains(pruned, "History pruned here: parent "+c1) || !strings.HasSuffix(pruned, "\nA\tweb/\nA\tweb/a.txt\nA\tweb/c.txt\n") {
		t.Fatalf("show --name-status of a commit whose parent gc removed:\n%s", pruned)
	}
}
