package e2e

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestRefsTagsAndRenameAcrossNodes drives two `dm serve` nodes through
// the real CLI: tags made and used as refs, dm log REF with decorations,
// a branch renamed, and tags travelling with push, pull and clone (a
// conflicting tag on the receiver is kept and named in a warning).
func TestRefsTagsAndRenameAcrossNodes(t *testing.T) {
	a := startServe(t, "a", "127.0.0.1")
	b := startServe(t, "b", "127.0.0.2")
	e := newEnv(t)
	e.addRemote(a)
	e.addRemote(b)
	e.on(a, "init", "app")
	db := e.pathOn(a, "app.db")
	writeFile(t, filepath.Join(db, "f"), "one")
	e.commitOn(a, "app", "one")
	e.on(a, "tag", "--dot", "app", "v1", "-m", "first release")
	writeFile(t, filepath.Join(db, "f"), "two")
	e.commitOn(a, "app", "two")
	first := e.logOn(a, "app", "v1")
	if len(first) != 1 || first[0].Message != "one" {
		t.Fatalf("dm log v1: %+v", first)
	}
	if out := e.on(a, "log", "--dot", "app"); !strings.Contains(out, "(HEAD -> master)") || !strings.Contains(out, "(tag: v1)") {
		t.Fatalf("dm log decorations:\n%s", out)
	}

	// A renamed branch pushes under its new name, with its tags.
	e.on(a, "branch", "--dot", "app", "-m", "master", "main")
	s := e.transfer(a, "push", "b", "app", "main")
	if s.Commits != 2 {
		t.Fatalf("push: %+v", s)
	}
	if got := e.logOn(b, "app", "v1"); len(got) != 1 || got[0].ID != first[0].ID {
		t.Fatalf("v1 on b: %+v", got)
	}
	if out := e.on(b, "tag", "--dot", "app", "-H"); !strings.HasPrefix(out, "v1\t"+first[0].ID+"\tadmin\t") {
		t.Fatalf("dm tag -H on b: %q", out)
	}

	// A tag made on b travels back with a pull that has no commit to
	// bring; a conflicting one stays and is named on stderr.
	e.on(b, "tag", "--dot", "app", "v2")
	e.on(b, "tag", "--dot", "app", "rc", "v1")
	e.on(a, "tag", "--dot", "app", "rc")
	r := e.dm("--remote", "a", "pull", "b", "app", "main")
	if r.code != 0 || !strings.Contains(r.out, "New tag: v2.") || !strings.Contains(r.err, "Warning: the receiving side kept its own tag (at another commit, or a branch of that name): rc;") {
		t.Fatalf("pull with tags: %v", r)
	}
	head := e.logOn(a, "app", "main")[0].ID
	if got := e.logOn(a, "app", "v2"); got[0].ID != head {
		t.Fatalf("v2 on a names %s, want %s", got[0].ID, head)
	}

	// A clone brings every tag of the branch's history.
	c := startServe(t, "c", "127.0.0.3")
	e.addRemote(c)
	e.on(c, "clone", "b", "app", "main")
	out := e.on(c, "tag", "--dot", "app", "-H")
	for _, want := range []string{"rc\t" + first[0].ID, "v1\t" + first[0].ID, "v2\t" + head} {
		if !strings.Contains(out, want+"\t") {
			t.Fatalf("tags of the clone lack %q:\n%s", want, out)
		}
	}
	e.fails("has a tag v1 already", "--remote", "c", "branch", "--dot", "app", "v1")
	e.on(c, "reset", "--dot", "app", "--hard", "v1")
	if got := readTree(t, e.pathOn(c, "app.db")); got["f"] != "one" {
		t.Fatalf("after reset to v1: %v", got)
	}
}
