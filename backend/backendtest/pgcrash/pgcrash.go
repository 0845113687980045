// Package pgcrash is a crash-consistency scenario shared by the
// snapshotting backends (btrfs, zfs): PostgreSQL runs on one subdot while
// a real dotmesh.Node (Run) or the dm CLI (Scenario with a Target that
// runs it) commits, a second subdot gets plain files in step
// with the inserts, more rows follow, then the branch is reset hard to
// that commit and PostgreSQL must recover by itself to exactly a
// gap-free prefix of the rows, containing every row whose INSERT had
// returned before the commit started, and matching the files subdot (the
// commit is atomic across subdots).
//
// It needs Debian's postgresql (initdb, postgres, psql under
// /usr/lib/postgresql/*/bin) and the postgres user, and runs as root.
package pgcrash

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Target is the dot the scenario drives.
type Target interface {
	// SubdotPath returns the working directory of a subdot of the dot's
	// current branch, made on first use.
	SubdotPath(subdot string) (string, error)
	// Commit commits every subdot of the current branch at once and
	// returns the commit's id.
	Commit(message string) (string, error)
	// ResetHard resets the current branch to the commit, discarding
	// uncommitted changes.
	ResetHard(commit string) error
}

// PostgresWatcher is an optional interface of a Target that is told
// where PostgreSQL listens once it runs, before the commit: its socket
// directory (user postgres, database postgres), for a hook that
// connects to it.
type PostgresWatcher interface {
	PostgresStarted(socketDir string) error
}

// Result is what a Scenario measured: the WAL position read just before
// the commit started, and where the recovery after the reset started and
// ended replaying (0 when PostgreSQL logged no redo).
type Result struct {
	BeforeCommit, RedoStart, RedoDone uint64
}

// RedoBytes is how much WAL the recovery replayed.
func (r Result) RedoBytes() uint64 {
	if r.RedoDone < r.RedoStart {
		return 0
	}
	return r.RedoDone - r.RedoStart
}

// Run runs the scenario on be, through a Node that takes be over and
// closes it at the end of the test.
func Run(t *testing.T, be dotmesh.StorageBackend) {
	ctx := context.Background()
	store, err := bboltstore.Open(filepath.Join(t.TempDir(), "registry.db"), bboltstore.Options{})
	if err != nil {
		t.Fatalf("open bbolt store: %v", err)
	}
	node, err := dotmesh.NewNode(ctx, dotmesh.Options{Store: store, Backends: []dotmesh.StorageBackend{be}})
	if err != nil {
		store.Close()
		be.Close()
		t.Fatalf("NewNode: %v", err)
	}
	t.Cleanup(func() { node.Close() })
	name := dotmesh.DotName{Namespace: dotmesh.DefaultNamespace, Name: "pgcrash"}
	if _, err := node.CreateDot(ctx, name, dotmesh.CreateDotOptions{Backend: be.Name()}); err != nil {
		t.Fatalf("CreateDot: %v", err)
	}
	Scenario(t, nodeTarget{ctx, node, name})
}

// nodeTarget drives a dot of a Node.
type nodeTarget struct {
	ctx  context.Context
	node *dotmesh.Node
	name dotmesh.DotName
}

func (n nodeTarget) SubdotPath(s string) (string, error) {
	return n.node.SubdotPath(n.ctx, dotmesh.VolumeName{Dot: n.name, Subdot: s})
}

func (n nodeTarget) Commit(msg string) (string, error) {
	c, err := n.node.Commit(n.ctx, n.name, "", dotmesh.CommitOptions{Message: msg, Author: "pgcrash", AllowEmpty: true}) // a commit at each step, changed or not
	if err != nil {
		return "", err
	}
	return string(c.ID), nil
}

func (n nodeTarget) ResetHard(commit string) error {
	_, err := n.node.Reset(n.ctx, n.name, "", commit, dotmesh.ResetOptions{Hard: true})
	return err
}

