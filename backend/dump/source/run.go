package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
	"golang.org/x/sys/unix"
)

var errNoSpool = errors.New("no memfd to spool through")

// tool runs one external program. Its exit status is always checked;
// stderr is kept (bounded) for the error message, with the password cut
// out in case a tool echoes it.
type tool struct {
	name   string   // program name, for messages
	path   string   // resolved program
	args   []string // arguments
	env    []string // extra environment (passwords go here, never in args)
	stdin  io.Reader
	stdout io.Writer
	secret string
}

// pgLibDir is where Debian installs each PostgreSQL major version's
// programs, as pgLibDir/<version>/bin.
const pgLibDir = "/usr/lib/postgresql"

// lookTool finds a program in PATH, or else in Debian's versioned
// PostgreSQL directories (pg_dump is not always on PATH there). Where
// PATH has Debian's pg_wrapper, the newest versioned program is run
// directly (pg_dump and psql of a newer version work with older
// servers): the wrapper is a Perl script that costs 45 ms on every run,
// a tenth of a pgbench dump.
func lookTool(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err == nil && !isPGWrapper(p) {
		return p, nil
	}
	if v := newestPGProgram(pgLibDir, name); v != "" {
		return v, nil
	}
	if err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%w: %s is not installed (it is in Debian's %s package)", dotmesh.ErrUnavailable, name, packageOf(name))
}

// isPGWrapper reports whether p is (a link to) Debian's pg_wrapper.
func isPGWrapper(p string) bool {
	r, err := filepath.EvalSymlinks(p)
	return err == nil && filepath.Base(r) == "pg_wrapper"
}

// newestPGProgram returns root/<version>/bin/name of the highest version
// (numerically: 15 is newer than 9.6), or "".
func newestPGProgram(root, name string) string {
	ms, _ := filepath.Glob(filepath.Join(root, "*", "bin", name))
	best, bestV := "", []int(nil)
	for _, m := range ms {
		v, ok := pgVersion(filepath.Base(filepath.Dir(filepath.Dir(m))))
		if ok && slices.Compare(v, bestV) > 0 {
			best, bestV = m, v
		}
	}
	return best
}

// pgVersion parses a version directory name such as "15" or "9.6".
func pgVersion(s string) ([]int, bool) {
	var v []int
	for _, f := range strings.Split(s, ".") {
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 {
			return nil, false
		}
		v = append(v, n)
	}
	return v, true
}

func packageOf(name string) string {
	switch {
	case strings.HasPrefix(name, "pg_") || name == "psql":
		return "postgresql-client"
	case strings.HasPrefix(name, "mysql") || strings.HasPrefix(name, "mariadb"):
		return "mariadb-client"
	case strings.HasPrefix(name, "redis"):
		return "redis-tools"
	}
	return name
}

func (t *tool) run(ctx context.Context) error {
	var err error
	if t.path == "" {
		if t.path, err = lookTool(t.name); err != nil {
			return err
		}
	}
	cmd := exec.CommandContext(ctx, t.path, t.args...)
	cmd.Env = append(os.Environ(), t.env...)
	cmd.Stdin = t.stdin
	if cmd.Stdin == nil {
		cmd.Stdin = strings.NewReader("")
	}
	var stderr tailBuffer
	cmd.Stderr = &stderr
	switch t.stdout.(type) {
	case nil:
		cmd.Stdout = io.Discard
		err = cmd.Run()
	case *os.File:
		cmd.Stdout = t.stdout
		err = cmd.Run()
	default:
		if err = runSpooled(cmd, t.stdout); err == errNoSpool {
			err = runPiped(cmd, t.stdout)
		}
	}
	msg := strings.TrimSpace(stderr.String())
	if t.secret != "" {
		msg = strings.ReplaceAll(msg, t.secret, "xxxxx")
	}
	msg = strings.Join(strings.Fields(msg), " ")
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", t.name, ctx.Err())
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if msg == "" {
				msg = "no message"
			}
			return fmt.Errorf("%w: %s failed (%s): %s", dotmesh.ErrUnavailable, t.name, ee.ProcessState, msg)
		}
		var de destError
		if errors.As(err, &de) {
			return fmt.Errorf("%s output: %w", t.name, de.err)
		}
		return fmt.Errorf("%w: running %s: %v", dotmesh.ErrUnavailable, t.name, err)
	}
	return nil
}

// output runs the tool and returns its stdout, trimmed.
func (t *tool) output(ctx context.Context) (string, error) {
	var out bytes.Buffer
	t.stdout = &out
	err := t.run(ctx)
	return strings.TrimSpace(out.String()), err
}

// tailBuffer keeps the last 4 KiB written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 4096 {
		t.b = t.b[len(t.b)-4096:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }

