package dump

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/dump/source/sourcetest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/jackc/pgx/v5/pgconn"
)

// instantPGMB is the size of the PostgreSQL source in TestOneInstant, in
// MiB: small by default; `make instant-bench` sets DM_INSTANT_PG_MB=1024.
func instantPGMB(t *testing.T) int {
	v := os.Getenv("DM_INSTANT_PG_MB")
	if v == "" {
		return 16
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("DM_INSTANT_PG_MB=%q: want a size in MiB", v)
	}
	return n
}

// stamper writes one counter value at a time into a database and returns
// once it is committed there.
type stamper interface {
	stamp(n int) error
	close()
}

type pgStamper struct{ c *pgconn.PgConn }

func (s pgStamper) stamp(n int) error {
	_, err := s.c.Exec(context.Background(), fmt.Sprintf("INSERT INTO stamps VALUES (%d)", n)).ReadAll()
	return err
}
func (s pgStamper) close() { s.c.Close(context.Background()) }

type redisStamper struct {
	c net.Conn
	r *bufio.Reader
}

func (s redisStamper) stamp(n int) error {
	v := strconv.Itoa(n)
	fmt.Fprintf(s.c, "*3\r\n$5\r\nRPUSH\r\n$6\r\nstamps\r\n$%d\r\n%s\r\n", len(v), v)
	line, err := s.r.ReadString('\n')
	if err == nil && !strings.HasPrefix(line, ":") {
		err = fmt.Errorf("RPUSH: %q", line)
	}
	return err
}
func (s redisStamper) close() { s.c.Close() }