// Scenario runs the scenario on the dot of target: subdots "db"
// (PostgreSQL's data directory) and "files". Postgres runs as the
// postgres user, on a unix socket only, and is stopped by PID at the end
// of the test even when it fails.
func Scenario(t *testing.T, target Target) Result {
	var res Result
	bin := findPostgres(t)
	uid, gid := postgresUser(t)
	subdot := func(s string) string {
		t.Helper()
		p, err := target.SubdotPath(s)
		if err != nil {
			t.Fatalf("subdot %s: %v", s, err)
		}
		return p
	}
	dbDir, filesDir := subdot("db"), subdot("files")
	if err := makeTraversable(dbDir); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dbDir, int(uid), int(gid)); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(filesDir, "rows"), 0o755); err != nil {
		t.Fatal(err)
	}

	p := &postgres{t: t, bin: bin, uid: uid, gid: gid, data: filepath.Join(dbDir, "pgdata")}
	p.sock = socketDir(t, uid, gid)
	p.initdb()
	p.start()
	p.exec("CREATE TABLE t (id integer PRIMARY KEY)")
	if w, ok := target.(PostgresWatcher); ok {
		if err := w.PostgresStarted(p.sock); err != nil {
			t.Fatalf("telling the target PostgreSQL runs: %v", err)
		}
	}

	w := p.writer(filepath.Join(filesDir, "rows"))
	waitFor(t, "30 rows before the commit", func() bool { return w.last.Load() >= 30 })
	k0 := w.last.Load() // every row up to k0 has returned
	res.BeforeCommit = parseLSN(p.query("SELECT pg_current_wal_insert_lsn()"))
	c, err := target.Commit("postgres running")
	if err != nil {
		w.stop()
		t.Fatalf("Commit while postgres runs: %v", err)
	}
	k1 := w.last.Load()
	waitFor(t, "30 rows after the commit", func() bool { return w.last.Load() >= k1+30 })
	n := w.stop()
	p.stop()
	t.Logf("rows: %d returned before the commit, %d when it returned, %d in all", k0, k1, n)

	if err := target.ResetHard(c); err != nil {
		t.Fatalf("reset --hard to %s: %v", c, err)
	}
	if got := subdot("db"); got != dbDir {
		t.Logf("db subdot moved from %s to %s", dbDir, got)
		p.data = filepath.Join(got, "pgdata")
	}
	p.start()
	log := p.logText()
	if !strings.Contains(log, "automatic recovery in progress") && !strings.Contains(log, "was interrupted") {
		t.Errorf("postgres did not recover from a crash image; its log:\n%s", log)
	}
	res.RedoStart, res.RedoDone = logLSN(log, "redo starts at "), logLSN(log, "redo done at ")
	row := strings.Split(p.query("SELECT count(*), coalesce(min(id), 0), coalesce(max(id), 0) FROM t"), "|")
	count, _ := strconv.ParseInt(row[0], 10, 64)
	lo, _ := strconv.ParseInt(row[1], 10, 64)
	k, _ := strconv.ParseInt(row[2], 10, 64)
	m := maxRowFile(t, filepath.Join(subdot("files"), "rows"))
	t.Logf("after reset: %d rows, ids %d..%d; files subdot has rows up to %d", count, lo, k, m)
	switch {
	case count != k || (k > 0 && lo != 1):
		t.Errorf("rows are not a gap-free prefix 1..k: count %d, min %d, max %d", count, lo, k)
	case k < k0:
		t.Errorf("rows %d..%d returned before the commit started but are missing", k+1, k0)
	case k >= n:
		t.Errorf("the commit holds all %d rows, including those inserted after it", n)
	case k != m && k != m+1:
		t.Errorf("subdots are from different instants: db has rows up to %d, files up to %d (want %d or %d)", k, m, m, m+1)
	}
	p.stop()
	t.Logf("WAL: %X before the commit; recovery replayed %X..%X (%d bytes)", res.BeforeCommit, res.RedoStart, res.RedoDone, res.RedoBytes())
	return res
}

