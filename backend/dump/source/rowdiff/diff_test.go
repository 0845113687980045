package rowdiff

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// seeds are real dumps of one database before and after the same
// changes (testdata/README): an update of items 2 (price), a delete of 3,
// an insert of 4, a column extra added (so every items row changes), a
// keyless row swapped in logs, table pairs dropped and newt added.
var seeds = []struct{ kind, old, new string }{
	{PostgreSQL, "pg1.sql", "pg2.sql"},
	{MySQL, "mysql1.sql", "mysql2.sql"},
	{SQLite, "sqlite1.sql", "sqlite2.sql"},
}

func read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func diffBytes(t testing.TB, kind string, old, new []byte, opts Options) *dotmesh.DatabaseDiff {
	t.Helper()
	var a, b *bytes.Reader
	if old != nil {
		a = bytes.NewReader(old)
	}
	if new != nil {
		b = bytes.NewReader(new)
	}
	d, err := Diff(kind, readerOrNil(a), readerOrNil(b), opts)
	if err != nil {
		t.Fatalf("%s: %v", kind, err)
	}
	return d
}

func readerOrNil(r *bytes.Reader) interface{ Read([]byte) (int, error) } {
	if r == nil {
		return nil
	}
	return r
}

func TestSeedDiffs(t *testing.T) {
	want := "added column items.extra; added table .newt; dropped table .pairs; items:+1-1~3; logs:+1-1~0; pairs:+0-3~0"
	for _, s := range seeds {
		d := diffBytes(t, s.kind, read(t, s.old), read(t, s.new), Options{MaxRows: 10})
		got := Summary(d)
		if got != want {
			t.Errorf("%s:\n got %s\nwant %s", s.kind, got, want)
		}
		if !d.Changed || d.Kind != s.kind {
			t.Errorf("%s: changed %v kind %q", s.kind, d.Changed, d.Kind)
		}
		items := d.Tables[0]
		if len(items.Rows) != 5 || items.RowsTruncated {
			t.Fatalf("%s: items rows %+v", s.kind, items.Rows)
		}
		upd := items.Rows[1]
		if upd.Kind != dotmesh.RowUpdated || upd.Key[0] != "2" || strings.Join(upd.Changed, ",") != "price,extra" {
			t.Errorf("%s: update of 2: %+v", s.kind, upd)
		}
		if del := items.Rows[2]; del.Kind != dotmesh.RowDeleted || del.Old[3] == "NULL" || !strings.Contains(del.Old[3], `\n`) && !strings.Contains(del.Old[3], "char(10)") {
			t.Errorf("%s: delete of 3: %+v", s.kind, del)
		}
		if items.Rows[0].Old[3] != "NULL" {
			t.Errorf("%s: NULL shown as %q", s.kind, items.Rows[0].Old[3])
		}
		// Values are the engine's own literals.
		quoted := map[string]string{PostgreSQL: `'it''s'`, MySQL: `'it\'s'`, SQLite: `'it''s'`}[s.kind]
		if upd.Old[1] != quoted {
			t.Errorf("%s: quote shown as %s, want %s", s.kind, upd.Old[1], quoted)
		}
		// The same dump twice: nothing.
		if d := diffBytes(t, s.kind, read(t, s.old), read(t, s.old), Options{MaxRows: 10}); d.Changed || len(d.Tables)+len(d.Schema) != 0 {
			t.Errorf("%s: a dump against itself: %s", s.kind, Summary(d))
		}
		// Counts only.
		if d := diffBytes(t, s.kind, read(t, s.old), read(t, s.new), Options{}); Summary(d) != want || len(d.Tables[0].Rows) != 0 || d.Tables[0].RowsTruncated {
			t.Errorf("%s: counts only: %s, rows %v", s.kind, Summary(d), d.Tables[0].Rows)
		}
		// A limit of 2 rows: the two smallest keys.
		if d := diffBytes(t, s.kind, read(t, s.old), read(t, s.new), Options{MaxRows: 2}); len(d.Tables[0].Rows) != 2 || !d.Tables[0].RowsTruncated || d.Tables[0].Rows[1].Key[0] != "2" {
			t.Errorf("%s: two rows: %+v", s.kind, d.Tables[0].Rows)
		}
		// No database before: every table added, every row inserted.
		d = diffBytes(t, s.kind, nil, read(t, s.old), Options{MaxRows: 1})
		if got := Summary(d); !strings.Contains(got, "items:+4-0~0") || !strings.Contains(got, "added table .items") || !strings.Contains(got, "logs:+3-0~0") {
			t.Errorf("%s: from nothing: %s", s.kind, got)
		}
		d = diffBytes(t, s.kind, read(t, s.new), nil, Options{})
		if got := Summary(d); !strings.Contains(got, "items:+0-4~0") || !strings.Contains(got, "dropped table .newt") {
			t.Errorf("%s: to nothing: %s", s.kind, got)
		}
	}
}

