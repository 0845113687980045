package source

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// hashWriter hashes what it is given; before (when set) runs ahead of
// each write.
type hashWriter struct {
	n      int64
	sum    [32]byte
	data   bytes.Buffer
	before func(n int64) error
}

func (h *hashWriter) Write(p []byte) (int, error) {
	if h.before != nil {
		if err := h.before(h.n); err != nil {
			return 0, err
		}
	}
	h.n += int64(len(p))
	h.data.Write(p)
	return len(p), nil
}

func (h *hashWriter) digest() [32]byte { return sha256.Sum256(h.data.Bytes()) }

// The spool hands over exactly what the tool wrote, in order.
func TestSpoolCopiesExactly(t *testing.T) {
	want, err := exec.Command("seq", "1", "3000000").Output()
	if err != nil {
		t.Fatalf("seq (coreutils): %v", err)
	}
	var w hashWriter
	if err := (&tool{name: "seq", args: []string{"1", "3000000"}, stdout: &w}).run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w.n != int64(len(want)) || w.digest() != sha256.Sum256(want) {
		t.Fatalf("got %d bytes, want %d, or they differ", w.n, len(want))
	}
}

// childState is the state letter of this process's child named name, or
// "" when there is none.
func childState(name string) string {
	tasks, _ := filepath.Glob("/proc/self/task/*/children")
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, pid := range strings.Fields(string(b)) {
			st, err := os.ReadFile("/proc/" + pid + "/stat")
			if err != nil {
				continue
			}
			s := string(st)
			i, j := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
			if i < 0 || j < i || s[i+1:j] != name || j+2 >= len(s) {
				continue
			}
			return s[j+2 : j+3]
		}
	}
	return ""
}

// A reader that falls behind stops the tool once the backlog passes
// spoolHigh, and lets it go on afterwards: all of the output arrives.
func TestSpoolStopsToolWhenBehind(t *testing.T) {
	const total = 3 * spoolHigh
	sawStopped := false
	w := hashWriter{before: func(n int64) error {
		if n != 0 || sawStopped {
			return nil
		}
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if childState("head") == "T" {
				sawStopped = true
				return nil
			}
			time.Sleep(5 * time.Millisecond)
		}
		return errors.New("the tool was never stopped while the reader stalled")
	}}
	w.data.Grow(total)
	// head writes 192 MiB in tens of milliseconds; on a loaded machine the
	// watcher, which looks every spoolWatch, could miss the whole run.
	// At nice 19 head yields the CPU to the watcher whenever they compete
	// (nice execs head, so the child is still named head).
	if err := (&tool{name: "nice", args: []string{"-n", "19", "head", "-c", "201326592", "/dev/zero"}, stdout: &w}).run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !sawStopped || w.n != total {
		t.Fatalf("stopped %v, got %d bytes of %d", sawStopped, w.n, total)
	}
}

// The destination's error ends the tool and is what run reports.
func TestSpoolWriterErrorKillsTool(t *testing.T) {
	boom := errors.New("destination full")
	w := hashWriter{before: func(n int64) error {
		if n > 0 {
			return boom
		}
		return nil
	}}
	start := time.Now()
	err := (&tool{name: "sh", args: []string{"-c", "while :; do head -c 1048576 /dev/zero; done"}, stdout: &w}).run(context.Background())
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want the writer's error", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("run took %v after the writer failed", d)
	}
}

// A tool that fails after some output: its exit status and message win.
func TestSpoolToolFailure(t *testing.T) {
	var w hashWriter
	err := (&tool{name: "sh", args: []string{"-c", "echo partial; echo broken pipe to server >&2; exit 3"}, stdout: &w}).run(context.Background())
	if !errors.Is(err, dotmesh.ErrUnavailable) || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "broken pipe to server") {
		t.Fatalf("got %v", err)
	}
	if w.data.String() != "partial\n" {
		t.Fatalf("output %q", w.data.String())
	}
}