// parseLSN reads a WAL position as PostgreSQL writes it (16/B374D848).
func parseLSN(s string) uint64 {
	hi, lo, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return 0
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0
	}
	return h<<32 | l
}

// logLSN finds the WAL position after prefix in a server log, 0 if none.
func logLSN(log, prefix string) uint64 {
	i := strings.Index(log, prefix)
	if i < 0 {
		return 0
	}
	rest := log[i+len(prefix):]
	if j := strings.IndexAny(rest, " ,\n"); j >= 0 {
		rest = rest[:j]
	}
	return parseLSN(rest)
}

func findPostgres(t *testing.T) string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	t.Fatal("postgresql is not installed: no /usr/lib/postgresql/*/bin/initdb (apt-get install postgresql)")
	return ""
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func postgresUser(t *testing.T) (uint32, uint32) {
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("no postgres user (apt-get install postgresql makes it): %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if os.Geteuid() != 0 {
		t.Fatal("the PostgreSQL crash test runs postgres as the postgres user and needs root")
	}
	return uint32(uid), uint32(gid)
}

// makeTraversable lets the postgres user reach dir: test temp directories
// are created 0700. A stable path (`dm path`) is a symlink into the
// backend's tree, so the directories on the way to its target count too.
func makeTraversable(dir string) error {
	if err := traverse(dir); err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return err
	}
	return traverse(real)
}

func traverse(dir string) error {
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return err
		}
		if st.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(d, st.Mode().Perm()|0o011); err != nil {
				return err
			}
		}
		if d == "/" {
			return nil
		}
	}
}

// socketDir is a short path in /tmp owned by postgres, for its socket.
func socketDir(t *testing.T, uid, gid uint32) string {
	d, err := os.MkdirTemp("", "pgcrash-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if err := os.Chown(d, int(uid), int(gid)); err != nil {
		t.Fatal(err)
	}
	return d
}

func waitFor(t *testing.T, what string, ok func() bool) {
	deadline := time.Now().Add(2 * time.Minute)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func maxRowFile(t *testing.T, dir string) int64 {
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var m int64
	for _, e := range ents {
		if n, err := strconv.ParseInt(e.Name(), 10, 64); err == nil && n > m {
			m = n
		}
	}
	return m
}

// postgres is one PostgreSQL server on a unix socket only.
type postgres struct {
	t        *testing.T
	bin      string
	uid, gid uint32
	data     string
	sock     string
	cmd      *exec.Cmd
	done     chan struct{}
	log      *os.File
}

func (p *postgres) asPostgres(cmd *exec.Cmd) *exec.Cmd {
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: p.uid, Gid: p.gid}}
	cmd.Env = []string{"PATH=" + p.bin + ":/usr/bin:/bin", "LANG=C", "HOME=" + p.sock}
	cmd.Dir = p.sock
	return cmd
}

func (p *postgres) initdb() {
	cmd := p.asPostgres(exec.Command(filepath.Join(p.bin, "initdb"), "-D", p.data, "-U", "postgres",
		"--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"))
	if out, err := cmd.CombinedOutput(); err != nil {
		p.t.Fatalf("initdb: %v\n%s", err, out)
	}
}

