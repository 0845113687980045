package sourcetest

import (
	"bytes"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Postgres is a private PostgreSQL server on a unix socket, trust auth,
// superuser "postgres".
type Postgres struct {
	*server
	Socket string // the socket directory
	Port   int
	psql   string
}

// StartPostgres initdbs and starts a server (as the postgres user when
// running as root).
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	initdb := find(t, "postgresql", "/usr/lib/postgresql/*/bin/initdb", "initdb")
	bin := filepath.Dir(initdb)
	u := lookupUser(t, "postgres", "postgresql")
	dir := tempDir(t, "dm-pg-", u)
	data := filepath.Join(dir, "data")
	runAs(t, u, dir, initdb, "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C")
	p := &Postgres{Socket: dir, Port: FreePort(t), psql: filepath.Join(bin, "psql")}
	p.server = start(t, "postgres", u, dir, filepath.Join(bin, "postgres"), "-D", data, "-k", dir, "-p", strconv.Itoa(p.Port),
		"-c", "listen_addresses=", "-c", "fsync=off", "-c", "full_page_writes=off")
	p.server.stop = syscall.SIGINT // fast shutdown: SIGTERM waits for every session
	p.waitFor(func() error {
		return exec.Command(p.psql, "-X", "-h", dir, "-p", strconv.Itoa(p.Port), "-U", "postgres", "-d", "postgres", "-c", "SELECT 1").Run()
	})
	return p
}

// URL returns the source URL of database db.
func (p *Postgres) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@/%s?host=%s&port=%d", db, p.Socket, p.Port)
}

// SQL runs a script in db and returns psql's unaligned, tuples-only output.
func (p *Postgres) SQL(t testing.TB, db, script string) string {
	t.Helper()
	return strings.TrimSpace(command(t, script, p.psql, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
		"-h", p.Socket, "-p", strconv.Itoa(p.Port), "-U", "postgres", "-d", db))
}

// CreateDB creates a database.
func (p *Postgres) CreateDB(t testing.TB, db string) {
	t.Helper()
	p.SQL(t, "postgres", "CREATE DATABASE "+db+";")
}

// Session is an open psql session, for holding locks.
type Session struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

// Open starts psql on db and sends script; it stays open until Close.
func (p *Postgres) Open(t testing.TB, db, script string) *Session {
	t.Helper()
	cmd := exec.Command(p.psql, "-X", "-q", "-h", p.Socket, "-p", strconv.Itoa(p.Port), "-U", "postgres", "-d", db)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &Session{cmd: cmd, stdin: in}
	t.Cleanup(s.Close)
	io.WriteString(in, script+"\n")
	return s
}

// Send sends more of the script.
func (s *Session) Send(script string) { io.WriteString(s.stdin, script+"\n") }

// Close ends the session, once psql has run what it was sent.
func (s *Session) Close() {
	if s.stdin != nil {
		s.stdin.Close()
		s.stdin = nil
		s.cmd.Wait()
	}
}

// PgbenchRows is n rows of a pgbench_accounts COPY block as pg_dump
// writes them (aid, bid, abalance, an 84-space filler), in key order: the
// shape of the bench's dump, for benchmarks that need no server.
func PgbenchRows(n int) []byte {
	var b bytes.Buffer
	filler := strings.Repeat(" ", 84)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "%d\t%d\t0\t%s\n", i, (i-1)/100000+1, filler)
	}
	return b.Bytes()
}