func TestRedisSeedDiff(t *testing.T) {
	d := diffBytes(t, Redis, read(t, "redis1.rdb"), read(t, "redis2.rdb"), Options{MaxRows: 10})
	if got, want := Summary(d), "db0:+1-1~4; db3:+0-1~0"; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	var kinds []string
	for _, r := range d.Tables[0].Rows {
		kinds = append(kinds, r.Kind+" "+r.Key[0]+" "+strings.Join(r.Changed, ","))
	}
	if got, want := strings.Join(kinds, "; "), "updated 'a' value; updated 'h' value; inserted 'new' ; deleted 'queue' ; updated 's2' value; updated 'temp' expires"; got != want {
		t.Errorf("rows:\n got %s\nwant %s", got, want)
	}
	if v := d.Tables[0].Rows[4].New[2]; v != "{'w', 'x', 'y', 'z'}" {
		t.Errorf("set shown as %s", v)
	}
}

// TestSpill: with no memory budget, held tables and changed rows go
// through temporary files, which are removed, and the result is the same.
func TestSpill(t *testing.T) {
	for _, s := range seeds {
		dir := t.TempDir()
		want := Summary(diffBytes(t, s.kind, read(t, s.old), read(t, s.new), Options{MaxRows: 3}))
		got := Summary(diffBytes(t, s.kind, read(t, s.old), read(t, s.new), Options{MaxRows: 3, MemoryBudget: 1, TempDir: dir}))
		if got != want {
			t.Errorf("%s spilled: %s, in memory: %s", s.kind, got, want)
		}
		if left, _ := os.ReadDir(dir); len(left) != 0 {
			t.Errorf("%s: spill files left: %v", s.kind, left)
		}
	}
}

// TestHashLimit: an unsorted table beyond MaxHashRows fails, naming it;
// items, merged by its integer key, needs no hash.
func TestHashLimit(t *testing.T) {
	defer func(n int) { MaxHashRows = n }(MaxHashRows)
	MaxHashRows = 2
	_, err := Diff(MySQL, bytes.NewReader(read(t, "mysql1.sql")), bytes.NewReader(read(t, "mysql2.sql")), Options{})
	if !errors.Is(err, dotmesh.ErrNotSupported) || !strings.Contains(err.Error(), "table pairs") {
		t.Fatalf("got %v", err)
	}
}

// TestKeyOrder: rows of an integer-keyed MariaDB table out of key order
// are refused (the merge by key would be wrong); keys compare by value.
func TestKeyOrder(t *testing.T) {
	my := read(t, "mysql1.sql")
	swapped := bytes.Replace(my, []byte("(10,'ten'"), []byte("(0,'ten'"), 1)
	_, err := Diff(MySQL, bytes.NewReader(swapped), bytes.NewReader(my), Options{})
	if !errors.Is(err, dotmesh.ErrCorrupt) || !strings.Contains(err.Error(), "key order") || !strings.Contains(err.Error(), "table items") {
		t.Errorf("keys out of order: %v", err)
	}
	for _, c := range []struct {
		a, b string
		want int
	}{{"2", "10", -1}, {"-2", "1", -1}, {"-10", "-2", -1}, {"18446744073709551615", "9223372036854775807", 1}, {"007", "7", 0}, {"0", "-0", 1}} {
		if got := compareInts(c.a, c.b); got*c.want < 0 || (got == 0) != (c.want == 0) {
			t.Errorf("compareInts(%s, %s) = %d, want the sign of %d", c.a, c.b, got, c.want)
		}
	}
}

