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
	"slices"
	"strconv"
	"strings"

	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/internal/bigpipe"
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
	pr, pw, err := bigpipe.New()
	if err != nil {
		return err
	}
	cmd.Stdout = pw
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return err
	}
	pw.Close()
	werr := copyOut(w, pr, 256<<10)
	if werr != nil {
		pr.Close() // the tool gets EPIPE instead of blocking
	}
	err = cmd.Wait()
	pr.Close()
	if err == nil && werr != nil {
		err = destError{werr}
	}
	return err
}

// copyOut copies a tool's output r to w: straight into w's buffers when w
// reads for itself (the postgres normalizer), else through a buffer of
// size bytes.
func copyOut(w io.Writer, r io.Reader, size int) error {
	var buf []byte
	if _, ok := w.(io.ReaderFrom); !ok {
		buf = make([]byte, size)
	}
	_, err := io.CopyBuffer(w, r, buf)
	return err
}
