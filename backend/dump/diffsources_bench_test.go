package dump

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/dump/source/rowdiff"
	"github.com/dotmesh-io/dotmesh/backend/dump/source/sourcetest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// BenchmarkRowDiffPgbench is the figure for row diffs: two
// commits of a pgbench database (scale DM_BENCH_PG_SCALE, default 10:
// 1M accounts) around an update of a contiguous 1% of pgbench_accounts,
// compared with rows (20 listed per table), against a plain pg_dump of
// the database to /dev/null. It reports both times and their ratio
// (target: ≤ 1).
func BenchmarkRowDiffPgbench(b *testing.B) {
	scale := 10
	if s := os.Getenv("DM_BENCH_PG_SCALE"); s != "" {
		var err error
		if scale, err = strconv.Atoi(s); err != nil || scale < 1 {
			b.Fatalf("DM_BENCH_PG_SCALE=%q: want a positive integer", s)
		}
	}
	pg := sourcetest.StartPostgres(b)
	pg.CreateDB(b, "bench")
	pgbench, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pgbench")
	if len(pgbench) == 0 {
		b.Fatal("pgbench (Debian package postgresql-contrib or postgresql) is missing")
	}
	conn := []string{"-h", pg.Socket, "-p", strconv.Itoa(pg.Port), "-U", "postgres"}
	if out, err := exec.Command(pgbench[0], append(conn, "-i", "-q", "-s", strconv.Itoa(scale), "bench")...).CombinedOutput(); err != nil {
		b.Fatalf("pgbench -i: %v: %s", err, out)
	}
	be := openTest(b)
	br := newBranch(b, be)
	if err := be.AddSource(ctx, br, "db", dotmesh.SourceSpec{Kind: "postgresql", URL: pg.URL("bench")}); err != nil {
		b.Fatal(err)
	}
	c1, _ := commitFacts(b, be, br)
	n := scale * 100000
	pg.SQL(b, "bench", "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid > "+strconv.Itoa(n/2)+" AND aid <= "+strconv.Itoa(n/2+n/100))
	c2, _ := commitFacts(b, be, br)

	pgDump := func() time.Duration {
		start := time.Now()
		c := exec.Command("pg_dump", append(conn, "--format=plain", "bench")...)
		c.Stdout = io.Discard
		var stderr strings.Builder
		c.Stderr = &stderr
		if err := c.Run(); err != nil {
			b.Fatalf("pg_dump: %v: %s", err, stderr.String())
		}
		return time.Since(start)
	}
	var diffs, dumps time.Duration
	runs := 0
	for b.Loop() {
		dumps += pgDump()
		start := time.Now()
		d, err := be.DiffDatabase(ctx, "db", dotmesh.DatabaseSide{Commit: &c1}, dotmesh.DatabaseSide{Commit: &c2}, dotmesh.RowDiffOptions{Rows: true, MaxRows: 20})
		diffs += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if len(d.Tables) != 1 || d.Tables[0].Updated != int64(n/100) || d.Tables[0].Inserted+d.Tables[0].Deleted != 0 {
			b.Fatalf("diff: %s", rowdiff.Summary(d))
		}
		runs++
	}
	b.ReportMetric(float64(diffs.Milliseconds())/float64(runs), "diff-ms")
	b.ReportMetric(float64(dumps.Milliseconds())/float64(runs), "pg_dump-ms")
	b.ReportMetric(float64(diffs)/float64(dumps), "diff/pg_dump")
}