// The pipe, used where there is no memfd, hands over the same bytes.
func TestPipedCopiesExactly(t *testing.T) {
	want, err := exec.Command("seq", "1", "3000000").Output()
	if err != nil {
		t.Fatalf("seq (coreutils): %v", err)
	}
	var w hashWriter
	if err := runPiped(exec.Command("seq", "1", "3000000"), &w); err != nil {
		t.Fatal(err)
	}
	if w.n != int64(len(want)) || w.digest() != sha256.Sum256(want) {
		t.Fatalf("got %d bytes, want %d, or they differ", w.n, len(want))
	}
}

// A process killed while its dump tool runs (here: stopped behind a
// stalled reader) takes the tool with it: no tool is left running or
// stopped, holding its database snapshot.
func TestSpoolToolDiesWithProcess(t *testing.T) {
	if pidFile := os.Getenv("DM_SPOOL_HELPER"); pidFile != "" {
		w := hashWriter{before: func(int64) error { select {} }} // stalls for ever
		script := "echo $$ > " + pidFile + "; exec head -c 100000000000 /dev/zero"
		(&tool{name: "sh", args: []string{"-c", script}, stdout: &w}).run(context.Background())
		return
	}
	pidFile := filepath.Join(t.TempDir(), "tool.pid")
	helper := exec.Command(os.Args[0], "-test.run=^TestSpoolToolDiesWithProcess$")
	helper.Env = append(os.Environ(), "DM_SPOOL_HELPER="+pidFile)
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer helper.Process.Kill() // our own child, by PID
	var pid string
	for deadline := time.Now().Add(20 * time.Second); pid == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		b, _ := os.ReadFile(pidFile)
		pid = strings.TrimSpace(string(b))
	}
	if pid == "" {
		t.Fatal("the helper never started its tool")
	}
	time.Sleep(300 * time.Millisecond) // let the backlog build and the tool stop
	helper.Process.Kill()
	helper.Wait()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st, err := os.ReadFile("/proc/" + pid + "/stat")
		s := string(st)
		if err != nil || strings.Contains(s[strings.LastIndexByte(s, ')')+1:], " Z ") {
			return // gone, or a zombie awaiting its new parent
		}
		if time.Now().After(deadline) {
			t.Fatalf("the tool (pid %s) outlived the killed process: %s", pid, s)
		}
	}
}

func TestNewestPGProgram(t *testing.T) {
	root := t.TempDir()
	for _, v := range []string{"9.6", "15", "10", "devel"} {
		dir := filepath.Join(root, v, "bin")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "pg_dump"), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := newestPGProgram(root, "pg_dump"), filepath.Join(root, "15", "bin", "pg_dump"); got != want {
		t.Fatalf("newest pg_dump: %s, want %s (versions compare as numbers)", got, want)
	}
	if got := newestPGProgram(root, "psql"); got != "" {
		t.Fatalf("a program no version has: %q", got)
	}
}

// TestLookToolSkipsPGWrapper: with Debian's packages, PATH's pg_dump is
// the Perl pg_wrapper, and the versioned program is run instead.
func TestLookToolSkipsPGWrapper(t *testing.T) {
	onPath, err := exec.LookPath("pg_dump")
	if err != nil {
		t.Fatalf("pg_dump is not on PATH: install Debian's postgresql-client (make test does): %v", err)
	}
	got, err := lookTool("pg_dump")
	if err != nil {
		t.Fatal(err)
	}
	if isPGWrapper(got) {
		t.Fatalf("lookTool chose the wrapper %s", got)
	}
	if isPGWrapper(onPath) && !strings.HasPrefix(got, pgLibDir+"/") {
		t.Fatalf("PATH has the wrapper %s, and lookTool chose %s, not a program in %s", onPath, got, pgLibDir)
	}
	if got, err := lookTool("no-such-tool-dm"); err == nil || !errors.Is(err, dotmesh.ErrUnavailable) {
		t.Fatalf("a missing tool: %q, %v", got, err)
	}
}
