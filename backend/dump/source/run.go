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
	"sort"
	"strings"

	"github.com/dotmesh-io/dotmesh/dotmesh"
	"golang.org/x/sys/unix"
)

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

// lookTool finds a program in PATH, then in Debian's versioned
// PostgreSQL directory (pg_dump is not always on PATH there).
func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	if ms, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name); len(ms) > 0 {
		sort.Strings(ms)
		return ms[len(ms)-1], nil
	}
	return "", fmt.Errorf("%w: %s is not installed (it is in Debian's %s package)", dotmesh.ErrUnavailable, name, packageOf(name))
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
		err = runPiped(cmd, t.stdout)
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
// little behind. It returns cmd's error, or else w's.
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
	if err == nil {
		err = werr
	}
	return err
}
