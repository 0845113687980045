package source

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/jackc/pgx/v5/pgconn"
)

// pgConnectTimeout is what the tools get as PGCONNECT_TIMEOUT.
const pgConnectTimeout = 10 * time.Second

// connect opens a wire-protocol connection to database db, in process
// (no psql: that costs a process start and a catalog load), with the
// connection parameters the tools get: conninfo's URL (and the PG*
// environment, read by libpq and pgconn alike), the password set apart,
// the same connect timeout. Errors say what failed, never with the
// password in them.
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
// value of its last statement, which must be one row of one column,
// trimmed like psql -A -t output ("" for NULL).
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

// spareKeep is how long a spare connection waits for its Snapshot.
const spareKeep = 5 * time.Second

// spareConn holds the fingerprint's connection for the snapshot a commit
// takes right after it: a connection start costs the server a process
// and a catalog load, as much as the fingerprint's query and more than
// the export, and under load it is a tenth of a second. One not taken
// within spareKeep is closed.
type spareConn struct {
	mu    sync.Mutex
	conn  *pgconn.PgConn
	timer *time.Timer
}

func (s *spareConn) keep(conn *pgconn.PgConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropLocked()
	s.conn = conn
	s.timer = time.AfterFunc(spareKeep, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.conn == conn {
			s.dropLocked()
		}
	})
}

// take returns the spare connection, or nil when there is none alive.
func (s *spareConn) take() *pgconn.PgConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	conn := s.conn
	if conn == nil {
		return nil
	}
	s.timer.Stop()
	s.conn, s.timer = nil, nil
	if conn.IsClosed() || conn.TxStatus() != 'I' {
		closeConn(conn)
		return nil
	}
	return conn
}

func (s *spareConn) dropLocked() {
	if s.conn != nil {
		s.timer.Stop()
		closeConn(s.conn)
		s.conn, s.timer = nil, nil
	}
}

func closeConn(conn *pgconn.PgConn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	conn.Close(ctx)
}