// lineStamper drives a SQL shell (mariadb, sqlite3) that prints a line per
// SELECT as it runs each statement.
type lineStamper struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func startLineStamper(t *testing.T, prog string, args ...string) *lineStamper {
	cmd := exec.Command(prog, args...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &lineStamper{cmd: cmd, in: in, out: bufio.NewReader(out)}
	t.Cleanup(s.close)
	return s
}

func (s *lineStamper) stamp(n int) error {
	fmt.Fprintf(s.in, "INSERT INTO stamps VALUES (%d); SELECT %d;\n", n, n)
	line, err := s.out.ReadString('\n')
	if err == nil && strings.TrimSpace(line) != strconv.Itoa(n) {
		err = fmt.Errorf("shell answered %q", line)
	}
	return err
}

func (s *lineStamper) close() {
	if s.in != nil {
		s.in.Close()
		s.cmd.Wait()
		s.in = nil
	}
}

// stampTimes are when each counter value was sent to a database and when
// it was committed there (index n-1).
type stampTimes struct{ sent, acked []time.Time }

// TestOneInstant: a writer stamps rows into PostgreSQL, MariaDB, Redis
// and SQLite from one shared counter while a commit runs; restored, every
// source holds a gap-free counter prefix, the prefixes are what one
// instant within 50 ms allows, each recorded snapshot time agrees with
// its prefix, and the recorded spread is under 50 ms.
func TestOneInstant(t *testing.T) {
	mb := instantPGMB(t)
	sourcetest.SQLite3(t)
	pg := sourcetest.StartPostgres(t)
	my := sourcetest.StartMariaDB(t)
	rd := sourcetest.StartRedis(t)
	sqlitePath := filepath.Join(t.TempDir(), "app.db")

	pg.CreateDB(t, "app")
	t0 := time.Now()
	// About 1 KiB a row, stored inline (below TOAST's threshold).
	pg.SQL(t, "app", fmt.Sprintf(`CREATE TABLE stamps (n bigint PRIMARY KEY);
CREATE TABLE bulk (id bigint PRIMARY KEY, pad text);
INSERT INTO bulk SELECT g, repeat(md5(g::text), 30) FROM generate_series(1, %d) g;`, mb*1024))
	pgSize, _ := strconv.ParseInt(pg.SQL(t, "app", "SELECT pg_database_size('app');"), 10, 64)
	t.Logf("PostgreSQL source: %d MiB on disk, built in %s", pgSize>>20, time.Since(t0).Round(time.Millisecond))
	my.SQL(t, "", "CREATE DATABASE app; USE app; CREATE TABLE stamps (n BIGINT PRIMARY KEY) ENGINE=InnoDB; CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(100)) ENGINE=InnoDB; INSERT INTO items VALUES (1, 'one'), (2, 'two');")
	sourcetest.SQLite(t, sqlitePath, "PRAGMA journal_mode=WAL; CREATE TABLE stamps (n INTEGER PRIMARY KEY);")
	rd.Cmd(t, "SET greeting hello")

	b := openTest(t)
	br := newBranch(t, b)
	for _, s := range []struct{ subdot, kind, url string }{
		{"pg", "postgresql", pg.URL("app")},
		{"my", "mysql", my.URL("app")},
		{"rd", "redis", rd.URL()},
		{"sq", "sqlite", "sqlite://" + sqlitePath},
	} {
		if err := b.AddSource(ctx, br, s.subdot, dotmesh.SourceSpec{Kind: s.kind, URL: s.url}); err != nil {
			t.Fatal(err)
		}
	}
	names := []string{"pg", "my", "rd", "sq"}

	pc, err := pgconn.Connect(ctx, pg.URL("app"))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(rd.Port))
	if err != nil {
		t.Fatal(err)
	}
	client, err := exec.LookPath("mariadb")
	if err != nil {
		t.Fatal("mariadb (the client) is not installed: install Debian's mariadb-client package")
	}
	stampers := []stamper{
		pgStamper{pc},
		startLineStamper(t, client, "--no-defaults", "--socket="+my.Socket, "--user=root", "--batch", "--skip-column-names", "--unbuffered", "app"),
		redisStamper{rc, bufio.NewReader(rc)},
		startLineStamper(t, sourcetest.SQLite3(t), "-batch", sqlitePath),
	}
	closeAll := sync.OnceFunc(func() {
		for _, s := range stampers {
			s.close()
		}
	})
	t.Cleanup(closeAll)

	// The writer: each counter value goes to every database in turn.
	times := make([]stampTimes, len(stampers))
	stop, written := make(chan struct{}), make(chan error, 1)
	started := make(chan struct{})
	go func() {
		for n := 1; ; n++ {
			select {
			case <-stop:
				written <- nil
				return
			default:
			}
			for i, s := range stampers {
				times[i].sent = append(times[i].sent, time.Now())
				if err := s.stamp(n); err != nil {
					written <- fmt.Errorf("stamp %d into %s: %w", n, names[i], err)
					return
				}
				times[i].acked = append(times[i].acked, time.Now())
			}
			if n == 50 {
				close(started)
			}
		}
	}()
	<-started
	t1 := time.Now()
	c, facts := commitFacts(t, b, br)
	commitTook := time.Since(t1)
	time.Sleep(20 * time.Millisecond) // rows after the last instant
	close(stop)
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	closeAll()

	spread, err := strconv.ParseFloat(facts[spreadKey], 64)
	if err != nil {
		t.Fatalf("%s = %q: %v", spreadKey, facts[spreadKey], err)
	}
	t.Logf("commit of %d MiB PostgreSQL, MariaDB, Redis and SQLite took %s; recorded spread %.3f ms; pg dump %s bytes", pgSize>>20, commitTook.Round(time.Millisecond), spread, facts["source.pg.dump_bytes"])

	// Restored, every database holds a counter prefix.
	t2 := time.Now()
	if err := b.Rollback(ctx, br, c); err != nil {
		t.Fatal(err)
	}
	t.Logf("restore took %s", time.Since(t2).Round(time.Millisecond))
	prefix := make([]int, len(names))
	counts := []string{
		pg.SQL(t, "app", "SELECT count(*), coalesce(max(n), 0) FROM stamps;"),
		my.SQL(t, "app", "SELECT COUNT(*), COALESCE(MAX(n), 0) FROM stamps;"),
		rd.Cmd(t, "LLEN stamps\nLINDEX stamps -1"),
		sourcetest.SQLite(t, sqlitePath, "SELECT count(*), coalesce(max(n), 0) FROM stamps;"),
	}
	for i, out := range counts {
		f := strings.FieldsFunc(out, func(r rune) bool { return r == '|' || r == '\t' || r == '\n' })
		if len(f) == 1 && f[0] == "0" { // redis: an empty list has no last element
			f = append(f, "0")
		}
		if len(f) != 2 || f[0] != f[1] {
			t.Fatalf("%s after restore holds %q: not a gap-free counter prefix", names[i], out)
		}
		prefix[i], _ = strconv.Atoi(f[0])
		if prefix[i] == 0 || prefix[i] >= len(times[i].acked) {
			t.Fatalf("%s holds the prefix 1..%d of %d stamps: the commit did not run while the writer did", names[i], prefix[i], len(times[i].acked))
		}
	}
	if got := rd.Cmd(t, "GET greeting"); got != "hello" {
		t.Fatalf("redis after restore: greeting = %q", got)
	}

	// Source i's true instant lies after stamp k_i was sent to it and
	// before stamp k_i+1 was committed there. Instants of all sources
	// within 50 ms of each other must be possible.
	var latestLow, earliestHigh time.Time
	for i, k := range prefix {
		low, high := times[i].sent[k-1], times[i].acked[k]
		if low.After(latestLow) {
			latestLow = low
		}
		if earliestHigh.IsZero() || high.Before(earliestHigh) {
			earliestHigh = high
		}
		at, err := time.Parse(time.RFC3339Nano, facts["source."+names[i]+".snapshot_time"])
		if err != nil {
			t.Fatalf("source.%s.snapshot_time: %v", names[i], err)
		}
		// An instant is recorded as the command that fixes the read is
		// sent; the server runs it a little later on a busy machine.
		const startup = 30 * time.Millisecond
		if at.Before(low.Add(-startup)) || at.After(high) {
			t.Errorf("%s: recorded instant %s is not between stamp %d sent (%s) and stamp %d committed (%s)",
				names[i], at.Format(time.StampMicro), k, low.Format(time.StampMicro), k+1, high.Format(time.StampMicro))
		}
		t.Logf("%s: prefix 1..%d, recorded instant %s", names[i], k, at.Format(time.StampMicro))
	}
	gap := latestLow.Sub(earliestHigh)
	if gap <= 0 {
		t.Logf("prefixes %v: one instant fits them all (the stamps' intervals overlap by %.3f ms)", prefix, float64(-gap.Microseconds())/1000)
	} else {
		t.Logf("prefixes %v: the instants lie at least %.3f ms apart", prefix, float64(gap.Microseconds())/1000)
	}
	if gap >= 50*time.Millisecond {
		t.Errorf("the sources' prefixes %v need instants at least %s apart, not within 50 ms", prefix, gap)
	}
	if spread >= 50 {
		t.Errorf("recorded spread %.3f ms, want < 50 ms", spread)
	}
}

