package source

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/dump/source/sourcetest"
)

// TestPostgresDumpPerf times the phases of a postgres dump of a pgbench
// database (scale DM_PG_PERF). Skipped unless DM_PG_PERF is set.
func TestPostgresDumpPerf(t *testing.T) {
	scale := os.Getenv("DM_PG_PERF")
	if scale == "" {
		t.Skip("set DM_PG_PERF=<pgbench scale> to run")
	}
	pg := sourcetest.StartPostgres(t)
	pg.CreateDB(t, "bench")
	ms, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pgbench")
	bin := filepath.Dir(ms[len(ms)-1])
	conn := []string{"-h", pg.Socket, "-p", strconv.Itoa(pg.Port), "-U", "postgres"}
	if out, err := exec.Command(filepath.Join(bin, "pgbench"), append(conn, "-i", "-q", "-s", scale, "bench")...).CombinedOutput(); err != nil {
		t.Fatalf("pgbench: %v: %s", err, out)
	}
	c, err := Parse(PostgreSQL, pg.URL("bench"))
	if err != nil {
		t.Fatal(err)
	}
	d, _ := Open(c)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		start := time.Now()
		cmd := exec.Command(filepath.Join(bin, "pg_dump"), append(conn, "-Fp", "-d", "bench")...)
		cmd.Run()
		t.Logf("pg_dump >/dev/null %v", time.Since(start))
		start = time.Now()
		tl := &tool{name: "pg_dump", args: append(conn, "-Fp", "-d", "bench"), stdout: io.Discard}
		if err := tl.run(ctx); err != nil {
			t.Fatal(err)
		}
		t.Logf("pg_dump | io.Discard %v", time.Since(start))
		start = time.Now()
		if _, err := d.Dump(ctx, io.Discard); err != nil {
			t.Fatal(err)
		}
		t.Logf("Dump to io.Discard %v", time.Since(start))
		start = time.Now()
		if _, err := d.Dump(ctx, &discardRewinder{}); err != nil {
			t.Fatal(err)
		}
		t.Logf("Dump to a discarding Rewinder %v", time.Since(start))
		start = time.Now()
		if fp, err := d.(Fingerprinter).Fingerprint(ctx); err != nil || fp == "" {
			t.Fatal(fp, err)
		}
		t.Logf("Fingerprint %v", time.Since(start))
		f, _ := os.Create(filepath.Join(t.TempDir(), "x"))
		start = time.Now()
		if _, err := d.Dump(ctx, f); err != nil {
			t.Fatal(err)
		}
		f.Close()
		t.Logf("Dump to file %v", time.Since(start))
	}
}

type discardRewinder struct{}

func (discardRewinder) Write(p []byte) (int, error) { return len(p), nil }
func (discardRewinder) Rewind(int64) error          { return nil }