// runPiped runs cmd with its output through a pipe of a megabyte (Linux
// gives 64 KiB): a dump tool then runs ahead instead of stalling every
// time the reader (sorting, chunking, hashing on a busy machine) falls a
// little behind. It is runSpooled's fallback where there is no memfd. It
// returns cmd's error, or else w's (a destError).
func runPiped(cmd *exec.Cmd, w io.Writer) error {
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	_, _ = unix.FcntlInt(pw.Fd(), unix.F_SETPIPE_SZ, 1<<20) // best effort
	cmd.Stdout = pw
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return err
	}
	pw.Close()
	copied := make(chan error, 1)
	go func() {
		if rf, ok := w.(io.ReaderFrom); ok {
			_, err := rf.ReadFrom(pr)
			if err != nil {
				pr.Close() // the tool gets EPIPE instead of blocking
			}
			copied <- err
			return
		}
		buf := make([]byte, 256<<10)
		var werr error
		for {
			n, rerr := pr.Read(buf)
			if n > 0 && werr == nil {
				if _, werr = w.Write(buf[:n]); werr != nil {
					pr.Close() // the tool gets EPIPE instead of blocking
					break
				}
			}
			if rerr != nil {
				break
			}
		}
		copied <- werr
	}()
	werr := <-copied
	err = cmd.Wait()
	pr.Close()
	if err == nil && werr != nil {
		err = destError{werr}
	}
	return err
}

// Spool limits (see runSpooled).
const (
	spoolPoll  = time.Millisecond      // wait when caught up: short against any dump, long against a wake-up's cost
	spoolWatch = 10 * time.Millisecond // how often the backlog is checked
	spoolChunk = 1 << 20               // bytes read (and punched out) at a time
	spoolHigh  = 64 << 20              // backlog at which the tool is stopped...
	spoolLow   = 16 << 20              // ...and below which it continues
)

// destError is a failure of a tool's destination, not of the tool.
type destError struct{ err error }

func (e destError) Error() string { return e.err.Error() }
func (e destError) Unwrap() error { return e.err }

// runSpooled runs cmd with its output going to an anonymous in-memory
// file (memfd) and copies the file to w as it grows, a megabyte at a
// time. Through a pipe, every write of the tool wakes the reader: pg_dump
// writes 4 KiB at a time, 23,000 wake-ups for a 96 MB dump, which cost
// this process three times the CPU of reading the same bytes from a file.
// Here the reader polls only when it has caught up, and punches out what
// it has read, so the file holds only the backlog. A file has no
// back-pressure of its own: while the backlog is over spoolHigh the tool
// is stopped (SIGSTOP) until it is under spoolLow, and it dies with this
// process (Pdeathsig), so a stopped tool is never left behind.
//
// It returns errNoSpool, having started nothing, when there is no memfd;
// else w's error (a destError), or else cmd's.
func runSpooled(cmd *exec.Cmd, w io.Writer) error {
	fd, err := unix.MemfdCreate("dm-spool", unix.MFD_CLOEXEC)
	if err != nil {
		return errNoSpool
	}
	f := os.NewFile(uintptr(fd), "spool")
	defer f.Close()
	cmd.Stdout = f
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	// Pdeathsig follows the thread that forked the tool, not the process:
	// that thread stays locked to this goroutine until the tool is gone.
	started, exited := make(chan error, 1), make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		err := cmd.Start()
		started <- err
		if err == nil {
			exited <- cmd.Wait()
		}
	}()
	if err := <-started; err != nil {
		return err
	}
	var off atomic.Int64 // bytes handed to w
	stopWatch := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		spoolWatcher(cmd.Process, fd, &off, stopWatch)
	}()
	defer func() { close(stopWatch); <-watched }()

	buf := make([]byte, spoolChunk)
	poll := time.NewTimer(spoolPoll)
	defer poll.Stop()
	var cerr error
	done := false
	for {
		n, rerr := f.ReadAt(buf, off.Load())
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				if !done {
					cmd.Process.Kill() // also when stopped
					<-exited
				}
				return destError{err}
			}
			_ = unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off.Load(), int64(n))
			off.Add(int64(n))
		}
		if rerr != nil && rerr != io.EOF {
			if !done {
				cmd.Process.Kill()
				<-exited
			}
			return rerr
		}
		if n == len(buf) {
			continue
		}
		if done { // read to the end after the tool exited: all of it
			return cerr
		}
		poll.Reset(spoolPoll)
		select {
		case cerr = <-exited:
			done = true
		case <-poll.C:
		}
	}
}

// spoolWatcher stops p while the spool's backlog (its size past off) is
// over spoolHigh and continues it under spoolLow, until stop is closed;
// it never leaves p stopped.
func spoolWatcher(p *os.Process, fd int, off *atomic.Int64, stop <-chan struct{}) {
	tick := time.NewTicker(spoolWatch)
	defer tick.Stop()
	stopped := false
	for {
		select {
		case <-stop:
			if stopped {
				_ = p.Signal(syscall.SIGCONT)
			}
			return
		case <-tick.C:
		}
		var st unix.Stat_t
		if unix.Fstat(fd, &st) != nil {
			continue
		}
		switch backlog := st.Size - off.Load(); {
		case !stopped && backlog > spoolHigh:
			stopped = p.Signal(syscall.SIGSTOP) == nil
		case stopped && backlog < spoolLow:
			stopped = p.Signal(syscall.SIGCONT) != nil
		}
	}
}
