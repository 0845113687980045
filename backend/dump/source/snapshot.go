package source

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Snapshotter is a Driver that can fix the state its dump will have apart
// from streaming the dump, so that a commit of several sources starts
// every source's consistent read together (one instant across databases)
// and streams the dumps afterwards, one after another.
type Snapshotter interface {
	// Snapshot prepares what it can ahead (a connection, a directory),
	// calls ready (when not nil), which returns when every source of the
	// commit is prepared too, then fixes the database's state and holds
	// it (an open transaction, a tool reading in the background, a copy)
	// until the Snapshot is closed. scratch is a private directory for
	// its files ("": the system's temporary directory).
	Snapshot(ctx context.Context, scratch string, ready func()) (Snapshot, error)
}

var (
	_ Snapshotter = (*postgres)(nil)
	_ Snapshotter = (*mysql)(nil)
	_ Snapshotter = (*redis)(nil)
	_ Snapshotter = (*sqlite)(nil)
)

// Snapshot is a database state fixed at one instant.
type Snapshot interface {
	// Time is when the state was fixed (UTC).
	Time() time.Time
	// Dump writes the state's dump to w, as Driver.Dump; called once.
	Dump(ctx context.Context, w io.Writer) (Info, error)
	// Close releases what holds the state: after Dump, after a failed
	// Dump, or instead of one. It may be called more than once.
	Close() error
}

// toolSnapshot is a state a tool reads in the background into a scratch
// directory: mysqldump's --single-transaction, redis-cli's --rdb (the
// server's fork) and sqlite3's .backup (a read transaction) each take
// their consistent read as they start, so Time is the tool's start.
type toolSnapshot struct {
	at     time.Time
	dir    string // removed by Close
	cancel context.CancelFunc
	done   chan error
	err    error
	ended  bool
	rest   func(ctx context.Context, w io.Writer) (Info, error) // the dump, once the tool succeeded
}

// startTool starts t in the background (its output set by the caller,
// into dir) and returns its snapshot; rest turns what it left in dir into
// the dump. dir is removed when starting fails.
func startTool(ctx context.Context, t *tool, dir string, ready func(), closeOut func(), rest func(ctx context.Context, w io.Writer) (Info, error)) (*toolSnapshot, error) {
	path, err := lookTool(t.name) // before the clock: the instant is the start
	if err != nil {
		closeOut()
		os.RemoveAll(dir)
		return nil, err
	}
	t.path = path
	if ready != nil {
		ready()
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &toolSnapshot{at: time.Now().UTC(), dir: dir, cancel: cancel, done: make(chan error, 1), rest: rest}
	go func() {
		err := t.run(ctx)
		closeOut()
		s.done <- err
	}()
	return s, nil
}

func (s *toolSnapshot) Time() time.Time { return s.at }

func (s *toolSnapshot) wait() error {
	if !s.ended {
		s.err, s.ended = <-s.done, true
	}
	return s.err
}

func (s *toolSnapshot) Dump(ctx context.Context, w io.Writer) (Info, error) {
	if err := s.wait(); err != nil {
		return Info{Time: s.at}, err
	}
	info, err := s.rest(ctx, w)
	info.Time = s.at
	return info, err
}

func (s *toolSnapshot) Close() error {
	s.cancel()
	s.wait()
	return os.RemoveAll(s.dir)
}

// pgSnapshot is a PostgreSQL snapshot exported by a transaction this
// process holds open until Close; pg_dump imports it (--snapshot), so
// the dump shows the database as of the export however late it runs.
type pgSnapshot struct {
	p    *postgres
	conn *pgconn.PgConn
	id   string
	at   time.Time
}

// Snapshot implements Snapshotter.
func (p *postgres) Snapshot(ctx context.Context, scratch string, ready func()) (Snapshot, error) {
	conn, err := p.connect(ctx, p.c.Database)
	if err != nil {
		return nil, fmt.Errorf("exporting a snapshot of %s: %w", p.c.Database, err)
	}
	if ready != nil {
		ready()
	}
	// The snapshot is taken by the transaction's first query: the export.
	id, err := p.lastValue(ctx, conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT pg_export_snapshot();")
	at := time.Now().UTC()
	if err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("exporting a snapshot of %s: %w", p.c.Database, err)
	}
	return &pgSnapshot{p: p, conn: conn, id: id, at: at}, nil
}

func (s *pgSnapshot) Time() time.Time { return s.at }

func (s *pgSnapshot) Dump(ctx context.Context, w io.Writer) (Info, error) {
	info, err := s.p.dump(ctx, w, "--snapshot="+s.id)
	info.Time = s.at
	return info, err
}

func (s *pgSnapshot) Close() error {
	if s.conn == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.conn.Close(ctx) // ends the transaction: the server drops the snapshot
	s.conn = nil
	return err
}

// Snapshot implements Snapshotter: mysqldump runs to a file in scratch.
// Its consistent snapshot (START TRANSACTION WITH CONSISTENT SNAPSHOT)
// cannot be shared with a later process, and a dump that waited on a
// full pipe would hit the server's net_write_timeout, so it runs now.
func (m *mysql) Snapshot(ctx context.Context, scratch string, ready func()) (Snapshot, error) {
	dir, err := os.MkdirTemp(scratch, ".dm-mysql-")
	if err != nil {
		return nil, err
	}
	f, err := os.Create(dir + "/dump.sql")
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	t := m.dumpTool()
	t.stdout = f
	return startTool(ctx, t, dir, ready, func() { f.Close() }, func(ctx context.Context, w io.Writer) (Info, error) {
		info, err := m.versions(ctx)
		if err != nil {
			return info, err
		}
		in, err := os.Open(f.Name())
		if err != nil {
			return info, err
		}
		defer in.Close()
		var tail tailBuffer
		if _, err := io.Copy(io.MultiWriter(w, &tail), in); err != nil {
			return info, fmt.Errorf("mysqldump output: %w", err)
		}
		return info, m.complete(tail.b)
	})
}

// Snapshot implements Snapshotter: redis-cli fetches a fresh RDB (the
// server forks as it is asked) into scratch.
func (r *redis) Snapshot(ctx context.Context, scratch string, ready func()) (Snapshot, error) {
	dir, err := os.MkdirTemp(scratch, ".dm-redis-")
	if err != nil {
		return nil, err
	}
	file := dir + "/dump.rdb"
	return startTool(ctx, r.cli("--rdb", file), dir, ready, func() {}, func(ctx context.Context, w io.Writer) (Info, error) {
		info, err := r.versions(ctx)
		if err != nil {
			return info, err
		}
		return info, writeRDB(file, w)
	})
}

// Snapshot implements Snapshotter: sqlite3 copies the database with the
// backup API (one read transaction) into scratch.
func (s *sqlite) Snapshot(ctx context.Context, scratch string, ready func()) (Snapshot, error) {
	if ok, err := s.Exists(ctx); err != nil || !ok {
		return nil, s.missing(err)
	}
	dir, err := os.MkdirTemp(scratch, ".dm-sqlite-")
	if err != nil {
		return nil, err
	}
	copyDB := dir + "/copy.db"
	return startTool(ctx, s.shell(nil, nil, s.c.Database, ".backup "+quoteDot(copyDB)), dir, ready, func() {}, func(ctx context.Context, w io.Writer) (Info, error) {
		info, err := s.versions(ctx)
		if err != nil {
			return info, err
		}
		return info, s.dumpCopy(ctx, copyDB, w)
	})
}