// TestOneInstantAbort: a source that fails while the others hold their
// snapshots fails the commit, naming it, and releases every held
// snapshot: no transaction left open in PostgreSQL (its connection may
// stay, idle and warm, for the next commit), no dump running in
// MariaDB, no scratch files, no commit.
func TestOneInstantAbort(t *testing.T) {
	sourcetest.SQLite3(t)
	pg := sourcetest.StartPostgres(t)
	my := sourcetest.StartMariaDB(t)
	pg.CreateDB(t, "app")
	pg.SQL(t, "app", "CREATE TABLE t (x int); INSERT INTO t VALUES (1);")
	my.SQL(t, "", "CREATE DATABASE app; USE app; CREATE TABLE t (x INT) ENGINE=InnoDB; INSERT INTO t VALUES (1);")
	b := openTest(t)
	br := newBranch(t, b)
	for _, s := range []struct{ subdot, kind, url string }{
		{"pg", "postgresql", pg.URL("app")},
		{"my", "mysql", my.URL("app")},
		{"sq", "sqlite", "sqlite://" + filepath.Join(t.TempDir(), "missing.db")},
	} {
		if err := b.AddSource(ctx, br, s.subdot, dotmesh.SourceSpec{Kind: s.kind, URL: s.url}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := b.Commit(ctx, dotmesh.CommitRef{BranchRef: br, ID: dotmesh.NewCommitID()})
	if err == nil || !strings.Contains(err.Error(), "source sq") || !strings.Contains(err.Error(), "nothing committed") {
		t.Fatalf("commit with a missing database: %v", err)
	}
	if cs, err := b.Commits(ctx, br); err != nil || len(cs) != 0 {
		t.Fatalf("commits after a failed commit: %v %v", cs, err)
	}
	if left, _ := filepath.Glob(filepath.Join(b.b.branchDir(br), tmpPrefix+"*")); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		pgOpen := pg.SQL(t, "postgres", "SELECT count(*) FROM pg_stat_activity WHERE datname = 'app' AND (xact_start IS NOT NULL OR state <> 'idle');")
		myOpen := my.SQL(t, "", "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = 'app' AND ID <> CONNECTION_ID();")
		if pgOpen == "0" && myOpen == "0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the failed commit: %s PostgreSQL transactions and %s MariaDB connections still open to app", pgOpen, myOpen)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