// TestBadDumps: cut or disordered dumps fail with the table or line.
func TestBadDumps(t *testing.T) {
	pg := read(t, "pg1.sql")
	cut := pg[:bytes.Index(pg, []byte("2\tit's"))]
	_, err := Diff(PostgreSQL, bytes.NewReader(cut), bytes.NewReader(pg), Options{})
	if !errors.Is(err, dotmesh.ErrCorrupt) || !strings.Contains(err.Error(), "table items") {
		t.Errorf("cut pg dump: %v", err)
	}
	swapped := bytes.Replace(pg, []byte("1\tone\t1.50\t\\N\n2\tit's\t2.00\ttab\\there\n"), []byte("2\tit's\t2.00\ttab\\there\n1\tone\t1.50\t\\N\n"), 1)
	_, err = Diff(PostgreSQL, bytes.NewReader(swapped), bytes.NewReader(pg), Options{})
	if !errors.Is(err, dotmesh.ErrCorrupt) || !strings.Contains(err.Error(), "out of order") {
		t.Errorf("unsorted pg dump: %v", err)
	}
	my := read(t, "mysql1.sql")
	cut = my[:bytes.Index(my, []byte("(3,'back"))+5]
	_, err = Diff(MySQL, bytes.NewReader(my), bytes.NewReader(cut), Options{})
	if !errors.Is(err, dotmesh.ErrCorrupt) || !strings.Contains(err.Error(), "line ") {
		t.Errorf("cut mysql dump: %v", err)
	}
	rdb := read(t, "redis1.rdb")
	_, err = Diff(Redis, bytes.NewReader(rdb[:len(rdb)-12]), bytes.NewReader(rdb), Options{})
	if !errors.Is(err, dotmesh.ErrCorrupt) {
		t.Errorf("cut redis dump: %v", err)
	}
	if _, err := Diff("files", nil, nil, Options{}); !errors.Is(err, dotmesh.ErrNotSupported) {
		t.Errorf("files: %v", err)
	}
}

// TestAutoIncrement: MariaDB's AUTO_INCREMENT table option moves with
// inserts and is no schema change.
func TestAutoIncrement(t *testing.T) {
	dump := func(next, row string) []byte {
		return []byte("CREATE TABLE `t` (\n  `id` int(11) NOT NULL AUTO_INCREMENT,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB AUTO_INCREMENT=" + next + " DEFAULT CHARSET=latin1;\n" + row)
	}
	d := diffBytes(t, MySQL, dump("2", "INSERT INTO `t` VALUES (1);\n"), dump("3", "INSERT INTO `t` VALUES (1);\nINSERT INTO `t` VALUES (2);\n"), Options{})
	if got := Summary(d); got != "t:+1-0~0" {
		t.Fatalf("got %s", got)
	}
}

// TestPostgresSyntax: schemas, quoted names, dollar-quoted bodies with
// semicolons, comments and COPY escapes in a hand-written plain dump.
func TestPostgresSyntax(t *testing.T) {
	dump := func(body, rows string) []byte {
		return []byte(`-- a comment; with a semicolon
CREATE SCHEMA app;
CREATE FUNCTION app.f() RETURNS int LANGUAGE sql AS $_$ SELECT 1; $_$;
CREATE FUNCTION public.g() RETURNS text LANGUAGE plpgsql AS $$ BEGIN RETURN '` + body + `'; END $$;
CREATE TABLE app."My Table" (
    "the key" integer NOT NULL,
    val text DEFAULT 'a;b'::text
);
COPY app."My Table" ("the key", val) FROM stdin;
` + rows + `\.
ALTER TABLE ONLY app."My Table"
    ADD CONSTRAINT "My Table_pkey" PRIMARY KEY ("the key");
`)
	}
	d := diffBytes(t, PostgreSQL, dump("x;y", "1\ta\\tb\n2\t\\N\n"), dump("x;z", "1\ta\\tb\n2\tnew\\\\\n3\t\\\\N\n"), Options{MaxRows: 5})
	if got, want := Summary(d), "changed function .g; app.My Table:+1-0~1"; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	tab := d.Tables[0]
	if strings.Join(tab.Key, ",") != "the key" || tab.Rows[0].Old[1] != "NULL" || tab.Rows[0].New[1] != `E'new\\'` || tab.Rows[1].New[1] != `E'\\N'` {
		t.Fatalf("rows: %+v", tab)
	}
}
