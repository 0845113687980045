package dump

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/dump/source/rowdiff"
	"github.com/dotmesh-io/dotmesh/backend/dump/source/sourcetest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func diffDB(t *testing.T, b *Guarded, sub string, from, to dotmesh.DatabaseSide, rows bool) *dotmesh.DatabaseDiff {
	t.Helper()
	d, err := b.DiffDatabase(ctx, sub, from, to, dotmesh.RowDiffOptions{Rows: rows, MaxRows: 10})
	if err != nil {
		t.Fatalf("DiffDatabase: %v", err)
	}
	return d
}

// The same changes on every SQL engine: in items, 2's price updated, 3
// deleted, 4 inserted; in the keyless logs ('b', NULL) deleted and ('c',
// 3) inserted; pairs dropped; newt created with one row.
const wantRowDiff = "added table .newt; dropped table .pairs; items:+1-1~1; logs:+1-1~0; newt:+1-0~0; pairs:+0-3~0"

// rowDiffScenario commits the database of subdot sub, changes it, and
// checks every SourceDiffer answer against the live database and against
// a second commit.
func rowDiffScenario(t *testing.T, b *Guarded, br dotmesh.BranchRef, sub, kind string, change func(), want string, check func(*dotmesh.DatabaseDiff)) dotmesh.CommitRef {
	t.Helper()
	c1, _ := commitFacts(t, b, br)
	live := dotmesh.DatabaseSide{Live: &br}
	at := func(c dotmesh.CommitRef) dotmesh.DatabaseSide { return dotmesh.DatabaseSide{Commit: &c} }
	if d := diffDB(t, b, sub, at(c1), live, true); d.Changed || rowdiff.Summary(d) != "" {
		t.Fatalf("unchanged database differs: %s", rowdiff.Summary(d))
	}
	if ch, err := b.SourceChanged(ctx, br, sub, c1); err != nil || ch {
		t.Fatalf("unchanged database: SourceChanged %v, %v", ch, err)
	}
	change()
	if ch, err := b.SourceChanged(ctx, br, sub, c1); err != nil || !ch {
		t.Fatalf("changed database: SourceChanged %v, %v", ch, err)
	}
	if d := diffDB(t, b, sub, at(c1), live, false); !d.Changed || d.Kind != kind || d.Subdot != sub || len(d.Tables) != 0 {
		t.Fatalf("cheap diff against the live database: %+v", d)
	}
	d := diffDB(t, b, sub, at(c1), live, true)
	if got := rowdiff.Summary(d); got != want || !d.Changed {
		t.Fatalf("commit against live:\n got %s\nwant %s", got, want)
	}
	check(d)
	c2, _ := commitFacts(t, b, br)
	d = diffDB(t, b, sub, at(c1), at(c2), true)
	if got := rowdiff.Summary(d); got != want {
		t.Fatalf("commit against commit:\n got %s\nwant %s", got, want)
	}
	check(d)
	if d := diffDB(t, b, sub, at(c1), at(c2), false); !d.Changed {
		t.Fatal("cheap diff of two different commits: unchanged")
	}
	if d := diffDB(t, b, sub, at(c2), at(c2), false); d.Changed {
		t.Fatal("cheap diff of a commit with itself: changed")
	}
	if d := diffDB(t, b, sub, dotmesh.DatabaseSide{}, at(c1), true); !d.Changed || d.Tables[0].Deleted != 0 || d.Tables[0].Inserted == 0 {
		t.Fatalf("from no database: %s", rowdiff.Summary(d))
	}
	for _, c := range []*dotmesh.CommitRef{&c1, nil} {
		subs, err := b.DatabaseSubdots(ctx, br, c)
		if err != nil || !reflect.DeepEqual(subs, map[string]string{sub: kind}) {
			t.Fatalf("DatabaseSubdots(%v): %v, %v", c, subs, err)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(b.b.branchDir(br), tmpPrefix+"*")); len(left) != 0 {
		t.Fatalf("scratch left behind: %v", left)
	}
	unboundScenario(t, b, br, sub, kind, c1, c2, want)
	return c2
}

// unboundScenario: a branch made from c1 has the dump as a plain file
// (sources are not inherited); it is still a database subdot, compared
// as that file, which is made c2's.
func unboundScenario(t *testing.T, b *Guarded, br dotmesh.BranchRef, sub, kind string, c1, c2 dotmesh.CommitRef, want string) {
	t.Helper()
	side := dotmesh.BranchRef{Dot: br.Dot, Branch: "side"}
	if err := b.CreateBranch(ctx, side, &c1); err != nil {
		t.Fatal(err)
	}
	if subs, err := b.DatabaseSubdots(ctx, side, nil); err != nil || !reflect.DeepEqual(subs, map[string]string{sub: kind}) {
		t.Fatalf("DatabaseSubdots of a branch with the dump as a file: %v, %v", subs, err)
	}
	if ch, err := b.SourceChanged(ctx, side, sub, c1); err != nil || ch {
		t.Fatalf("unchanged dump file: SourceChanged %v, %v", ch, err)
	}
	files, _ := filepath.Glob(filepath.Join(b.b.treeDir(side), sub, "*"))
	if len(files) != 1 {
		t.Fatalf("tree of the new branch: %v", files)
	}
	r, err := b.b.openCommitFile(ctx, c2, sub+"/"+filepath.Base(files[0]))
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(r)
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(files[0], data, 0o600); err != nil {
		t.Fatal(err)
	}
	if ch, err := b.SourceChanged(ctx, side, sub, c1); err != nil || !ch {
		t.Fatalf("changed dump file: SourceChanged %v, %v", ch, err)
	}
	if d := diffDB(t, b, sub, dotmesh.DatabaseSide{Commit: &c1}, dotmesh.DatabaseSide{Live: &side}, true); rowdiff.Summary(d) != want {
		t.Fatalf("commit against the dump file:\n got %s\nwant %s", rowdiff.Summary(d), want)
	}
	if err := b.DeleteBranch(ctx, side); err != nil {
		t.Fatal(err)
	}
}

// checkItems checks the listed rows of items: 2 updated in price only,
// with its quote, 3 deleted with its newline and NULL-free note, 4
// inserted; quoted is how the engine writes 2's name.
func checkItems(quoted string) func(*dotmesh.DatabaseDiff) {
	return func(d *dotmesh.DatabaseDiff) {
		it := d.Tables[0]
		if it.Table != "items" || !reflect.DeepEqual(it.Key, []string{"id"}) || len(it.Rows) != 3 {
			panic(fmt.Sprintf("items: %+v", it))
		}
		u, del, ins := it.Rows[0], it.Rows[1], it.Rows[2]
		if u.Kind != dotmesh.RowUpdated || !reflect.DeepEqual(u.Changed, []string{"price"}) || u.Old[1] != quoted || u.New[3] != "NULL" {
			panic(fmt.Sprintf("update: %+v", u))
		}
		if del.Kind != dotmesh.RowDeleted || del.Key[0] != "3" || !strings.Contains(del.Old[3], "line") {
			panic(fmt.Sprintf("delete: %+v", del))
		}
		if ins.Kind != dotmesh.RowInserted || ins.Key[0] != "4" {
			panic(fmt.Sprintf("insert: %+v", ins))
		}
		logs := d.Tables[1]
		if logs.Key != nil || len(logs.Rows) != 2 || logs.Rows[0].Kind != dotmesh.RowDeleted || logs.Rows[0].Old[1] != "NULL" {
			panic(fmt.Sprintf("logs: %+v", logs))
		}
	}
}

func TestRowDiffPostgres(t *testing.T) {
	pg := sourcetest.StartPostgres(t)
	pg.CreateDB(t, "shop")
	pg.SQL(t, "shop", `CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(10,2), note text);
CREATE TABLE pairs (a int, b text, PRIMARY KEY (a, b));
CREATE TABLE logs (msg text, n int);
INSERT INTO items VALUES (1, 'one', 1, 'a'), (2, 'it''s', 2, NULL), (3, 'back\slash', 3, E'new\nline\ttab');
INSERT INTO pairs VALUES (1, 'x'), (1, 'y'), (2, 'x');
INSERT INTO logs VALUES ('a', 1), ('a', 1), ('b', NULL);`)
	b := openTest(t)
	br := newBranch(t, b)
	if err := b.AddSource(ctx, br, "db", dotmesh.SourceSpec{Kind: "postgresql", URL: pg.URL("shop")}); err != nil {
		t.Fatal(err)
	}
	prev := rowDiffScenario(t, b, br, "db", "postgresql", func() {
		pg.SQL(t, "shop", `UPDATE items SET price = 5 WHERE id = 2; DELETE FROM items WHERE id = 3; INSERT INTO items VALUES (4, 'four', 4, 'x');
INSERT INTO logs VALUES ('c', 3); DELETE FROM logs WHERE msg = 'b'; DROP TABLE pairs; CREATE TABLE newt (k text PRIMARY KEY); INSERT INTO newt VALUES ('k');`)
	}, wantRowDiff, checkItems("'it''s'"))
	// A column added and a type changed are schema changes; every row
	// then differs in the new column.
	pg.SQL(t, "shop", "ALTER TABLE items ADD COLUMN extra int DEFAULT 7; ALTER TABLE logs ALTER COLUMN n TYPE bigint;")
	c, _ := commitFacts(t, b, br)
	d := diffDB(t, b, "db", dotmesh.DatabaseSide{Commit: &prev}, dotmesh.DatabaseSide{Commit: &c}, true)
	if got, want := rowdiff.Summary(d), "added column items.extra; changed column logs.n; items:+0-0~3"; got != want {
		t.Fatalf("schema change:\n got %s\nwant %s", got, want)
	}
}

func TestRowDiffMariaDB(t *testing.T) {
	my := sourcetest.StartMariaDB(t)
	my.SQL(t, "", `CREATE DATABASE shop; USE shop;
CREATE TABLE items (id int PRIMARY KEY, name text, price decimal(10,2), note text);
CREATE TABLE pairs (a int, b varchar(10), PRIMARY KEY (a, b));
CREATE TABLE logs (msg text, n int);
INSERT INTO items VALUES (1, 'one', 1, 'a'), (2, 'it''s', 2, NULL), (3, 'back\\slash', 3, 'new\nline\ttab');
INSERT INTO pairs VALUES (1, 'x'), (1, 'y'), (2, 'x');
INSERT INTO logs VALUES ('a', 1), ('a', 1), ('b', NULL);`)
	b := openTest(t)
	br := newBranch(t, b)
	if err := b.AddSource(ctx, br, "db", dotmesh.SourceSpec{Kind: "mysql", URL: my.URL("shop")}); err != nil {
		t.Fatal(err)
	}
	rowDiffScenario(t, b, br, "db", "mysql", func() {
		my.SQL(t, "shop", `UPDATE items SET price = 5 WHERE id = 2; DELETE FROM items WHERE id = 3; INSERT INTO items VALUES (4, 'four', 4, 'x');
INSERT INTO logs VALUES ('c', 3); DELETE FROM logs WHERE msg = 'b'; DROP TABLE pairs; CREATE TABLE newt (k varchar(10) PRIMARY KEY); INSERT INTO newt VALUES ('k');`)
	}, wantRowDiff, checkItems(`'it\'s'`))
}

func TestRowDiffSQLite(t *testing.T) {
	sourcetest.SQLite3(t)
	db := filepath.Join(t.TempDir(), "app.db")
	sourcetest.SQLite(t, db, `CREATE TABLE items (id int PRIMARY KEY, name text, price numeric, note text);
CREATE TABLE pairs (a int, b text, PRIMARY KEY (a, b));
CREATE TABLE logs (msg text, n int);
INSERT INTO items VALUES (1, 'one', 1, 'a'), (2, 'it''s', 2, NULL), (3, 'back\slash', 3, 'new' || char(10) || 'line' || char(9) || 'tab');
INSERT INTO pairs VALUES (1, 'x'), (1, 'y'), (2, 'x');
INSERT INTO logs VALUES ('a', 1), ('a', 1), ('b', NULL);`)
	b := openTest(t)
	br := newBranch(t, b)
	if err := b.AddSource(ctx, br, "app", dotmesh.SourceSpec{Kind: "sqlite", URL: "sqlite://" + db}); err != nil {
		t.Fatal(err)
	}
	rowDiffScenario(t, b, br, "app", "sqlite", func() {
		sourcetest.SQLite(t, db, `UPDATE items SET price = 5 WHERE id = 2; DELETE FROM items WHERE id = 3; INSERT INTO items VALUES (4, 'four', 4, 'x');
INSERT INTO logs VALUES ('c', 3); DELETE FROM logs WHERE msg = 'b'; DROP TABLE pairs; CREATE TABLE newt (k text PRIMARY KEY); INSERT INTO newt VALUES ('k');`)
	}, wantRowDiff, checkItems("'it''s'"))
}

func TestRowDiffRedis(t *testing.T) {
	rd := sourcetest.StartRedis(t)
	rd.Cmd(t, "SET a 1\nSET q \"it's\"\nRPUSH queue a b c\nHSET h f1 v1\nSADD s x y\nZADD z 1 one\nSELECT 2\nSET other x\n")
	b := openTest(t)
	br := newBranch(t, b)
	if err := b.AddSource(ctx, br, "cache", dotmesh.SourceSpec{Kind: "redis", URL: rd.URL()}); err != nil {
		t.Fatal(err)
	}
	rowDiffScenario(t, b, br, "cache", "redis", func() {
		rd.Cmd(t, "SET a 2\nDEL queue\nHSET h f2 v2\nSADD s w\nSET new 1\nPEXPIREAT q 4102444800000\nSELECT 2\nDEL other\n")
	}, "db0:+1-1~4; db2:+0-1~0", func(d *dotmesh.DatabaseDiff) {
		var got []string
		for _, r := range d.Tables[0].Rows {
			got = append(got, r.Kind+" "+r.Key[0]+" "+strings.Join(r.Changed, ","))
		}
		if want := "updated 'a' value; updated 'h' value; inserted 'new' ; updated 'q' expires; deleted 'queue' ; updated 's' value"; strings.Join(got, "; ") != want {
			panic(fmt.Sprintf("rows:\n got %s\nwant %s", strings.Join(got, "; "), want))
		}
	})
}
