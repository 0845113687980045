//go:build !dmlight

// The light build (dmlight) leaves the neutral transfer to dm-node: this file's
// tests build only in the full one.

package cli

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// sqliteRun runs a script against a database file with the sqlite3 shell.
func sqliteRun(t *testing.T, db, script string) string {
	t.Helper()
	bin, err := exec.LookPath("sqlite3")
	if err != nil {
		t.Fatal("sqlite3 is not installed: install Debian's sqlite3 package (make test does)")
	}
	cmd := exec.Command(bin, "-batch", db)
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite3 %s: %v: %s", db, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestSourceBindingsTravel: the bindings of a dot's sources travel with
// push and clone (natively and in the neutral stream) as templates without
// passwords; `dm clone --bind --map` binds them on the receiving side and
// loads the dumps, `dm source bind --all` binds a clone made without it,
// leaves bound subdots alone, and refuses a --map of an unknown subdot
// before binding anything.
func TestSourceBindingsTravel(t *testing.T) {
	e := withPeer(t)
	dir := t.TempDir()
	orig, other := filepath.Join(dir, "orig.db"), filepath.Join(dir, "other.db")
	sqliteRun(t, orig, "CREATE TABLE t (x TEXT); INSERT INTO t VALUES ('from the origin');")
	sqliteRun(t, other, "CREATE TABLE u (y TEXT); INSERT INTO u VALUES ('other');")

	mustRun(t, e, "init", "app")
	mustRun(t, e, "source", "add", "app.db", "sqlite", "sqlite://"+orig)
	mustRun(t, e, "source", "add", "app.aux", "sqlite", "sqlite://"+other)
	mustRun(t, e, "commit", "-m", "with sources")
	if show := mustRun(t, e, "show", "--dot", "app"); !strings.Contains(show, "source.db.url") || !strings.Contains(show, "sqlite://"+orig) || !strings.Contains(show, "sources.snapshot_spread_ms") {
		t.Fatalf("dm show lists no template or spread:\n%s", show)
	}
	mustRun(t, e, "push", "b", "app")

	// --map of a subdot without a template: refused, nothing cloned bound.
	bad := runDM(t, e, "clone", "b", "app", "--local-name", "nope", "--bind", "--map", "nosuch=sqlite:///x.db")
	if bad.code == 0 || !strings.Contains(bad.err, "no source template for subdot nosuch") {
		t.Fatalf("clone --bind --map nosuch: %+v", bad)
	}
	if got := mustRun(t, e, "source", "list", "nope", "-H"); got != "" {
		t.Fatalf("a refused --map bound %q", got)
	}

	// clone --bind, in the neutral stream: bound and loaded.
	copyDB := filepath.Join(dir, "copy.db")
	out := mustRun(t, e, "clone", "b", "app", "--local-name", "copy", "--neutral", "--bind", "--map", "db=sqlite://"+copyDB)
	if !strings.Contains(out, "db: bound to sqlite sqlite://"+copyDB) || !strings.Contains(out, "aux: bound to sqlite sqlite://"+other) {
		t.Fatalf("clone --bind printed:\n%s", out)
	}
	if got := sqliteRun(t, copyDB, "SELECT x FROM t;"); got != "from the origin" {
		t.Fatalf("the clone's database holds %q", got)
	}

	// A clone without --bind, bound afterwards; again: bound already.
	mustRun(t, e, "clone", "b", "app", "--local-name", "later")
	laterDB := filepath.Join(dir, "later.db")
	out = mustRun(t, e, "source", "bind", "--all", "--dot", "later", "--map", "db=sqlite://"+laterDB, "--map", "aux=sqlite://"+filepath.Join(dir, "later-aux.db"))
	if !strings.Contains(out, "db: bound to sqlite sqlite://"+laterDB) {
		t.Fatalf("source bind --all printed:\n%s", out)
	}
	mustRun(t, e, "reset", "--hard", "HEAD", "--dot", "later")
	if got := sqliteRun(t, laterDB, "SELECT x FROM t;"); got != "from the origin" {
		t.Fatalf("the bound database holds %q after a reset", got)
	}
	if out := mustRun(t, e, "source", "bind", "--all", "--dot", "later"); !strings.Contains(out, "db: bound already") {
		t.Fatalf("binding again printed:\n%s", out)
	}
	if r := runDM(t, e, "source", "bind", "--dot", "later"); r.code == 0 || !strings.Contains(r.err, "--all") {
		t.Fatalf("bind without --all: %+v", r)
	}
	if r := runDM(t, e, "source", "bind", "--all", "--map", "db"); r.code == 0 || !strings.Contains(r.err, "want SUBDOT=URL") {
		t.Fatalf("bind --map without a URL: %+v", r)
	}
}
