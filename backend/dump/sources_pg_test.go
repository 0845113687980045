package dump

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/dump/source/sourcetest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func commitFacts(t testing.TB, b *Guarded, br dotmesh.BranchRef) (dotmesh.CommitRef, map[string]string) {
	t.Helper()
	c := dotmesh.CommitRef{BranchRef: br, ID: dotmesh.NewCommitID()}
	facts, err := b.Commit(ctx, c)
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
	return c, facts
}

func factInt(t testing.TB, facts map[string]string, k string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(facts[k], 10, 64)
	if err != nil {
		t.Fatalf("fact %s = %q in %v", k, facts[k], facts)
	}
	return n
}

// TestPostgresSource: commit, change, commit, reset restores the first
// state exactly; an unchanged re-commit stores ~nothing; a dirty database
// is detected; failed dumps leave no commit.
func TestPostgresSource(t *testing.T) {
	pg := sourcetest.StartPostgres(t)
	pg.CreateDB(t, "shop")
	pg.SQL(t, "shop", `CREATE TABLE items (id int PRIMARY KEY, name text, price numeric);
INSERT INTO items SELECT g, 'item ' || g || repeat('x', 40), g * 1.5 FROM generate_series(1, 20000) g;`)
	table := func() string { return pg.SQL(t, "shop", "SELECT id, name, price FROM items ORDER BY id") }

	b := openTest(t)
	br := newBranch(t, b)
	if err := b.AddSource(ctx, br, "db", dotmesh.SourceSpec{Kind: "postgresql", URL: pg.URL("shop")}); err != nil {
		t.Fatal(err)
	}
	err := b.AddSource(ctx, br, "db", dotmesh.SourceSpec{Kind: "postgresql", URL: pg.URL("shop")})
	if !errors.Is(err, dotmesh.ErrAlreadyExists) {
		t.Fatalf("second AddSource: %v", err)
	}
	first := table()
	c1, f1 := commitFacts(t, b, br)
	if !strings.Contains(f1["source.db.tool"], "pg_dump") || f1["source.db.server"] == "" || f1["source.db.snapshot_time"] == "" {
		t.Fatalf("facts lack tool, server or time: %v", f1)
	}
	size := factInt(t, f1, "source.db.dump_bytes")
	if size < 500<<10 {
		t.Fatalf("dump is only %d bytes", size)
	}

	// Unchanged: under 1% of the dump is stored again, and it is clean.
	_, f2 := commitFacts(t, b, br)
	if added := factInt(t, f2, "new_bytes_stored"); added*100 > size {
		t.Fatalf("unchanged re-commit stored %d bytes of a %d byte dump", added, size)
	}
	if u, err := b.Usage(ctx, br, &c1); err != nil || u.Dirty {
		t.Fatalf("unchanged database: usage %+v, %v", u, err)
	}

	// Updates move rows physically (here: and back to the same values);
	// the dump sorts rows, so the same state stores nothing new.
	pg.SQL(t, "shop", "UPDATE items SET price = price + 1 WHERE id % 3 = 0; UPDATE items SET price = price - 1 WHERE id % 3 = 0; VACUUM items;")
	if _, f := commitFacts(t, b, br); factInt(t, f, "new_bytes_stored")*100 > size {
		t.Fatalf("same rows in a new physical order stored %s bytes of a %d byte dump", f["new_bytes_stored"], size)
	}
	pg.SQL(t, "shop", "UPDATE items SET price = price + 1 WHERE id % 100 = 0; DELETE FROM items WHERE id = 7; INSERT INTO items VALUES (20001, 'new', 1);")
	if u, err := b.Usage(ctx, br, &c1); err != nil || !u.Dirty {
		t.Fatalf("changed database: usage %+v, %v", u, err)
	}
	commitFacts(t, b, br)
	if table() == first {
		t.Fatal("update changed nothing")
	}
	pg.SQL(t, "shop", "CREATE TABLE extra (x int);")
	if err := b.Rollback(ctx, br, c1); err != nil {
		t.Fatal(err)
	}
	if got := table(); got != first {
		t.Fatal("rollback did not restore the table contents")
	}
	if n := pg.SQL(t, "shop", "SELECT count(*) FROM pg_tables WHERE tablename = 'extra'"); n != "0" {
		t.Fatal("rollback kept a table created after the commit")
	}

	// A failing dump names the source and leaves no commit.
	before, _ := b.Commits(ctx, br)
	bad := newBranch(t, b)
	if err := b.AddSource(ctx, bad, "db", dotmesh.SourceSpec{Kind: "postgresql", URL: pg.URL("nosuchdb")}); err != nil {
		t.Fatal(err)
	}
	_, err = b.Commit(ctx, dotmesh.CommitRef{BranchRef: bad, ID: dotmesh.NewCommitID()})
	if err == nil || !strings.Contains(err.Error(), "source db") || !strings.Contains(err.Error(), "nosuchdb") {
		t.Fatalf("commit with a wrong database: %v", err)
	}
	if ids, _ := b.Commits(ctx, bad); len(ids) != 0 {
		t.Fatalf("failed dump left commits %v", ids)
	}

	// Lifecycle: deactivate marks, collect-garbage drops only what is marked.
	if err := b.SourceLifecycle(ctx, br, "db", dotmesh.SourceCollectGarbage); err != nil {
		t.Fatal(err)
	}
	if table() != first {
		t.Fatal("collect-garbage dropped an unmarked database")
	}
	for _, a := range []string{dotmesh.SourceDeactivate, dotmesh.SourceCollectGarbage} {
		if err := b.SourceLifecycle(ctx, br, "db", a); err != nil {
			t.Fatal(err)
		}
	}
	if n := pg.SQL(t, "postgres", "SELECT count(*) FROM pg_database WHERE datname = 'shop'"); n != "0" {
		t.Fatal("collect-garbage kept a marked database")
	}
	if err := b.RemoveSource(ctx, br, "db"); err != nil {
		t.Fatal(err)
	}
	if err := b.AddSource(ctx, br, "db", dotmesh.SourceSpec{Kind: "postgresql", URL: pg.URL("shop"), InitSchema: "CREATE TABLE items (id int PRIMARY KEY, name text, price numeric);"}); err != nil {
		t.Fatal(err)
	}
	if err := b.SourceLifecycle(ctx, br, "db", dotmesh.SourceActivate); err != nil {
		t.Fatal(err)
	}
	if n := pg.SQL(t, "shop", "SELECT count(*) FROM items"); n != "0" {
		t.Fatalf("activate: items has %s rows", n)
	}
	if err := b.SourceLifecycle(ctx, br, "db", dotmesh.SourceActivate); err != nil { // exists: nothing happens
		t.Fatal(err)
	}
	if err := b.Rollback(ctx, br, c1); err != nil {
		t.Fatal(err)
	}
	if table() != first {
		t.Fatal("rollback after re-activation did not restore the data")
	}

	// The server stops: the commit fails and says why.
	pg.Stop()
	_, err = b.Commit(ctx, dotmesh.CommitRef{BranchRef: br, ID: dotmesh.NewCommitID()})
	if err == nil || !strings.Contains(err.Error(), "source db") {
		t.Fatalf("commit with the server stopped: %v", err)
	}
	if after, _ := b.Commits(ctx, br); len(after) != len(before) {
		t.Fatalf("failed commit changed the commits: %v -> %v", before, after)
	}
	if strings.Contains(err.Error(), "password") {
		t.Fatalf("error mentions a password: %v", err)
	}
}

