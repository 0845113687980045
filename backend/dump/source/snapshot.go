package source

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"

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

// toolSnapshot is a state a tool read, or reads in the background, into
// a scratch directory: mysqldump's transaction and redis-cli's fetch of
// the server's fork (both held back by a holdProxy until the instant),
// sqlite3's backup inside a read transaction.
type toolSnapshot struct {
	at     time.Time
	dir    string // removed by Close
	cancel context.CancelFunc
	exited chan struct{} // closed when the tool has ended, with err
	err    error
	proxy  *holdProxy                                           // nil: the tool takes its read as it starts
	rest   func(ctx context.Context, w io.Writer) (Info, error) // the dump, once the tool succeeded
}

// startTool starts t in the background (its output set by the caller,
// into dir) and returns its snapshot, timed at the start; rest turns what
// it left in dir into the dump. dir is removed when starting fails.
func startTool(ctx context.Context, t *tool, dir string, closeOut func(), rest func(ctx context.Context, w io.Writer) (Info, error)) (*toolSnapshot, error) {
	path, err := lookTool(t.name)
	if err != nil {
		closeOut()
		os.RemoveAll(dir)
		return nil, err
	}
	t.path = path
	ctx, cancel := context.WithCancel(ctx)
	s := &toolSnapshot{at: time.Now().UTC(), dir: dir, cancel: cancel, exited: make(chan struct{}), rest: rest}
	go func() {
		s.err = t.run(ctx)
		closeOut()
		close(s.exited)
	}()
	return s, nil
}

// startHeld starts t through p (t already talks to p's socket), and
// returns its snapshot once p has sent the held command at the instant
// ready allows.
func startHeld(ctx context.Context, t *tool, p *holdProxy, dir string, ready func(), closeOut func(), rest func(ctx context.Context, w io.Writer) (Info, error)) (Snapshot, error) {
	s, err := startTool(ctx, t, dir, closeOut, rest)
	if err != nil {
		p.Close()
		return nil, err
	}
	s.proxy = p
	at, err := p.take(ctx, s.exited, ready, t.name)
	if errors.Is(err, errNeverHeld) && s.wait() == nil {
		// It ran through without the command showing (a TLS connection
		// hides it): its read was taken as it started.
		return s, nil
	}
	if err != nil {
		s.Close()
		if terr := s.wait(); terr != nil {
			return nil, terr // the tool's own message says more
		}
		return nil, err
	}
	s.at = at
	return s, nil
}

func (s *toolSnapshot) Time() time.Time { return s.at }

