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

// spareKeep is how long a driver's own connection (Open: no Conns
// shared with other drivers) waits for the next use.
const spareKeep = 5 * time.Second

// Conns keeps warm PostgreSQL connections between uses, one idle
// connection per source (its URL with the password: the credentials stay
// the source's), for a node's life: a connection start costs the server
// a process and a catalog load, and its first fingerprint query loads the
// catalogs it reads; together, on a busy 2-core machine, a tenth to a
// third of a second of every commit (measured: connect 80-155 ms, the
// first query 75-216 ms, the same query on the warm connection 2-32 ms at
// load 15). A connection is taken for one use at a time (never shared by
// two commits), given back only when healthy and outside a transaction,
// and closed after idle. The zero value is not usable: see NewConns.
type Conns struct {
	idle   time.Duration
	mu     sync.Mutex
	conns  map[string]*idleConn
	closed bool
}

type idleConn struct {
	conn  *pgconn.PgConn
	timer *time.Timer
}

// NewConns returns a keeper that closes a connection left idle for idle.
func NewConns(idle time.Duration) *Conns {
	return &Conns{idle: idle, conns: map[string]*idleConn{}}
}

// put keeps conn for key; one already kept for key is closed (the newer
// one is the one proved alive last). A broken connection, one inside a
// transaction or one given to a closed keeper is closed instead.
func (c *Conns) put(key string, conn *pgconn.PgConn) {
	if conn.IsClosed() || conn.TxStatus() != 'I' {
		closeConn(conn)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		go closeConn(conn)
		return
	}
	c.dropLocked(key)
	ic := &idleConn{conn: conn}
	ic.timer = time.AfterFunc(c.idle, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.conns[key] == ic {
			c.dropLocked(key)
		}
	})
	c.conns[key] = ic
}

// take returns the connection kept for key, now the caller's alone, or
// nil when there is none alive.
func (c *Conns) take(key string) *pgconn.PgConn {
	c.mu.Lock()
	ic := c.conns[key]
	if ic != nil {
		ic.timer.Stop()
		delete(c.conns, key)
	}
	c.mu.Unlock()
	if ic == nil {
		return nil
	}
	if ic.conn.IsClosed() || ic.conn.TxStatus() != 'I' {
		closeConn(ic.conn)
		return nil
	}
	return ic.conn
}

// Close closes every kept connection; later ones given back are closed.
func (c *Conns) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for key := range c.conns {
		c.dropLocked(key)
	}
}

// dropLocked closes key's idle connection (in the background: Close
// sends a Terminate, which may wait on a slow socket) and forgets it.
func (c *Conns) dropLocked(key string) {
	if ic := c.conns[key]; ic != nil {
		ic.timer.Stop()
		delete(c.conns, key)
		go closeConn(ic.conn)
	}
}

// idleCount is how many connections are kept, for tests.
func (c *Conns) idleCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.conns)
}

// kept returns key's idle connection without taking it, for tests.
func (c *Conns) kept(key string) *pgconn.PgConn {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ic := c.conns[key]; ic != nil {
		return ic.conn
	}
	return nil
}

// connKey is what tells sources' connections apart in Conns: everything
// the connection is made of, the password included (in memory only).
func (p *postgres) connKey() string { return p.c.raw + "\x00" + p.c.Password }

// warmConn returns a connection to the source's database: a kept one
// (warm: true) or a new one.
func (p *postgres) warmConn(ctx context.Context) (conn *pgconn.PgConn, warm bool, err error) {
	if conn = p.conns.take(p.connKey()); conn != nil {
		return conn, true, nil
	}
	conn, err = p.connect(ctx, p.c.Database)
	return conn, false, err
}

// onConn runs f on a connection from warmConn; when a kept connection
// fails (the server ended it since: a restart, pg_terminate_backend, a
// forced drop) a new one decides. It returns the connection f succeeded
// on; on an error the connection is closed.
func (p *postgres) onConn(ctx context.Context, f func(*pgconn.PgConn) error) (*pgconn.PgConn, error) {
	conn, warm, err := p.warmConn(ctx)
	if err != nil {
		return nil, err
	}
	err = f(conn)
	if err != nil && warm && ctx.Err() == nil {
		closeConn(conn)
		if conn, err = p.connect(ctx, p.c.Database); err != nil {
			return nil, err
		}
		err = f(conn)
	}
	if err != nil {
		closeConn(conn)
		return nil, err
	}
	return conn, nil
}

func closeConn(conn *pgconn.PgConn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	conn.Close(ctx)
}
