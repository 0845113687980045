package hooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// waitDelay bounds the wait for output after a hook's process ended or
// was killed: a child that left the group may hold its pipe.
const waitDelay = 5 * time.Second

// Env returns the environment a command hook runs with: PATH, HOME and
// LANG of the node, and
//
//	DM_HOOK            the stage (pre-commit, post-commit)
//	DM_DOT             the dot, NAMESPACE/NAME
//	DM_BRANCH          the branch being committed
//	DM_DOT_PATH        the branch's working tree
//	DM_SUBDOTS         the subdots, separated by spaces
//	DM_SUBDOT_<NAME>   each subdot's directory (NAME upper-cased, '-' as '_')
//	DM_COMMIT_OUTCOME  post-commit: committed, nothing-to-commit or failed
//	DM_COMMIT          post-commit: the new commit's id
//	DM_COMMIT_ERROR    post-commit: why the commit failed
func Env(h dotmesh.Hook, call dotmesh.HookCall) []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "LANG"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	names := make([]string, 0, len(call.Subdots))
	for s := range call.Subdots {
		names = append(names, s)
	}
	slices.Sort(names)
	env = append(env,
		"DM_HOOK="+h.Stage,
		"DM_DOT="+fullName(call.Dot),
		"DM_BRANCH="+call.Branch,
		"DM_DOT_PATH="+call.Root,
		"DM_SUBDOTS="+strings.Join(names, " "))
	for _, s := range names {
		env = append(env, "DM_SUBDOT_"+envName(s)+"="+call.Subdots[s])
	}
	if call.Outcome != "" {
		env = append(env, "DM_COMMIT_OUTCOME="+call.Outcome, "DM_COMMIT="+string(call.Commit), "DM_COMMIT_ERROR="+oneLine(call.Error))
	}
	return env
}

// fullName is NAMESPACE/NAME, also in the default namespace.
func fullName(d dotmesh.DotName) string { return d.Namespace + "/" + d.Name }

func envName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		}
		return '_'
	}, s)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// command runs a command hook in the branch's working tree, in a process
// group of its own that is killed when ctx ends (the hook's timeout) and
// when the hook exits (nothing it started outlives it).
func (r *Runner) command(ctx context.Context, h dotmesh.Hook, call dotmesh.HookCall) error {
	log := r.logger(call).With("hook", h.Stage, "command", h.Command[0])
	out := &lineLog{log: log}
	cmd := exec.CommandContext(ctx, h.Command[0], h.Command[1:]...)
	cmd.Dir = call.Root
	cmd.Env = Env(h, call)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = waitDelay
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %v", h.Command[0], err)
	}
	pgid := cmd.Process.Pid
	err := cmd.Wait()
	_ = syscall.Kill(-pgid, syscall.SIGKILL) // what it left running in its group
	out.flush()
	switch {
	case ctx.Err() != nil && errors.Is(context.Cause(ctx), context.DeadlineExceeded):
		return fmt.Errorf("timed out after %s; its processes were killed%s", time.Since(start).Round(time.Millisecond), out.tail())
	case ctx.Err() != nil:
		return fmt.Errorf("stopped: %v%s", ctx.Err(), out.tail())
	case err != nil:
		return fmt.Errorf("%v%s", err, out.tail())
	}
	return nil
}

// lineLog logs what a hook writes, one line per record, and keeps the
// last lines for the error message.
type lineLog struct {
	log   *slog.Logger
	mu    sync.Mutex
	buf   []byte
	lines []string
	count int
}

const (
	maxLine      = 4096
	keptLines    = 5
	maxLoggedOut = 1000 // lines; a chatty hook is cut short in the log
)

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			if len(l.buf) > maxLine {
				l.line(l.buf[:maxLine])
				l.buf = l.buf[maxLine:]
				continue
			}
			return len(p), nil
		}
		l.line(l.buf[:i])
		l.buf = l.buf[i+1:]
	}
}

func (l *lineLog) line(b []byte) {
	s := strings.TrimRight(string(b), "\r")
	l.count++
	switch {
	case l.count <= maxLoggedOut:
		l.log.Info("hook output", "line", s)
	case l.count == maxLoggedOut+1:
		l.log.Warn("hook output: more lines are not logged")
	}
	l.lines = append(l.lines, s)
	if len(l.lines) > keptLines {
		l.lines = l.lines[1:]
	}
}

func (l *lineLog) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.line(l.buf)
		l.buf = nil
	}
}

// tail is the last lines of output, for a message: ": line; line".
func (l *lineLog) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var keep []string
	for _, s := range l.lines {
		if s = strings.TrimSpace(s); s != "" {
			keep = append(keep, s)
		}
	}
	if len(keep) == 0 {
		return ""
	}
	s := strings.Join(keep, "; ")
	if len(s) > 500 {
		s = "..." + s[len(s)-497:]
	}
	return ": " + s
}
