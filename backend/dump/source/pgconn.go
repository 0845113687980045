package source

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/jackc/pgx/v5/pgconn"
)

// pgConnectTimeout is what the tools get as PGCONNECT_TIMEOUT.
const pgConnectTimeout = 10 * time.Second

// queryValue runs one statement in database db over the wire protocol,
// in process (no psql: that costs a process start and a catalog load),
// with the connection parameters the tools get: conninfo's URL (and the
// PG* environment, read by libpq and pgconn alike), the password set
// apart, the same connect timeout. The statement must return one row of
// one column; its text is returned trimmed like psql -A -t output, ""
// for NULL. Errors say what failed, never with the password in them.
func (p *postgres) queryValue(ctx context.Context, db, sql string) (string, error) {
	conn, err := p.connect(ctx, db)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	return p.lastValue(ctx, conn, sql)
}

// connect opens a wire-protocol connection to database db (see queryValue).
func (p *postgres) connect(ctx context.Context, db string) (*pgconn.PgConn, error) {
	cfg, err := pgconn.ParseConfig(p.conninfo(db))
	if err != nil {
		return nil, p.pgErr(ctx, "connection parameters", err)
	}
	if p.c.Password != "" { // else PGPASSWORD or ~/.pgpass, as for the tools
		cfg.Password = p.c.Password
	}
	cfg.ConnectTimeout = pgConnectTimeout
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, p.pgErr(ctx, "connecting", err)
	}
	return conn, nil
}

// lastValue runs sql (one or more statements) on conn and returns the
// value of its last statement, which must be one row of one column.
func (p *postgres) lastValue(ctx context.Context, conn *pgconn.PgConn, sql string) (string, error) {
	results, err := conn.Exec(ctx, sql).ReadAll() // simple protocol, one round trip
	if err != nil {
		return "", p.pgErr(ctx, "query", err)
	}
	if len(results) == 0 || len(results[len(results)-1].Rows) != 1 || len(results[len(results)-1].Rows[0]) != 1 {
		n := 0
		for _, r := range results {
			n += len(r.Rows)
		}
		return "", fmt.Errorf("%w: query returned %d results with %d rows, not one value", dotmesh.ErrUnavailable, len(results), n)
	}
	return strings.TrimSpace(string(results[len(results)-1].Rows[0][0])), nil
}

// pgErr turns a pgconn error into one without the password (pgconn's
// own messages do not carry it, but they are not ours to trust): its
// message, redacted, never the error itself.
func (p *postgres) pgErr(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", what, ctx.Err())
	}
	msg := strings.Join(strings.Fields(err.Error()), " ")
	if pw := p.c.Password; pw != "" {
		for _, s := range []string{pw, url.QueryEscape(pw), url.PathEscape(pw)} {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
		}
	}
	return fmt.Errorf("%w: %s: %s", dotmesh.ErrUnavailable, what, msg)
}
