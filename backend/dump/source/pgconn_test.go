package source

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/dump/source/sourcetest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func openPG(t *testing.T, raw string) *postgres {
	t.Helper()
	c, err := Parse(PostgreSQL, raw)
	if err != nil {
		t.Fatal(err)
	}
	return &postgres{c: c, conns: NewConns(spareKeep)}
}

// The fingerprint over the wire is psql's, byte for byte, and moves
// with a change.
func TestPGFingerprintMatchesPsql(t *testing.T) {
	pg := sourcetest.StartPostgres(t)
	pg.CreateDB(t, "fpdb")
	pg.SQL(t, "fpdb", "CREATE TABLE t (id serial PRIMARY KEY, v text); INSERT INTO t (v) VALUES ('a');")
	p := openPG(t, pg.URL("fpdb"))
	ctx := context.Background()
	viaPsql := func() string {
		out, err := p.sql(ctx, p.c.Database, pgFingerprint)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	a, err := p.Fingerprint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a == "" || !strings.HasPrefix(a, "pg2 ") {
		t.Fatalf("fingerprint %q", a)
	}
	if old := viaPsql(); old != a {
		t.Fatalf("pgconn %q != psql %q", a, old)
	}
	pg.SQL(t, "fpdb", "INSERT INTO t (v) VALUES ('b');")
	b, err := p.Fingerprint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if b == a {
		t.Fatalf("fingerprint did not move: %q", b)
	}
	if old := viaPsql(); old != b {
		t.Fatalf("pgconn %q != psql %q", b, old)
	}
	// WAL that changes no data (a non-transactional logical message, a
	// checkpoint) leaves it; a transaction that wrote moves it when it
	// ends, not before: until then its rows are in no dump.
	pg.SQL(t, "fpdb", "SELECT pg_logical_emit_message(false, 'dm', 'noise'); CHECKPOINT;")
	if c, err := p.Fingerprint(ctx); err != nil || c != b {
		t.Fatalf("after WAL without a data change: %q, %v; want %q", c, err, b)
	}
	open := pg.Open(t, "fpdb", "BEGIN; INSERT INTO t (id, v) VALUES (1000, 'in progress');")
	for deadline := time.Now().Add(10 * time.Second); pg.SQL(t, "postgres", "SELECT count(*) FROM pg_stat_activity WHERE datname = 'fpdb' AND state = 'idle in transaction' AND backend_xid IS NOT NULL") != "1"; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the open transaction never wrote")
		}
	}
	if c, err := p.Fingerprint(ctx); err != nil || c != b {
		t.Fatalf("with a write in progress: %q, %v; want %q", c, err, b)
	}
	open.Send("COMMIT;")
	open.Close()
	if c, err := p.Fingerprint(ctx); err != nil || c == b {
		t.Fatalf("after the write committed: %q, %v; want a new fingerprint", c, err)
	}
	// Unlogged tables: no fingerprint, as before.
	pg.SQL(t, "fpdb", "CREATE UNLOGGED TABLE u (x int);")
	if c, err := p.Fingerprint(ctx); err != nil || c != "" {
		t.Fatalf("with an unlogged table: %q, %v", c, err)
	}
	// A cancelled context is the context's error.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := p.Fingerprint(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

