package dump

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/dump/source"
	"github.com/dotmesh-io/dotmesh/backend/dump/source/sourcetest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// TestSQLiteSource: commit, change, commit, rollback restores the first
// state; the same state stores nothing new; a missing file fails the
// commit; the lifecycle creates and drops the file.
func TestSQLiteSource(t *testing.T) {
	sourcetest.SQLite3(t)
	db := filepath.Join(t.TempDir(), "app.db")
	sourcetest.SQLite(t, db, `CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM g WHERE i < 20000)
INSERT INTO notes SELECT i, 'note ' || i || ' ' || hex(randomblob(16)) FROM g;`)
	table := func() string { return sourcetest.SQLite(t, db, "SELECT * FROM notes ORDER BY id;") }

	b := openTest(t)
	br := newBranch(t, b)
	if err := b.AddSource(ctx, br, "notes", dotmesh.SourceSpec{Kind: "sqlite", URL: "sqlite://" + db}); err != nil {
		t.Fatal(err)
	}
	first := table()
	c1, f1 := commitFacts(t, b, br)
	size := factInt(t, f1, "source.notes.dump_bytes")
	if !strings.Contains(f1["source.notes.tool"], "sqlite3") || f1["source.notes.snapshot_time"] == "" {
		t.Fatalf("facts: %v", f1)
	}
	if _, f := commitFacts(t, b, br); factInt(t, f, "new_bytes_stored")*100 > size {
		t.Fatalf("unchanged re-commit stored %s of %d bytes", f["new_bytes_stored"], size)
	}
	sourcetest.SQLite(t, db, "UPDATE notes SET body = 'changed' WHERE id < 100; DELETE FROM notes WHERE id > 19000; CREATE TABLE later (x);")
	if u, err := b.Usage(ctx, br, &c1); err != nil || !u.Dirty {
		t.Fatalf("changed database: %+v %v", u, err)
	}
	commitFacts(t, b, br)
	if err := b.Rollback(ctx, br, c1); err != nil {
		t.Fatal(err)
	}
	if table() != first {
		t.Fatal("rollback did not restore the rows")
	}
	if n := sourcetest.SQLite(t, db, "SELECT count(*) FROM sqlite_master WHERE name = 'later';"); n != "0" {
		t.Fatal("rollback kept a table made after the commit")
	}

	bad := newBranch(t, b)
	if err := b.AddSource(ctx, bad, "x", dotmesh.SourceSpec{Kind: "sqlite", URL: "sqlite://" + db + ".missing"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Commit(ctx, dotmesh.CommitRef{BranchRef: bad, ID: dotmesh.NewCommitID()}); err == nil || !strings.Contains(err.Error(), "source x") {
		t.Fatalf("commit of a missing database: %v", err)
	}

	for _, a := range []string{dotmesh.SourceDeactivate, dotmesh.SourceCollectGarbage} {
		if err := b.SourceLifecycle(ctx, br, "notes", a); err != nil {
			t.Fatal(err)
		}
	}
	if ok, _ := (&sqliteProbe{db}).exists(); ok {
		t.Fatal("collect-garbage kept the file")
	}
	if err := b.SourceLifecycle(ctx, br, "notes", dotmesh.SourceActivate); err != nil {
		t.Fatal(err)
	}
	if err := b.Rollback(ctx, br, c1); err != nil {
		t.Fatal(err)
	}
	if table() != first {
		t.Fatal("rollback into a re-activated database did not restore the rows")
	}
}

type sqliteProbe struct{ path string }

func (p *sqliteProbe) exists() (bool, error) {
	_, err := os.Stat(p.path)
	return err == nil, nil
}

// TestSQLiteFingerprintUsage: once the database's files are older than
// the racy window, an unchanged database is clean and committed without
// a dump; a write makes it dirty at once (the fresh times vouch for
// nothing) and stays a change after the window; undoing it is clean
// again, from a dump.
func TestSQLiteFingerprintUsage(t *testing.T) {
	sourcetest.SQLite3(t)
	db := filepath.Join(t.TempDir(), "app.db")
	sourcetest.SQLite(t, db, `CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
INSERT INTO notes VALUES (1, 'one'), (2, 'two');`)
	b := openTest(t)
	br := newBranch(t, b)
	if err := b.AddSource(ctx, br, "notes", dotmesh.SourceSpec{Kind: "sqlite", URL: "sqlite://" + db}); err != nil {
		t.Fatal(err)
	}
	racy := func() { time.Sleep(2100 * time.Millisecond) }
	racy()
	c1, _ := commitFacts(t, b, br)
	if st := b.b.readSourceStates(br)["notes"]; st.Fingerprint == "" {
		t.Fatal("a commit of a settled database recorded no fingerprint")
	}
	usage := func() dotmesh.Usage { t.Helper(); return usageAt(t, b, br, c1) }
	if u := usage(); u.Dirty {
		t.Fatalf("unchanged database is dirty: %+v", u)
	}
	if _, f := commitFacts(t, b, br); f["source.notes.unchanged"] != "fingerprint" {
		t.Fatalf("unchanged database was dumped: %v", f)
	}
	sourcetest.SQLite(t, db, "UPDATE notes SET body = 'uno' WHERE id = 1;")
	if fp, err := sqliteFingerprint(t, db); err != nil || fp != "" {
		t.Fatalf("fingerprint of a database written just now: %q %v", fp, err)
	}
	if u := usage(); !u.Dirty {
		t.Fatal("a write just now is not a change")
	}
	racy()
	if u := usage(); !u.Dirty {
		t.Fatal("a write is not a change once its times settled")
	}
	if _, f := commitFacts(t, b, br); f["source.notes.unchanged"] != "" {
		t.Fatalf("commit after a write skipped the dump: %v", f)
	}
	c1, _ = commitFacts(t, b, br)
	sourcetest.SQLite(t, db, "UPDATE notes SET body = 'one' WHERE id = 1; UPDATE notes SET body = 'uno' WHERE id = 1;")
	if u := usage(); u.Dirty {
		t.Fatalf("a write that changed nothing is dirty: %+v", u)
	}
	// A rollback journal with content (a write in progress) vouches for
	// nothing: the dump decides.
	racy()
	if err := os.WriteFile(db+"-journal", []byte("in progress"), 0o644); err != nil {
		t.Fatal(err)
	}
	if fp, err := sqliteFingerprint(t, db); err != nil || fp != "" {
		t.Fatalf("fingerprint with a journal: %q %v", fp, err)
	}
}

func sqliteFingerprint(t *testing.T, db string) (string, error) {
	t.Helper()
	c, err := source.Parse("sqlite", "sqlite://"+db)
	if err != nil {
		t.Fatal(err)
	}
	drv, err := source.Open(c)
	if err != nil {
		t.Fatal(err)
	}
	return drv.(source.Fingerprinter).Fingerprint(ctx)
}
