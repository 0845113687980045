package e2e

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// randomBytes returns n incompressible bytes.
func randomBytes(seed uint64, n int) []byte {
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	b := make([]byte, n)
	_, _ = r.Read(b)
	return b
}

// TestTransferPushPullClone drives three nodes through the real CLI:
// push (creating the dot), incremental push, clone, divergence refused and
// then stashed, uncommitted changes protected, and pull.
func TestTransferPushPullClone(t *testing.T) {
	a := startServe(t, "a", "127.0.0.1")
	b := startServe(t, "b", "127.0.0.2")
	c := startServe(t, "c", "127.0.0.3")
	e := newEnv(t)
	for _, n := range []*serveNode{a, b, c} {
		e.addRemote(n)
	}
	e.on(a, "init", "app")
	db := e.pathOn(a, "app.db")
	must(t, os.WriteFile(filepath.Join(db, "big"), randomBytes(1, 2<<20), 0o644))
	writeFile(t, filepath.Join(db, "customers"), "alice\n")
	e.on(a, "commit", "--dot", "app", "-m", "first", "-d", "ticket=APP-1")

	// First push: creates the dot on b with the same commit.
	s := e.transfer(a, "push", "b", "app")
	if s.Commits != 1 || s.Bytes < 2<<20 {
		t.Fatalf("first push: %+v; want 1 commit of at least 2 MiB", s)
	}
	la, lb := e.logOn(a, "app"), e.logOn(b, "app")
	if ids(la) != ids(lb) || lb[0].Message != "first" || lb[0].Author != la[0].Author {
		t.Fatalf("logs differ after push: a %+v, b %+v", la, lb)
	}
	if !sameTree(readTree(t, db), readTree(t, e.pathOn(b, "app.db"))) {
		t.Fatal("b's working tree differs from a's after the push")
	}

	// Incremental: the second push (no DOT: the current dot, and the
	// upstream recorded by the first) sends only the small new commit.
	e.on(a, "switch", "app")
	writeFile(t, filepath.Join(db, "customers"), "alice\nbob\n")
	e.commitOn(a, "app", "second")
	s = e.transfer(a, "push", "b")
	if s.Commits != 1 || s.Bytes > 64<<10 {
		t.Fatalf("incremental push: %+v; want 1 commit of a few KiB", s)
	}
	if s = e.transfer(a, "push", "b"); !s.UpToDate {
		t.Fatalf("push with nothing new: %+v", s)
	}
	second := e.logOn(a, "app")[0].ID

	// Clone b's dot to c under another name.
	e.on(c, "clone", "b", "app", "--local-name", "copy")
	if ids(e.logOn(c, "copy")) != ids(e.logOn(a, "app")) {
		t.Fatal("the clone's history differs")
	}
	if got := readTree(t, e.pathOn(c, "copy.db")); !sameTree(got, readTree(t, db)) {
		t.Fatal("the clone's tree differs")
	}

	// Divergence: b commits on its own, a commits and pushes.
	writeFile(t, filepath.Join(e.pathOn(b, "app.db"), "b-only"), "x")
	e.commitOn(b, "app", "b's own")
	writeFile(t, filepath.Join(db, "customers"), "alice\nbob\ncarol\n")
	e.commitOn(a, "app", "third")
	before := ids(e.logOn(b, "app"))
	r := e.fails("diverged", "--remote", "a", "push", "b")
	if !strings.HasSuffix(r.err, " has diverged: both sides have commits the other lacks (the last common commit is "+second+"); nothing was changed. Pass --stash-on-divergence to move the receiving side's commits to a new branch and take the incoming ones\n") {
		t.Fatalf("divergence error does not name the common commit %s and --stash-on-divergence: %s", second, r.err)
	}
	if ids(e.logOn(b, "app")) != before {
		t.Fatal("a refused push changed b")
	}
	s = e.transfer(a, "push", "b", "--stash-on-divergence")
	if !strings.HasPrefix(s.Stashed, "master-DIVERGED-") {
		t.Fatalf("stashed push: %+v", s)
	}
	if ids(e.logOn(b, "app")) != ids(e.logOn(a, "app")) {
		t.Fatal("after the stashed push b's master differs from a's")
	}
	if got := e.logOn(b, "app", "--branch", s.Stashed); ids(got) != before {
		t.Fatalf("stash branch %s holds %s, want %s", s.Stashed, ids(got), before)
	}
	if _, err := os.Stat(filepath.Join(e.pathOn(b, "app.db"), "b-only")); !os.IsNotExist(err) {
		t.Fatal("b's working tree still has its diverged file")
	}

	// Uncommitted changes on the pulling side are protected.
	copyDB := e.pathOn(c, "copy.db")
	writeFile(t, filepath.Join(copyDB, "scratch"), "unsaved work")
	r = e.fails("uncommitted", "--remote", "c", "pull", "b", "copy", "--remote-name", "app")
	if !strings.HasPrefix(r.err, "dm: uncommitted changes: branch master of copy on this node has uncommitted changes (about ") ||
		!strings.HasSuffix(r.err, " bytes); nothing was transferred. Commit them there (`dm commit`) or discard them (`dm reset --hard HEAD`), then run the transfer again\n") || r.code != 5 {
		t.Fatalf("a pull into uncommitted changes: %v", r)
	}
	if b, _ := os.ReadFile(filepath.Join(copyDB, "scratch")); string(b) != "unsaved work" {
		t.Fatal("a refused pull touched the working tree")
	}
	e.on(c, "reset", "--dot", "copy", "--hard", "HEAD")
	// The upstream recorded by the clone makes --remote-name unneeded.
	s = e.transfer(c, "pull", "b", "copy")
	if s.Commits != 1 || ids(e.logOn(c, "copy")) != ids(e.logOn(a, "app")) {
		t.Fatalf("pull: %+v", s)
	}
	if got, _ := os.ReadFile(filepath.Join(copyDB, "customers")); string(got) != "alice\nbob\ncarol\n" {
		t.Fatalf("pulled tree has customers %q", got)
	}

	// The backend-neutral stream (what nodes with different backends use).
	s = e.transfer(a, "push", "c", "app", "--neutral")
	if s.Commits != 3 || ids(e.logOn(c, "app")) != ids(e.logOn(a, "app")) {
		t.Fatalf("neutral push: %+v", s)
	}
	if !sameTree(readTree(t, db), readTree(t, e.pathOn(c, "app.db"))) {
		t.Fatal("the neutrally pushed tree differs")
	}
}