func (s *toolSnapshot) wait() error {
	<-s.exited
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
	if s.proxy != nil {
		s.proxy.Close()
	}
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

// Snapshot implements Snapshotter, on the fingerprint's connection when
// it kept one.
func (p *postgres) Snapshot(ctx context.Context, scratch string, ready func()) (Snapshot, error) {
	var id string
	var at time.Time
	conn, err := p.onConn(ctx, func(conn *pgconn.PgConn) (err error) {
		if ready != nil {
			ready() // the first time: a retry's connection is ready at once
			ready = nil
		}
		id, at, err = p.export(ctx, conn)
		return err
	})
	if err != nil {
		if ready != nil {
			ready()
		}
		return nil, fmt.Errorf("exporting a snapshot of %s: %w", p.c.Database, err)
	}
	return &pgSnapshot{p: p, conn: conn, id: id, at: at}, nil
}

// export starts a repeatable-read transaction on conn and exports its
// snapshot. The snapshot is taken as the transaction's first statement,
// the export, starts: statement_timestamp() on the server's clock, kept
// within the query's sending and its reply (another machine's clock may
// be off; a busy one may run the statement late).
func (p *postgres) export(ctx context.Context, conn *pgconn.PgConn) (string, time.Time, error) {
	sent := time.Now().UTC()
	out, err := p.lastValue(ctx, conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT pg_export_snapshot() || ' ' || (extract(epoch FROM statement_timestamp()) * 1000000)::bigint;")
	replied := time.Now().UTC()
	if err != nil {
		return "", time.Time{}, err
	}
	id, micros, _ := strings.Cut(out, " ")
	at := sent
	if us, err := strconv.ParseInt(micros, 10, 64); err == nil {
		if srv := time.UnixMicro(us).UTC(); srv.After(sent) {
			at = srv
			if srv.After(replied) {
				at = replied
			}
		}
	}
	return id, at, nil
}

func (s *pgSnapshot) Time() time.Time { return s.at }

func (s *pgSnapshot) Dump(ctx context.Context, w io.Writer) (Info, error) {
	info, err := s.p.dump(ctx, w, "--snapshot="+s.id)
	info.Time = s.at
	return info, err
}

// Close ends the exporting transaction (the server drops the snapshot)
// and gives the connection back to be kept warm; one that cannot end it
// is closed, which ends it too.
func (s *pgSnapshot) Close() error {
	if s.conn == nil {
		return nil
	}
	conn := s.conn
	s.conn = nil
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := conn.Exec(ctx, "ROLLBACK").ReadAll(); err != nil {
		return conn.Close(ctx)
	}
	s.p.conns.put(s.p.connKey(), conn)
	return nil
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
	p, err := newHoldProxy("START TRANSACTION", func() (net.Conn, error) {
		if m.c.Socket != "" {
			return net.Dial("unix", m.c.Socket)
		}
		return net.Dial("tcp", net.JoinHostPort(m.c.Host, cmp.Or(m.c.Port, "3306")))
	})
	if err != nil {
		f.Close()
		os.RemoveAll(dir)
		return nil, err
	}
	via := *m.c
	via.Socket = p.path
	t := (&mysql{c: &via}).dumpTool()
	t.stdout = f
	return startHeld(ctx, t, p, dir, ready, func() { f.Close() }, func(ctx context.Context, w io.Writer) (Info, error) {
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
	p, err := newHoldProxy("SYNC\r\n", func() (net.Conn, error) {
		if r.c.Socket != "" {
			return net.Dial("unix", r.c.Socket)
		}
		return net.Dial("tcp", net.JoinHostPort(r.c.Host, cmp.Or(r.c.Port, "6379")))
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	via := *r.c
	via.Socket = p.path
	return startHeld(ctx, (&redis{c: &via}).cli("--rdb", file), p, dir, ready, func() {}, func(ctx context.Context, w io.Writer) (Info, error) {
		info, err := r.versions(ctx)
		if err != nil {
			return info, err
		}
		return info, writeRDB(file, w)
	})
}

// Snapshot implements Snapshotter: one sqlite3 shell, started ahead,
// opens a read transaction at the instant (its first read fixes what it
// sees, in WAL and rollback-journal modes alike) and copies the database
// with the backup API inside that transaction into scratch.
func (s *sqlite) Snapshot(ctx context.Context, scratch string, ready func()) (Snapshot, error) {
	if ok, err := s.Exists(ctx); err != nil || !ok {
		return nil, s.missing(err)
	}
	path, err := lookTool("sqlite3")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(scratch, ".dm-sqlite-")
	if err != nil {
		return nil, err
	}
	copyDB := dir + "/copy.db"
	at, err := s.backupHeld(ctx, path, copyDB, ready)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	ended := make(chan struct{})
	close(ended)
	return &toolSnapshot{at: at, dir: dir, cancel: func() {}, exited: ended, rest: func(ctx context.Context, w io.Writer) (Info, error) {
		info, err := s.versions(ctx)
		if err != nil {
			return info, err
		}
		return info, s.dumpCopy(ctx, copyDB, w)
	}}, nil
}

// sqliteDone is what the shell prints once the backup is written.
const sqliteDone = "dm-backup-done"

// backupHeld runs the held read transaction and the backup, returning
// the instant of the transaction's first read.
func (s *sqlite) backupHeld(ctx context.Context, path, copyDB string, ready func()) (time.Time, error) {
	cmd := exec.CommandContext(ctx, path, "-bail", "-batch", s.c.Database)
	var stderr tailBuffer
	cmd.Stderr = &stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return time.Time{}, err
	}
	outp, err := cmd.StdoutPipe()
	if err != nil {
		return time.Time{}, err
	}
	if err := cmd.Start(); err != nil {
		return time.Time{}, fmt.Errorf("%w: running sqlite3: %v", dotmesh.ErrUnavailable, err)
	}
	out := bufio.NewReader(outp)
	failed := func(what string, err error) error {
		in.Close()
		io.Copy(io.Discard, out)
		werr := cmd.Wait()
		msg := strings.Join(strings.Fields(stderr.String()), " ")
		if msg == "" {
			msg = fmt.Sprint(cmp.Or(werr, err))
		}
		return fmt.Errorf("%w: sqlite3 %s of %s failed: %s", dotmesh.ErrUnavailable, what, s.c.Database, msg)
	}
	// Warm up (the shell starts, opens and reads the schema) outside the
	// transaction, so that the instant costs one statement.
	io.WriteString(in, "PRAGMA schema_version;\n")
	if _, err := out.ReadString('\n'); err != nil {
		return time.Time{}, failed("open", err)
	}
	if ready != nil {
		ready()
	}
	at := time.Now().UTC() // as pg's: the sending
	io.WriteString(in, "BEGIN; SELECT count(*) FROM sqlite_master;\n")
	if _, err := out.ReadString('\n'); err != nil {
		return time.Time{}, failed("read transaction", err)
	}
	io.WriteString(in, ".backup "+quoteDot(copyDB)+"\n.print "+sqliteDone+"\nCOMMIT;\n")
	if line, err := out.ReadString('\n'); err != nil || strings.TrimSpace(line) != sqliteDone {
		return time.Time{}, failed("backup", fmt.Errorf("printed %q (%v)", line, err))
	}
	in.Close()
	io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil {
		return time.Time{}, failed("backup", err)
	}
	return at, nil
}