// A wrong password fails naming the database, never showing the
// password; the right one (only in Conn.Password) gets in, as for psql.
func TestPGFingerprintPassword(t *testing.T) {
	pg := sourcetest.StartPostgres(t)
	pg.CreateDB(t, "pwdb")
	const secret = "s3cr#t/pw@x"
	pg.SQL(t, "postgres", "CREATE ROLE pwuser LOGIN PASSWORD '"+secret+"'; GRANT ALL ON DATABASE pwdb TO pwuser;")
	hba := filepath.Join(pg.Socket, "data", "pg_hba.conf")
	old, err := os.ReadFile(hba)
	if err != nil {
		t.Fatalf("cannot switch on password auth in the private PostgreSQL server's pg_hba.conf: %v", err)
	}
	if err := os.WriteFile(hba, append([]byte("local all pwuser scram-sha-256\n"), old...), 0o600); err != nil {
		t.Fatalf("cannot switch on password auth in the private PostgreSQL server's pg_hba.conf: %v", err)
	}
	if out := pg.SQL(t, "postgres", "SELECT pg_reload_conf();"); out != "t" {
		t.Fatalf("reload: %q", out)
	}
	url := func(pw string) string {
		return fmt.Sprintf("postgres://pwuser:%s@/pwdb?host=%s&port=%d", strings.NewReplacer("#", "%23", "/", "%2F", "@", "%40").Replace(pw), pg.Socket, pg.Port)
	}
	ctx := context.Background()
	right := openPG(t, url(secret))
	if right.c.Password != secret {
		t.Fatalf("parsed password %q", right.c.Password)
	}
	fp, err := right.Fingerprint(ctx)
	if err != nil || fp == "" {
		t.Fatalf("right password: %q, %v", fp, err)
	}
	if old, err := right.sql(ctx, "pwdb", pgFingerprint); err != nil || old != fp {
		t.Fatalf("psql: %q, %v; pgconn %q", old, err, fp)
	}
	wrong := openPG(t, url(secret+"nope"))
	_, err = wrong.Fingerprint(ctx)
	if err == nil {
		t.Fatal("wrong password accepted")
	}
	msg := err.Error()
	t.Log(msg)
	if !strings.Contains(msg, "fingerprint of pwdb") || !strings.Contains(msg, "password authentication failed") {
		t.Fatalf("error %q", msg)
	}
	if !errors.Is(err, dotmesh.ErrUnavailable) {
		t.Fatalf("error %q is not ErrUnavailable", msg)
	}
	checkNoSecret(t, msg, secret+"nope")
	// Also with the password that is right for psql but not for pgconn:
	// none missing, PGPASSWORD/pgpass not consulted over it.
	t.Setenv("PGPASSWORD", secret)
	if _, err := wrong.Fingerprint(ctx); err == nil {
		t.Fatal("PGPASSWORD won over the URL's password")
	}
}

// An unreachable server fails naming the database, without the URL's
// password.
func TestPGFingerprintUnreachable(t *testing.T) {
	const secret = "hunter2-very-secret"
	dir := t.TempDir()
	p := openPG(t, "postgres://someone:"+secret+"@/nodb?host="+dir+"&port=5999")
	_, err := p.Fingerprint(context.Background())
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	t.Log(msg)
	if !strings.Contains(msg, "fingerprint of nodb") || !strings.Contains(msg, "database=nodb") || !strings.Contains(msg, dir) {
		t.Fatalf("error %q", msg)
	}
	if !errors.Is(err, dotmesh.ErrUnavailable) {
		t.Fatalf("error %q is not ErrUnavailable", msg)
	}
	checkNoSecret(t, msg, secret)
	// pgErr redacts even a message that did carry it.
	q := openPG(t, "postgres://someone:a%2Fb%20c@/nodb?host="+dir)
	if q.c.Password != "a/b c" {
		t.Fatalf("parsed password %q", q.c.Password)
	}
	e := q.pgErr(context.Background(), "connecting", errors.New("bad a/b c, a%2Fb+c, a%2Fb%20c"))
	if got := e.Error(); !strings.HasSuffix(got, ": connecting: bad xxxxx, xxxxx, xxxxx") {
		t.Fatalf("redacted: %q", got)
	}
}

func checkNoSecret(t *testing.T, msg, secret string) {
	t.Helper()
	if strings.Contains(msg, secret) {
		t.Fatalf("error shows the password: %q", msg)
	}
}

