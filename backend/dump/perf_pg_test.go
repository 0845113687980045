package dump

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/dump/source/sourcetest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// TestPostgresCommitPerf times commits of a pgbench database (scale
// DM_PG_PERF, e.g. 10) against pg_dump to /dev/null, in process, with a
// CPU profile in DM_PG_PROFILE when set. Skipped unless DM_PG_PERF is set.
func TestPostgresCommitPerf(t *testing.T) {
	scale := os.Getenv("DM_PG_PERF")
	if scale == "" {
		t.Skip("set DM_PG_PERF=<pgbench scale> to run")
	}
	pg := sourcetest.StartPostgres(t)
	pg.CreateDB(t, "bench")
	ms, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pgbench")
	if len(ms) == 0 {
		t.Skip("no pgbench")
	}
	bin := filepath.Dir(ms[len(ms)-1])
	conn := []string{"-h", pg.Socket, "-p", strconv.Itoa(pg.Port), "-U", "postgres"}
	if out, err := exec.Command(filepath.Join(bin, "pgbench"), append(conn, "-i", "-q", "-s", scale, "bench")...).CombinedOutput(); err != nil {
		t.Fatalf("pgbench: %v: %s", err, out)
	}
	median := func(ds []time.Duration) time.Duration {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[len(ds)/2]
	}
	var dumps []time.Duration
	pgDump := func() time.Duration {
		start := time.Now()
		c := exec.Command(filepath.Join(bin, "pg_dump"), append(conn, "-Fp", "-d", "bench")...)
		if err := c.Run(); err != nil {
			t.Fatal(err)
		}
		return time.Since(start)
	}
	pgDump() // warm the cache
	var firsts, sames, usages []time.Duration
	var rFirst, rSame []float64
	for i := 0; i < 7; i++ {
		dumps = append(dumps, pgDump()) // interleaved: the machine is shared and noisy
		b := openTestWorkers(t, 0)      // a fresh store: the first commit stores everything
		br := newBranch(t, b)
		if err := b.AddSource(ctx, br, "db", dotmesh.SourceSpec{Kind: "postgresql", URL: pg.URL("bench")}); err != nil {
			t.Fatal(err)
		}
		if p := os.Getenv("DM_PG_PROFILE"); p != "" && i == 2 {
			f, _ := os.Create(p)
			pprof.StartCPUProfile(f)
		}
		start := time.Now()
		c1, f1 := commitFacts(t, b, br)
		firsts = append(firsts, time.Since(start))
		if os.Getenv("DM_PG_PROFILE") != "" && i == 2 {
			pprof.StopCPUProfile()
		}
		start = time.Now()
		_, f2 := commitFacts(t, b, br)
		sames = append(sames, time.Since(start))
		start = time.Now()
		u, err := b.Usage(ctx, br, &c1)
		usages = append(usages, time.Since(start))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("pg_dump %v; first %v (%s new bytes stored, dump %s ms), unchanged %v (%s new), usage %v dirty=%v",
			dumps[i], firsts[i], f1["new_bytes_stored"], f1["source.db.dump_ms"], sames[i], f2["new_bytes_stored"], usages[i], u.Dirty)
	}
	for i := range dumps {
		rFirst = append(rFirst, firsts[i].Seconds()/dumps[i].Seconds())
		rSame = append(rSame, sames[i].Seconds()/dumps[i].Seconds())
	}
	slices.Sort(rFirst)
	slices.Sort(rSame)
	t.Logf("median ratios to the pg_dump before each: first %.2fx, unchanged %.2fx", rFirst[len(rFirst)/2], rSame[len(rSame)/2])
	d := median(dumps)
	t.Logf("medians: pg_dump %v; first commit %v (%.2fx); unchanged %v (%.2fx); usage %v",
		d, median(firsts), median(firsts).Seconds()/d.Seconds(), median(sames), median(sames).Seconds()/d.Seconds(), median(usages))
}

func openTestWorkers(t testing.TB, workers int) *Backend {
	t.Helper()
	dir := t.TempDir()
	b, err := Open(dir, Options{Logger: testLogger(t), Workers: workers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(); makeWritable(dir) })
	return b
}