func (p *postgres) start() {
	t := p.t
	if p.log == nil {
		f, err := os.CreateTemp(t.TempDir(), "postgres-*.log")
		if err != nil {
			t.Fatal(err)
		}
		p.log = f
		t.Cleanup(func() { f.Close() })
	}
	p.log.Truncate(0)
	p.log.Seek(0, io.SeekStart)
	cmd := p.asPostgres(exec.Command(filepath.Join(p.bin, "postgres"), "-D", p.data,
		"-c", "listen_addresses=", "-c", "unix_socket_directories="+p.sock))
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start postgres: %v", err)
	}
	p.cmd, p.done = cmd, make(chan struct{})
	go func(done chan struct{}) { cmd.Wait(); close(done) }(p.done)
	pid := cmd.Process.Pid
	t.Cleanup(func() { stopPID(pid, p.done) })
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if _, err := p.psql("SELECT 1"); err == nil {
			return
		}
		select {
		case <-p.done:
			t.Fatalf("postgres exited while starting; its log:\n%s", p.logText())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("postgres did not accept connections; its log:\n%s", p.logText())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stopPID stops the postmaster: fast shutdown, then SIGKILL if it hangs.
func stopPID(pid int, done chan struct{}) {
	select {
	case <-done:
		return
	default:
	}
	syscall.Kill(pid, syscall.SIGINT)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		syscall.Kill(pid, syscall.SIGKILL)
		<-done
	}
}

func (p *postgres) stop() {
	if p.cmd != nil {
		stopPID(p.cmd.Process.Pid, p.done)
		p.cmd = nil
	}
}

func (p *postgres) logText() string {
	b, _ := os.ReadFile(p.log.Name())
	return string(b)
}

func (p *postgres) psqlCmd(args ...string) *exec.Cmd {
	base := []string{"-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", p.sock, "-U", "postgres", "-d", "postgres"}
	return p.asPostgres(exec.Command(filepath.Join(p.bin, "psql"), append(base, args...)...))
}

func (p *postgres) psql(sql string) (string, error) {
	out, err := p.psqlCmd("-At", "-c", sql).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (p *postgres) exec(sql string) {
	if out, err := p.psql(sql); err != nil {
		p.t.Fatalf("psql %q: %v: %s", sql, err, out)
	}
}

func (p *postgres) query(sql string) string {
	out, err := p.psql(sql)
	if err != nil {
		p.t.Fatalf("psql %q: %v: %s\npostgres log:\n%s", sql, err, out, p.logText())
	}
	return out
}

// writer inserts rows 1, 2, 3... one transaction each through one psql
// session; after an INSERT has returned it creates rows/<i> in the files
// subdot and only then counts the row in last.
type writer struct {
	t    *testing.T
	last atomic.Int64
	quit chan struct{}
	done chan error
	once sync.Once
}

func (p *postgres) writer(rows string) *writer {
	t := p.t
	cmd := p.psqlCmd()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &writer{t: t, quit: make(chan struct{}), done: make(chan error, 1)}
	go func() {
		out := bufio.NewReader(stdout)
		err := func() error {
			for i := int64(1); ; i++ {
				select {
				case <-w.quit:
					return nil
				default:
				}
				if _, err := fmt.Fprintf(stdin, "INSERT INTO t VALUES (%d);\n\\echo ok %d\n", i, i); err != nil {
					return err
				}
				line, err := out.ReadString('\n')
				if err != nil {
					return fmt.Errorf("psql: %w: %s", err, stderr.String())
				}
				if strings.TrimSpace(line) != fmt.Sprintf("ok %d", i) {
					return fmt.Errorf("psql said %q", line)
				}
				if err := os.WriteFile(filepath.Join(rows, strconv.FormatInt(i, 10)), nil, 0o644); err != nil {
					return err
				}
				w.last.Store(i)
			}
		}()
		stdin.Close()
		if werr := cmd.Wait(); err == nil && werr != nil {
			err = fmt.Errorf("psql: %w: %s", werr, stderr.String())
		}
		w.done <- err
	}()
	t.Cleanup(func() { w.stop() })
	return w
}

// stop ends the writer and returns how many rows were inserted.
func (w *writer) stop() int64 {
	w.once.Do(func() {
		close(w.quit)
		if err := <-w.done; err != nil {
			w.t.Errorf("pgcrash writer: %v", err)
		}
	})
	return w.last.Load()
}
