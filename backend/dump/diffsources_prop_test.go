package dump

import (
	"fmt"
	"io"
	"math/rand"
	"strconv"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/dump/source/rowdiff"
	"github.com/dotmesh-io/dotmesh/backend/dump/source/sourcetest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// pgText is a random text value, often one that needs quoting or
// escaping in a dump, as a PostgreSQL literal.
func pgText(r *rand.Rand) string {
	vals := []string{"NULL", "''", "'plain'", "'it''s'", `E'tab\there'`, `E'back\\slash'`, `E'new\nline'`, "'é ü'", `E'\\N'`, "'  spaces  '"}
	if r.Intn(3) == 0 {
		return vals[r.Intn(len(vals))]
	}
	return "'v" + strconv.Itoa(r.Intn(50)) + "'"
}

func pgInt(r *rand.Rand) string {
	if r.Intn(8) == 0 {
		return "NULL"
	}
	return strconv.Itoa(r.Intn(1000) - 100)
}

// randomChanges applies n seeded inserts, updates and deletes to tables
// kv (key id), comp (key a, b) and bag (no key, duplicate rows).
func randomChanges(t *testing.T, pg *sourcetest.Postgres, db string, r *rand.Rand, n int) {
	var sql strings.Builder
	for i := 0; i < n; i++ {
		id := r.Intn(400)
		a, bb := r.Intn(20), "k"+strconv.Itoa(r.Intn(20))
		switch r.Intn(9) {
		case 0:
			fmt.Fprintf(&sql, "INSERT INTO kv VALUES (%d, %s, %s) ON CONFLICT DO NOTHING;\n", id, pgText(r), pgInt(r))
		case 1:
			fmt.Fprintf(&sql, "UPDATE kv SET v = %s WHERE id = %d;\n", pgText(r), id)
		case 2:
			fmt.Fprintf(&sql, "UPDATE kv SET n = %s WHERE id = %d;\n", pgInt(r), id)
		case 3:
			fmt.Fprintf(&sql, "DELETE FROM kv WHERE id = %d;\n", id)
		case 4:
			fmt.Fprintf(&sql, "INSERT INTO comp VALUES (%d, '%s', %s) ON CONFLICT DO NOTHING;\n", a, bb, pgText(r))
		case 5:
			fmt.Fprintf(&sql, "UPDATE comp SET v = %s WHERE a = %d AND b = '%s';\n", pgText(r), a, bb)
		case 6:
			fmt.Fprintf(&sql, "DELETE FROM comp WHERE a = %d AND b = '%s';\n", a, bb)
		case 7:
			fmt.Fprintf(&sql, "INSERT INTO bag VALUES (%d, %s);\n", r.Intn(10), pgText(r))
		case 8:
			fmt.Fprintf(&sql, "DELETE FROM bag WHERE ctid IN (SELECT ctid FROM bag WHERE x = %d LIMIT 1);\n", r.Intn(10))
		}
	}
	pg.SQL(t, db, sql.String())
}

// TestRowDiffPostgresProperty: after seeded random inserts, updates and
// deletes between two commits, the row counts of the diff equal what SQL
// says of the two commits restored side by side (the old one's schema
// renamed): key joins for keyed tables, EXCEPT ALL both ways for the
// keyless one.
func TestRowDiffPostgresProperty(t *testing.T) {
	pg := sourcetest.StartPostgres(t)
	pg.CreateDB(t, "live")
	pg.SQL(t, "live", `CREATE TABLE kv (id int PRIMARY KEY, v text, n int);
CREATE TABLE comp (a int, b text, v text, PRIMARY KEY (a, b));
CREATE TABLE bag (x int, y text);`)
	b := openTest(t)
	br := newBranch(t, b)
	if err := b.AddSource(ctx, br, "db", dotmesh.SourceSpec{Kind: "postgresql", URL: pg.URL("live")}); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewSource(18))
	randomChanges(t, pg, "live", r, 1500)
	prev, _ := commitFacts(t, b, br)
	dumpOf := func(c dotmesh.CommitRef) string {
		f, err := b.b.openCommitFile(ctx, c, "db/postgresql.sql")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		data, err := io.ReadAll(f)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	for round := 0; round < 4; round++ {
		randomChanges(t, pg, "live", r, 100+r.Intn(400))
		cur, _ := commitFacts(t, b, br)
		d, err := b.DiffDatabase(ctx, "db", dotmesh.DatabaseSide{Commit: &prev}, dotmesh.DatabaseSide{Commit: &cur}, dotmesh.RowDiffOptions{Rows: true, MaxRows: 5})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, td := range d.Tables {
			got[td.Table] = fmt.Sprintf("+%d-%d~%d", td.Inserted, td.Deleted, td.Updated)
		}
		db := "cmp" + strconv.Itoa(round)
		pg.CreateDB(t, db)
		pg.SQL(t, db, dumpOf(prev))
		pg.SQL(t, db, "ALTER SCHEMA public RENAME TO old; CREATE SCHEMA public;")
		pg.SQL(t, db, dumpOf(cur))
		q := func(sql string) string { return pg.SQL(t, db, sql) }
		want := map[string]string{
			"kv": fmt.Sprintf("+%s-%s~%s",
				q("SELECT count(*) FROM public.kv n WHERE NOT EXISTS (SELECT 1 FROM old.kv o WHERE o.id = n.id)"),
				q("SELECT count(*) FROM old.kv o WHERE NOT EXISTS (SELECT 1 FROM public.kv n WHERE o.id = n.id)"),
				q("SELECT count(*) FROM old.kv o JOIN public.kv n USING (id) WHERE (o.v, o.n) IS DISTINCT FROM (n.v, n.n)")),
			"comp": fmt.Sprintf("+%s-%s~%s",
				q("SELECT count(*) FROM public.comp n WHERE NOT EXISTS (SELECT 1 FROM old.comp o WHERE (o.a, o.b) = (n.a, n.b))"),
				q("SELECT count(*) FROM old.comp o WHERE NOT EXISTS (SELECT 1 FROM public.comp n WHERE (o.a, o.b) = (n.a, n.b))"),
				q("SELECT count(*) FROM old.comp o JOIN public.comp n USING (a, b) WHERE o.v IS DISTINCT FROM n.v")),
			"bag": fmt.Sprintf("+%s-%s~0",
				q("SELECT count(*) FROM (SELECT * FROM public.bag EXCEPT ALL SELECT * FROM old.bag) s"),
				q("SELECT count(*) FROM (SELECT * FROM old.bag EXCEPT ALL SELECT * FROM public.bag) s")),
		}
		for table, w := range want {
			g := got[table]
			if g == "" {
				g = "+0-0~0"
			}
			if g != w {
				t.Errorf("round %d, table %s: diff says %s, SQL says %s", round, table, g, w)
			}
		}
		if d.Tables[0].Table != "bag" || d.Tables[0].Key != nil || len(d.Tables) < 2 || d.Tables[1].Key == nil {
			t.Errorf("round %d: tables %s", round, rowdiff.Summary(d))
		}
		t.Logf("round %d: %s", round, rowdiff.Summary(d))
		prev = cur
	}
}
