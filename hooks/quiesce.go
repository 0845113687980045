package hooks

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dotmesh-io/dotmesh/backend/dump/source"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/internal/syncbuf"
)

// pgConfig parses a postgresql hook's URL as pgx does (libpq's forms),
// without its password in the error.
func pgConfig(raw string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: the postgresql hook's URL %s does not parse (postgres://user@host:port/db or postgres://user@/db?host=/socket/dir)", dotmesh.ErrInvalidArgument, dotmesh.Hook{URL: raw}.Redacted().URL)
	}
	return cfg, nil
}

// postgresql runs CHECKPOINT, so that the snapshot right after holds
// little WAL to replay when PostgreSQL starts on it. PostgreSQL needs no
// lock for an atomic snapshot: there is nothing to release.
func (r *Runner) postgresql(ctx context.Context, h dotmesh.Hook, call dotmesh.HookCall) (func(context.Context) error, error) {
	cfg, err := pgConfig(h.URL)
	if err != nil {
		return nil, err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to PostgreSQL: %v", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	start := time.Now()
	if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
		return nil, fmt.Errorf("CHECKPOINT: %v", err)
	}
	r.logger(call).InfoContext(ctx, "postgresql checkpoint done", "took", time.Since(start))
	return func(context.Context) error { return nil }, nil
}

// holder lets go of a quiesced application once: when released, or
// when the hook's timeout has passed since it started, whichever is
// first. release reports the second as an error.
type holder struct {
	once    sync.Once
	timer   *time.Timer
	timeout time.Duration
	letGo   func(context.Context) error
	err     error
}

func hold(timeout time.Duration, letGo func(context.Context) error) *holder {
	hd := &holder{timeout: timeout, letGo: letGo}
	hd.timer = time.AfterFunc(timeout, func() { hd.do(context.Background()) })
	return hd
}

func (hd *holder) do(ctx context.Context) {
	hd.once.Do(func() { hd.err = hd.letGo(ctx) })
}

func (hd *holder) release(ctx context.Context) error {
	if !hd.timer.Stop() {
		hd.do(ctx) // wait for the timer's let-go to finish
		return fmt.Errorf("let go after the hook's timeout of %s, before the snapshot was taken", hd.timeout)
	}
	hd.do(ctx)
	return hd.err
}

// mysql holds FLUSH TABLES WITH READ LOCK on one connection of the
// mysql (mariadb) client until released: UNLOCK TABLES, and the
// connection closes; killing the client also lets go.
func (r *Runner) mysql(ctx context.Context, h dotmesh.Hook, call dotmesh.HookCall) (func(context.Context) error, error) {
	c, err := source.Parse(source.MySQL, h.URL)
	if err != nil {
		return nil, err
	}
	client, err := lookPath("mariadb", "mysql")
	if err != nil {
		return nil, fmt.Errorf("%w: the mysql hook needs the mariadb (or mysql) client on the node", dotmesh.ErrUnavailable)
	}
	args := []string{"--batch", "--skip-column-names", "--unbuffered"}
	if c.Socket != "" {
		args = append(args, "--protocol=SOCKET", "--socket="+c.Socket)
	} else {
		args = append(args, "--protocol=TCP", "--host="+c.Host)
		if c.Port != "" {
			args = append(args, "--port="+c.Port)
		}
	}
	if c.User != "" {
		args = append(args, "--user="+c.User)
	}
	cmd := exec.Command(client, append(args, c.Database)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	if c.Password != "" {
		cmd.Env = append(cmd.Env, "MYSQL_PWD="+c.Password) // not on the command line
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr syncbuf.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %v", client, err)
	}
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var waitOnce, killOnce sync.Once
	wait := func() { waitOnce.Do(func() { cmd.Wait() }) }
	kill := func() { // before the wait: a reaped group's id may be reused
		killOnce.Do(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
		wait()
	}
	// until sends a statement and waits for the marker it selects after.
	until := func(ctx context.Context, sql, marker string) error {
		if _, err := io.WriteString(stdin, sql+"\nSELECT '"+marker+"';\n"); err != nil {
			return err
		}
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					kill()
					return fmt.Errorf("%s ended: %s", filepath.Base(client), oneLine(stderr.String()))
				}
				if l == marker {
					return nil
				}
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	start := time.Now()
	if err := until(ctx, "FLUSH TABLES WITH READ LOCK;", "dotmesh-locked"); err != nil {
		kill()
		return nil, fmt.Errorf("FLUSH TABLES WITH READ LOCK: %v", err)
	}
	log := r.logger(call)
	log.InfoContext(ctx, "mysql tables flushed and locked", "took", time.Since(start))
	hd := hold(h.TimeoutOrDefault(), func(ctx context.Context) error {
		defer kill()
		if err := until(ctx, "UNLOCK TABLES;", "dotmesh-unlocked"); err != nil {
			// Closing the connection lets go of the lock all the same.
			log.WarnContext(ctx, "UNLOCK TABLES failed; closing the connection instead", "err", err)
		}
		stdin.Close()
		return nil
	})
	return hd.release, nil
}

// fsfreeze freezes the file system of a subdot that is one of its own
// (a mount point): the file system's writes wait until it is thawed,
// which always happens, on release, on failure and on timeout. A subdot
// on its parent's file system is refused: freezing that would freeze
// the node's own.
func (r *Runner) fsfreeze(ctx context.Context, h dotmesh.Hook, call dotmesh.HookCall) (func(context.Context) error, error) {
	dir := call.Subdots[h.Subdot]
	if dir == "" {
		return nil, fmt.Errorf("subdot %s has no working directory", h.Subdot)
	}
	if err := ownFileSystem(dir); err != nil {
		return nil, err
	}
	tool, err := exec.LookPath("fsfreeze")
	if err != nil {
		return nil, fmt.Errorf("%w: fsfreeze is not installed on the node (util-linux)", dotmesh.ErrUnavailable)
	}
	run := func(ctx context.Context, flag string) error {
		out, err := exec.CommandContext(ctx, tool, flag, dir).CombinedOutput()
		if err != nil {
			return fmt.Errorf("fsfreeze %s %s: %v: %s", flag, dir, err, oneLine(string(out)))
		}
		return nil
	}
	thaw := func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		return run(ctx, "-u")
	}
	if err := run(ctx, "-f"); err != nil {
		_ = thaw(ctx) // a freeze cut short by the timeout may have taken
		return nil, err
	}
	r.logger(call).InfoContext(ctx, "file system frozen", "subdot", h.Subdot, "dir", dir)
	return hold(h.TimeoutOrDefault(), thaw).release, nil
}

// ownFileSystem refuses a directory on the same file system as its
// parent.
func ownFileSystem(dir string) error {
	var st, parent syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return fmt.Errorf("fsfreeze: %v", err)
	}
	if err := syscall.Stat(filepath.Dir(dir), &parent); err != nil {
		return fmt.Errorf("fsfreeze: %v", err)
	}
	if st.Dev == parent.Dev {
		return fmt.Errorf("%w: %s is not a file system of its own (mount one there); fsfreeze would freeze the node's", dotmesh.ErrInvalidArgument, dir)
	}
	return nil
}

func lookPath(names ...string) (string, error) {
	var err error
	for _, n := range names {
		var p string
		if p, err = exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", err
}