// TestTransferWrongKey: a node handing over a wrong key gets 401 from the
// peer, and nothing changes there.
func TestTransferWrongKey(t *testing.T) {
	a := startServe(t, "a", "127.0.0.1")
	b := startServe(t, "b", "127.0.0.2")
	e := newEnv(t)
	e.addRemote(a)
	e.addRemote(b)
	e.on(a, "init", "app")
	writeFile(t, filepath.Join(e.pathOn(a, "app"), "f"), "x")
	e.commitOn(a, "app", "one")

	cfg, err := os.ReadFile(e.config)
	must(t, err)
	must(t, os.WriteFile(e.config, []byte(strings.Replace(string(cfg), b.key, strings.Repeat("0", len(b.key)), 1)), 0o600))
	e.fails("API key", "--remote", "a", "push", "b", "app")
	if st := b.get("/v1/dots/admin/app/transfer?branch=master", "wrong", nil); st != 401 {
		t.Fatalf("transfer state with a wrong key: status %d, want 401", st)
	}
	var state struct {
		Exists bool     `json:"exists"`
		Have   []string `json:"have"`
	}
	b.get("/v1/dots/admin/app/transfer?branch=master", b.key, &state)
	if state.Exists || len(state.Have) != 0 {
		t.Fatalf("b changed after a refused push: %+v", state)
	}
}
