package source

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/jackc/pgx/v5/pgconn"
)

// postgres dumps with pg_dump in plain SQL (one transaction: a consistent
// snapshot), restores by dropping and recreating the database and running
// the dump with psql in one transaction, stopping at the first error.
type postgres struct {
	c     *Conn
	conns *Conns // warm connections: the fingerprint's, for the Snapshot that follows and the next commit
}

func (p *postgres) FileName() string { return "postgresql.sql" }

// conninfo is the URL libpq gets: the given one without the password
// (that goes in PGPASSWORD, never on a command line), for database db.
func (p *postgres) conninfo(db string) string {
	u, _ := url.Parse(p.c.raw) // parsed once already by Parse
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	u.Path = "/" + db
	u.RawPath = ""
	return u.String()
}

func (p *postgres) tool(name string, db string, args ...string) *tool {
	t := &tool{name: name, args: append(args, "--dbname="+p.conninfo(db)), secret: p.c.Password}
	if name == "psql" {
		t.args = append([]string{"-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"}, t.args...)
	}
	t.env = []string{"PGCONNECT_TIMEOUT=10"}
	if p.c.Password != "" {
		t.env = append(t.env, "PGPASSWORD="+p.c.Password)
	}
	return t
}

// sql runs a script (with psql variables: :'db' quoted as a literal,
// :"db" as an identifier) in the maintenance database.
func (p *postgres) sql(ctx context.Context, db, script string) (string, error) {
	t := p.tool("psql", db, "-v", "db="+p.c.Database)
	t.stdin = strings.NewReader(script)
	return t.output(ctx)
}

const pgMaintenance = "postgres"

func (p *postgres) Exists(ctx context.Context) (bool, error) {
	out, err := p.sql(ctx, pgMaintenance, "SELECT count(*) FROM pg_database WHERE datname = :'db';\n")
	if err != nil {
		return false, fmt.Errorf("checking database %s: %w", p.c.Database, err)
	}
	return out == "1", nil
}

func (p *postgres) Create(ctx context.Context, schema string) error {
	if _, err := p.sql(ctx, pgMaintenance, "CREATE DATABASE :\"db\";\n"); err != nil {
		return fmt.Errorf("creating database %s: %w", p.c.Database, err)
	}
	if strings.TrimSpace(schema) == "" {
		return nil
	}
	t := p.tool("psql", p.c.Database, "--single-transaction")
	t.stdin = strings.NewReader(schema)
	if err := t.run(ctx); err != nil {
		return fmt.Errorf("loading the initial schema into %s: %w", p.c.Database, err)
	}
	return nil
}

func (p *postgres) Drop(ctx context.Context) error {
	if _, err := p.sql(ctx, pgMaintenance, "DROP DATABASE IF EXISTS :\"db\" WITH (FORCE);\n"); err != nil {
		return fmt.Errorf("dropping database %s: %w", p.c.Database, err)
	}
	return nil
}

func (p *postgres) Restore(ctx context.Context, file string) error {
	if err := p.Drop(ctx); err != nil {
		return err
	}
	if _, err := p.sql(ctx, pgMaintenance, "CREATE DATABASE :\"db\";\n"); err != nil {
		return fmt.Errorf("recreating database %s: %w", p.c.Database, err)
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	t := p.tool("psql", p.c.Database, "--single-transaction")
	t.stdin = f
	if err := t.run(ctx); err != nil {
		return fmt.Errorf("restoring database %s: %w", p.c.Database, err)
	}
	return nil
}

// pgTrailer ends every complete plain dump: its absence means truncation.
const pgTrailer = "-- PostgreSQL database dump complete"

func (p *postgres) Dump(ctx context.Context, w io.Writer) (Info, error) {
	return p.dump(ctx, w) // pg_dump's snapshot is taken as it starts
}

// dump runs pg_dump with extra arguments (an imported snapshot) into w.
func (p *postgres) dump(ctx context.Context, w io.Writer, extra ...string) (Info, error) {
	info := Info{Time: time.Now().UTC()}
	norm := newPGNormalizer(w)
	t := p.tool("pg_dump", p.c.Database, append([]string{"--format=plain", "--no-password"}, extra...)...)
	t.stdout = norm
	if err := t.run(ctx); err != nil {
		return info, err
	}
	if err := norm.Close(); err != nil {
		return info, err
	}
	if !norm.complete {
		return info, fmt.Errorf("%w: pg_dump of %s ended without %q: truncated", dotmesh.ErrUnavailable, p.c.Database, pgTrailer)
	}
	info.Tool, info.Server = norm.tool, norm.server
	return info, nil
}

// pgFingerprint changes whenever the database's dump can. The server's
// current snapshot (xmin:xmax:in-progress) moves with every transaction
// that writes and ends, in any database of the server (so also with role
// and tablespace renames), and not with what writes WAL without changing
// data: checkpoints, the standby snapshot the background writer logs
// every 15 s, hint bits, vacuum (the write-ahead log position, used
// before, moved with all of those, so an idle database often dumped
// again). A transaction that wrote but has not ended is invisible to a
// dump, and its end moves the snapshot. Sequences advanced by nextval do
// not write transactionally, so their current values are part of it; the
// server's start time and version change with a restart, a restore from
// a backup or an upgrade. Unlogged tables change without a trace, and a
// standby's state comes by replay: then there is no fingerprint.
const pgFingerprint = `SELECT CASE
  WHEN pg_is_in_recovery() THEN ''
  WHEN EXISTS (SELECT 1 FROM pg_class WHERE relpersistence = 'u' AND relkind IN ('r', 'S', 'm')) THEN ''
  ELSE concat_ws(' ', 'pg2', current_setting('server_version_num'),
    extract(epoch FROM pg_postmaster_start_time()),
    (SELECT oid FROM pg_database WHERE datname = current_database()),
    txid_current_snapshot(),
    (SELECT md5(coalesce(string_agg(format('%I.%I %s', schemaname, sequencename, coalesce(last_value::text, '-')), ',' ORDER BY schemaname, sequencename), '')) FROM pg_sequences))
END;
`

// Fingerprint implements Fingerprinter: one round trip on a warm
// connection, which it keeps for the Snapshot that follows.
func (p *postgres) Fingerprint(ctx context.Context) (string, error) {
	var out string
	conn, err := p.onConn(ctx, func(conn *pgconn.PgConn) (err error) {
		out, err = p.lastValue(ctx, conn, pgFingerprint)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("fingerprint of %s: %w", p.c.Database, err)
	}
	p.conns.put(p.connKey(), conn)
	if strings.ContainsAny(out, "\n") {
		return "", fmt.Errorf("fingerprint of %s: unexpected output %q", p.c.Database, out)
	}
	return out, nil
}

// Warm implements Warmer: a connection that has run the fingerprint's
// query once (its catalogs loaded), kept for the next commit.
func (p *postgres) Warm(ctx context.Context) error {
	_, err := p.Fingerprint(ctx)
	return err
}
