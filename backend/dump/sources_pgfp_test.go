package dump

import (
	"os"
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/dump/source/sourcetest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// TestPostgresFingerprintUsage: Usage trusts a fingerprint recorded with
// the commit only while nothing changed; sequences advanced without WAL,
// updates and unlogged tables all make the database dirty.
func TestPostgresFingerprintUsage(t *testing.T) {
	pg := sourcetest.StartPostgres(t)
	pg.CreateDB(t, "shop")
	pg.SQL(t, "shop", `CREATE TABLE items (id serial PRIMARY KEY, name text);
INSERT INTO items (name) SELECT 'item ' || g FROM generate_series(1, 1000) g;
CREATE SEQUENCE counter;`)
	b := openTest(t)
	br := newBranch(t, b)
	if err := b.AddSource(ctx, br, "db", dotmesh.SourceSpec{Kind: "postgresql", URL: pg.URL("shop")}); err != nil {
		t.Fatal(err)
	}
	pg.SQL(t, "shop", "SELECT nextval('counter');")
	c1, _ := commitFacts(t, b, br)
	states := b.b.readSourceStates(br)
	if st, ok := states["db"]; !ok || st.Fingerprint == "" || st.Content == "" {
		t.Fatalf("commit recorded no fingerprint: %v", states)
	}
	if st, _ := os.Stat(b.b.sourceStatesPath(br)); st.Mode().Perm() != 0o600 {
		t.Fatalf("states file mode %v", st.Mode())
	}
	usage := func() dotmesh.Usage { t.Helper(); return usageAt(t, b, br, c1) }
	if u := usage(); u.Dirty {
		t.Fatalf("unchanged database is dirty: %+v", u)
	}
	// nextval logs WAL only every 32 values: the sequence must still count.
	pg.SQL(t, "shop", "SELECT nextval('counter');")
	if u := usage(); !u.Dirty {
		t.Fatal("a sequence advanced by nextval is not a change")
	}
	pg.SQL(t, "shop", "SELECT setval('counter', 1);") // back to the committed state
	if u := usage(); u.Dirty {
		t.Fatalf("database back in its committed state is dirty: %+v", u)
	}
	if u := usage(); u.Dirty { // now from the fingerprint learnt by the last Usage
		t.Fatalf("database back in its committed state is dirty: %+v", u)
	}
	// An unchanged database is committed without a dump; a changed one not.
	_, f := commitFacts(t, b, br)
	if f["source.db.unchanged"] != "fingerprint" || f["source.db.tool"] == "" || f["source.db.dump_bytes"] == "0" {
		t.Fatalf("unchanged commit dumped: %v", f)
	}
	pg.SQL(t, "shop", "SELECT nextval('counter');")
	if _, f := commitFacts(t, b, br); f["source.db.unchanged"] != "" {
		t.Fatalf("commit after nextval skipped the dump: %v", f)
	}
	pg.SQL(t, "shop", "SELECT setval('counter', 1);")
	if _, f := commitFacts(t, b, br); f["source.db.unchanged"] != "" {
		t.Fatalf("commit after setval skipped the dump: %v", f)
	}
	pg.SQL(t, "shop", "UPDATE items SET name = 'changed' WHERE id = 5;")
	if u := usage(); !u.Dirty || u.DirtyBytes == 0 {
		t.Fatalf("an update is not a change: %+v", u)
	}
	pg.SQL(t, "shop", "UPDATE items SET name = 'item 5' WHERE id = 5;")
	if u := usage(); u.Dirty {
		t.Fatalf("update undone, still dirty: %+v", u)
	}
	// Unlogged tables change without WAL: no fingerprint, every Usage dumps.
	pg.SQL(t, "shop", "CREATE UNLOGGED TABLE scratch (x int);")
	c2, _ := commitFacts(t, b, br)
	if st := b.b.readSourceStates(br)["db"]; st.Fingerprint != "" {
		t.Fatalf("fingerprint %q with an unlogged table", st.Fingerprint)
	}
	pg.SQL(t, "shop", "INSERT INTO scratch VALUES (1);")
	if u, err := b.Usage(ctx, br, &c2); err != nil || !u.Dirty {
		t.Fatalf("a row in an unlogged table is not a change: %+v %v", u, err)
	}
}
