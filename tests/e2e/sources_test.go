package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/dump/source/sourcetest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// TestPostgresSourceCLI: a dot with a PostgreSQL source, a Redis source
// and a files subdot is committed and restored together through dm; the password in the URL
// never comes back; a dirty database stops a plain reset; a failing dump
// makes no commit and says which source failed.
func TestPostgresSourceCLI(t *testing.T) {
	pg := sourcetest.StartPostgres(t)
	pg.CreateDB(t, "shop")
	pg.SQL(t, "shop", "CREATE TABLE orders (id int PRIMARY KEY, what text); INSERT INTO orders SELECT g, 'order ' || g FROM generate_series(1, 1000) g;")
	table := func() string { return pg.SQL(t, "shop", "SELECT * FROM orders ORDER BY id") }
	url := strings.Replace(pg.URL("shop"), "postgres@", "postgres:s3cret@", 1) // trust auth ignores it

	e := newEnv(t)
	e.clusterInit()
	e.ok("init", "app")
	e.ok("switch", "app")
	e.ok("source", "add", "app.db", "postgresql", url)
	rd := sourcetest.StartRedis(t)
	rd.Cmd(t, "SET greeting hello\nRPUSH jobs a b\n")
	cache := func() string { return rd.Cmd(t, "GET greeting\nLRANGE jobs 0 -1\nDBSIZE\n") }
	e.ok("source", "add", "app.cache", "redis", rd.URL())
	list := e.ok("source", "list")
	if strings.Contains(list, "s3cret") || !strings.Contains(list, "xxxxx") || !strings.Contains(list, "postgresql") {
		t.Fatalf("dm source list: %q", list)
	}
	web := e.path("app.web")
	writeFile(t, filepath.Join(web, "index.html"), "v1")
	first, firstCache := table(), cache()
	e.ok("commit", "-m", "one")
	c1 := e.log("app")[0]
	if !strings.Contains(c1.Info["source.db.tool"], "pg_dump") || c1.Info["source.db.server"] == "" || c1.Info["source.db.snapshot_time"] == "" {
		t.Fatalf("commit info: %v", c1.Info)
	}

	pg.SQL(t, "shop", "UPDATE orders SET what = 'changed' WHERE id < 10; DELETE FROM orders WHERE id > 900;")
	writeFile(t, filepath.Join(web, "index.html"), "v2")
	rd.Cmd(t, "SET greeting bye\nDEL jobs\nSET extra 1\n")
	e.ok("commit", "-m", "two")
	second := table()

	pg.SQL(t, "shop", "INSERT INTO orders VALUES (5000, 'uncommitted');")
	e.fails("uncommitted", "reset", "HEAD^")
	if table() == second {
		t.Fatal("refused reset changed the database")
	}
	e.ok("reset", "--hard", "HEAD^")
	if table() != first {
		t.Fatal("reset did not restore the table")
	}
	if cache() != firstCache {
		t.Fatalf("reset did not restore redis: %q", cache())
	}
	if b, _ := os.ReadFile(filepath.Join(web, "index.html")); string(b) != "v1" {
		t.Fatalf("reset did not restore the files subdot: %q", b)
	}

	// A source whose dump fails: no commit, and the error names it.
	e.ok("source", "add", "app.bad", "postgresql", pg.URL("nosuchdb"))
	r := e.fails("source bad", "commit", "-m", "three", "--allow-empty")
	if strings.Contains(r.err, "s3cret") {
		t.Fatalf("error shows the password: %s", r.err)
	}
	if log := e.log("app"); len(log) != 1 || log[0].ID != c1.ID {
		t.Fatalf("failed dump changed the log: %v", log)
	}
	e.ok("source", "rm", "app.bad")

	// Lifecycle through the CLI.
	e.ok("source", "deactivate", "app.db")
	e.ok("source", "collect-garbage", "app.db")
	if n := pg.SQL(t, "postgres", "SELECT count(*) FROM pg_database WHERE datname = 'shop'"); n != "0" {
		t.Fatal("collect-garbage kept the database")
	}
	e.ok("source", "activate", "app.db")
	e.ok("reset", "--hard", "HEAD")
	if table() != first {
		t.Fatal("reset after activate did not restore the table")
	}
	var srcs []dotmesh.Source
	e.jsonOut(&srcs, "source", "list", "app")
	if len(srcs) != 2 || srcs[1].State != "active" || srcs[0].Kind != "redis" || strings.Contains(srcs[1].URL, "s3cret") {
		t.Fatalf("sources: %+v", srcs)
	}
}
