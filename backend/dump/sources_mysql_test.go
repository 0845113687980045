package dump

import (
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/dump/source/sourcetest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// TestMariaDBSource: commit, change, commit, rollback restores the table;
// the same data stores nothing new; a wrong database fails the commit.
func TestMariaDBSource(t *testing.T) {
	my := sourcetest.StartMariaDB(t)
	my.SQL(t, "", `CREATE DATABASE shop; USE shop;
CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(100), price DECIMAL(10,2)) ENGINE=InnoDB;
SET SESSION max_recursive_iterations = 100000;
INSERT INTO items WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM g WHERE i < 10000) SELECT i, CONCAT('item ', i, REPEAT('x', 30)), i * 1.5 FROM g;`)
	table := func() string { return my.SQL(t, "shop", "SELECT * FROM items ORDER BY id;") }

	b := openTest(t)
	br := newBranch(t, b)
	if err := b.AddSource(ctx, br, "db", dotmesh.SourceSpec{Kind: "mysql", URL: my.URL("shop")}); err != nil {
		t.Fatal(err)
	}
	first := table()
	c1, f1 := commitFacts(t, b, br)
	if !strings.Contains(f1["source.db.server"], "MariaDB") || f1["source.db.tool"] == "" {
		t.Fatalf("facts: %v", f1)
	}
	size := factInt(t, f1, "source.db.dump_bytes")
	if _, f := commitFacts(t, b, br); factInt(t, f, "new_bytes_stored")*100 > size {
		t.Fatalf("unchanged re-commit stored %s of %d bytes", f["new_bytes_stored"], size)
	}
	if u, err := b.Usage(ctx, br, &c1); err != nil || u.Dirty {
		t.Fatalf("unchanged: %+v %v", u, err)
	}
	my.SQL(t, "shop", "UPDATE items SET price = 0 WHERE id < 50; DELETE FROM items WHERE id > 9000; CREATE TABLE later (x INT);")
	if u, err := b.Usage(ctx, br, &c1); err != nil || !u.Dirty {
		t.Fatalf("changed: %+v %v", u, err)
	}
	commitFacts(t, b, br)
	if err := b.Rollback(ctx, br, c1); err != nil {
		t.Fatal(err)
	}
	if table() != first {
		t.Fatal("rollback did not restore the table")
	}
	if n := my.SQL(t, "", "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA='shop' AND TABLE_NAME='later';"); n != "0" {
		t.Fatal("rollback kept a table made after the commit")
	}
	bad := newBranch(t, b)
	if err := b.AddSource(ctx, bad, "db", dotmesh.SourceSpec{Kind: "mysql", URL: my.URL("nosuch")}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Commit(ctx, dotmesh.CommitRef{BranchRef: bad, ID: dotmesh.NewCommitID()}); err == nil || !strings.Contains(err.Error(), "source db") || !strings.Contains(err.Error(), "nosuch") {
		t.Fatalf("commit of a missing database: %v", err)
	}
}