// TestPostgresServerStopsMidDump: the server goes away while pg_dump is
// running (blocked on a lock); the commit fails naming the source and
// no commit appears.
func TestPostgresServerStopsMidDump(t *testing.T) {
	pg := sourcetest.StartPostgres(t)
	pg.CreateDB(t, "shop")
	pg.SQL(t, "shop", "CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items SELECT generate_series(1, 1000);")
	b := openTest(t)
	br := newBranch(t, b)
	if err := b.AddSource(ctx, br, "db", dotmesh.SourceSpec{Kind: "postgresql", URL: pg.URL("shop")}); err != nil {
		t.Fatal(err)
	}
	lock := pg.Open(t, "shop", "BEGIN; LOCK TABLE items IN ACCESS EXCLUSIVE MODE;")
	defer lock.Close()
	done := make(chan error, 1)
	go func() {
		_, err := b.Commit(ctx, dotmesh.CommitRef{BranchRef: br, ID: dotmesh.NewCommitID()})
		done <- err
	}()
	// A loaded machine can take long to start pg_dump; a commit that
	// ends before pg_dump waits says why.
	deadline := time.Now().Add(90 * time.Second)
	for pg.SQL(t, "postgres", "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dump' AND wait_event_type = 'Lock'") != "1" {
		select {
		case err := <-done:
			t.Fatalf("the commit ended before pg_dump waited for the lock: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("pg_dump never waited for the lock")
		}
		time.Sleep(50 * time.Millisecond)
	}
	pg.Stop()
	err := <-done
	if err == nil || !strings.Contains(err.Error(), "source db") || !strings.Contains(err.Error(), "pg_dump failed") {
		t.Fatalf("commit whose server stopped mid-dump: %v", err)
	}
	if ids, _ := b.Commits(ctx, br); len(ids) != 0 {
		t.Fatalf("commits after a failed dump: %v", ids)
	}
	t.Log(err)
}

// A table big enough that its rows are chunked while pg_dump runs, then
// updated in one range, so that the updated rows come last and the dump
// is rewound and merged: the commit's dump file is the sorted dump, its
// chunks are the file's, the change stores little, and the commit
// restores the table exactly.
func TestPostgresRewoundDump(t *testing.T) {
	pg := sourcetest.StartPostgres(t)
	pg.CreateDB(t, "big")
	pg.SQL(t, "big", `CREATE TABLE t (id int PRIMARY KEY, v int, pad text);
INSERT INTO t SELECT g, 0, repeat(md5(g::text), 2) FROM generate_series(1, 300000) g;`)
	sum := func() string {
		return pg.SQL(t, "big", "SELECT md5(string_agg(id || ' ' || v || ' ' || pad, ',' ORDER BY id)) FROM t")
	}
	b := openTest(t)
	br := newBranch(t, b)
	if err := b.AddSource(ctx, br, "db", dotmesh.SourceSpec{Kind: "postgresql", URL: pg.URL("big")}); err != nil {
		t.Fatal(err)
	}
	_, f1 := commitFacts(t, b, br)
	size := factInt(t, f1, "source.db.dump_bytes")
	if size < 4*int64(fileChunks.Max) {
		t.Fatalf("dump is only %d bytes", size)
	}
	pg.SQL(t, "big", "UPDATE t SET v = v + 1 WHERE id > 30000 AND id <= 33000")
	want := sum()
	c2, f2 := commitFacts(t, b, br)
	if added := factInt(t, f2, "new_bytes_stored"); added*10 > size {
		t.Fatalf("a 1%% update stored %d bytes of a %d byte dump", added, size)
	}
	file := filepath.Join(b.b.treeDir(br), "db", "postgresql.sql")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(data)) != factInt(t, f2, "source.db.dump_bytes") {
		t.Fatalf("dump file of %d bytes, the commit says %s", len(data), f2["source.db.dump_bytes"])
	}
	// The rows of the block are sorted again after the merge.
	var last int
	for _, l := range strings.Split(string(data), "\n") {
		id, _, ok := strings.Cut(l, "\t")
		if n, err := strconv.Atoi(id); ok && err == nil {
			if n <= last {
				t.Fatalf("row %d after row %d in the dump", n, last)
			}
			last = n
		}
	}
	if last != 300000 {
		t.Fatalf("last row %d", last)
	}
	for _, e := range commitManifest(t, b, c2).Entries {
		if e.Path == "db/postgresql.sql" && !chunksEqual(e.Chunks, chunksOf(t, data, fileChunks)) {
			t.Fatal("the commit's chunks are not the dump file's")
		}
	}
	pg.SQL(t, "big", "DELETE FROM t WHERE id % 2 = 0")
	if err := b.Rollback(ctx, br, c2); err != nil {
		t.Fatal(err)
	}
	if got := sum(); got != want {
		t.Fatal("rollback did not restore the updated table")
	}
}