// A commit's snapshot takes the fingerprint's connection instead of
// starting another and gives it back once the dump is done, so the next
// commit's fingerprint runs on it too; one the server ended is replaced,
// one inside a transaction is never kept, and one left unused is closed.
func TestPGSnapshotTakesFingerprintConn(t *testing.T) {
	pg := sourcetest.StartPostgres(t)
	pg.CreateDB(t, "spdb")
	pg.SQL(t, "spdb", "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);")
	p := openPG(t, pg.URL("spdb"))
	t.Cleanup(p.conns.Close)
	ctx := context.Background()
	key := p.connKey()
	snapshotPID := func() uint32 {
		t.Helper()
		s, err := p.Snapshot(ctx, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if p.conns.kept(key) != nil {
			t.Fatal("the connection is kept while the snapshot holds it")
		}
		var buf strings.Builder
		if _, err := s.Dump(ctx, &buf); err != nil || !strings.Contains(buf.String(), pgTrailer) {
			t.Fatalf("dump from the snapshot: %v", err)
		}
		return s.(*pgSnapshot).conn.PID()
	}
	gone := func(pid uint32) bool {
		return pg.SQL(t, "postgres", fmt.Sprintf("SELECT count(*) FROM pg_stat_activity WHERE pid = %d", pid)) == "0"
	}
	if _, err := p.Fingerprint(ctx); err != nil {
		t.Fatal(err)
	}
	spare := p.conns.kept(key)
	if spare == nil {
		t.Fatal("the fingerprint kept no connection")
	}
	if pid := snapshotPID(); pid != spare.PID() {
		t.Fatalf("snapshot on server process %d, fingerprint on %d", pid, spare.PID())
	}
	// Given back after the dump, outside its transaction: the next
	// commit's fingerprint runs there, and no transaction stays open.
	if kept := p.conns.kept(key); kept == nil || kept.PID() != spare.PID() || kept.TxStatus() != 'I' {
		t.Fatalf("after the snapshot: kept %v, want the same connection, idle", kept)
	}
	if n := pg.SQL(t, "postgres", "SELECT count(*) FROM pg_stat_activity WHERE datname = 'spdb' AND xact_start IS NOT NULL"); n != "0" {
		t.Fatalf("%s transactions open after the snapshot was closed", n)
	}
	if _, err := p.Fingerprint(ctx); err != nil || p.conns.kept(key).PID() != spare.PID() {
		t.Fatalf("the next fingerprint did not run on the kept connection: %v", err)
	}
	// One the server ended: the snapshot connects afresh.
	dead := p.conns.kept(key).PID()
	pg.SQL(t, "postgres", fmt.Sprintf("SELECT pg_terminate_backend(%d)", dead))
	for deadline := time.Now().Add(10 * time.Second); !gone(dead); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the spare's server process never ended")
		}
	}
	// pgconn learns of the end only when it next uses the connection:
	// the export fails there and a fresh connection takes the snapshot.
	if pid := snapshotPID(); pid == dead || pid == 0 {
		t.Fatalf("snapshot on server process %d after the spare (%d) was terminated", pid, dead)
	}
	// The same for the fingerprint.
	dead = p.conns.kept(key).PID()
	pg.SQL(t, "postgres", fmt.Sprintf("SELECT pg_terminate_backend(%d)", dead))
	for deadline := time.Now().Add(10 * time.Second); !gone(dead); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the kept connection's server process never ended")
		}
	}
	if fp, err := p.Fingerprint(ctx); err != nil || fp == "" || p.conns.kept(key).PID() == dead {
		t.Fatalf("fingerprint after the kept connection was terminated: %q, %v", fp, err)
	}
	// A connection inside a transaction is closed, not kept.
	inTx := p.conns.take(key)
	if _, err := inTx.Exec(ctx, "BEGIN").ReadAll(); err != nil {
		t.Fatal(err)
	}
	p.conns.put(key, inTx)
	if p.conns.kept(key) != nil {
		t.Fatal("a connection inside a transaction was kept")
	}
	// Unused, it is closed after spareKeep.
	if _, err := p.Fingerprint(ctx); err != nil {
		t.Fatal(err)
	}
	kept := p.conns.kept(key).PID()
	for deadline := time.Now().Add(spareKeep + 10*time.Second); !gone(kept); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the unused kept connection is still open after %v", spareKeep)
		}
	}
	if p.conns.idleCount() != 0 {
		t.Fatal("the keeper still holds the closed connection")
	}
}

// Two users of one source never share a connection: the second takes
// none while the first holds it, and a closed keeper keeps nothing.
func TestConnsExclusive(t *testing.T) {
	pg := sourcetest.StartPostgres(t)
	pg.CreateDB(t, "exdb")
	p := openPG(t, pg.URL("exdb"))
	ctx := context.Background()
	if _, err := p.Fingerprint(ctx); err != nil {
		t.Fatal(err)
	}
	key := p.connKey()
	a := p.conns.take(key)
	if a == nil {
		t.Fatal("nothing kept")
	}
	if b := p.conns.take(key); b != nil {
		t.Fatal("a kept connection was given out twice")
	}
	p.conns.Close()
	p.conns.put(key, a)
	if p.conns.idleCount() != 0 {
		t.Fatal("a closed keeper kept a connection")
	}
	for deadline := time.Now().Add(10 * time.Second); pg.SQL(t, "postgres", fmt.Sprintf("SELECT count(*) FROM pg_stat_activity WHERE pid = %d", a.PID())) != "0"; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the connection given to a closed keeper stayed open")
		}
	}
}
