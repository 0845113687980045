package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startPush starts `dm push` as a child process; wait returns its exit
// error and stderr. The child is killed (by PID) if the test ends first.
func (e *env) startPush(args ...string) (cmd *exec.Cmd, wait func(timeout time.Duration) (error, string)) {
	t := e.t
	t.Helper()
	cmd = e.cmd(args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	must(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var res error
	finished := false
	t.Cleanup(func() {
		if !finished {
			cmd.Process.Kill()
			<-done
		}
	})
	return cmd, func(timeout time.Duration) (error, string) {
		t.Helper()
		if !finished {
			select {
			case res = <-done:
				finished = true
			case <-time.After(timeout):
				t.Fatalf("dm %v did not end within %s; stderr: %s", args, timeout, errb.String())
			}
		}
		return res, strings.TrimSpace(errb.String())
	}
}

// alive fails the test unless node n's process runs and answers.
func (n *serveNode) alive(when string) {
	n.t.Helper()
	select {
	case <-n.exited:
		b, _ := os.ReadFile(n.log)
		n.t.Fatalf("node %s died %s: %s", n.name, when, tail(b, 3000))
	default:
	}
	resp, err := n.httpClient().Get(n.url() + "/healthz")
	if err != nil {
		n.t.Fatalf("node %s does not answer %s: %v", n.name, when, err)
	}
	resp.Body.Close()
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// bigDot makes dot name on n with size random bytes in one commit and
// returns its working directory.
func (e *env) bigDot(n *serveNode, name string, size int) string {
	e.t.Helper()
	e.on(n, "init", name)
	dir := e.pathOn(n, name)
	must(e.t, os.WriteFile(filepath.Join(dir, "data"), randomBytes(uint64(size), size), 0o644))
	e.commitOn(n, name, "big")
	return dir
}

// TestPushCutOffKeepsSenderAlive: pushes whose receiver is SIGKILLed
// mid-stream, and pushes whose `dm push` gets Ctrl-C (SIGINT) mid-stream,
// again and again at random moments: every one ends with a one-line error,
// and the sending node stays up throughout (it used to die of a nil
// pointer dereference when a cut push's stream goroutine reported
// progress to a finished request). A push that is let run then completes.
func TestPushCutOffKeepsSenderAlive(t *testing.T) {
	a := startServe(t, "a", "127.0.0.1")
	b := startServe(t, "b", "127.0.0.2")
	e := newEnv(t)
	e.addRemote(a)
	e.addRemote(b)
	e.bigDot(a, "big", 48<<20)
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	t.Logf("seed %d", seed)
	runs := 8
	if testing.Short() {
		runs = 3
	}
	// How long a whole push takes here sets when to cut: a fixed delay
	// lets a fast machine finish most pushes before the cut comes.
	start := time.Now()
	if s := e.transfer(a, "push", "b", "big", "--neutral", "--remote-name", "big-timing"); s.Commits != 1 {
		t.Fatalf("the timing push: %+v", s)
	}
	whole := time.Since(start)
	t.Logf("a whole push takes %s", whole.Round(time.Millisecond))
	// A Ctrl-C before dm has started catches nothing (the default action
	// ends it, as it would any program), so no cut comes before a few
	// times what starting a dm takes here now: on a loaded machine that
	// can be more than 10% of a short push.
	var started time.Duration
	for range 3 {
		t0 := time.Now()
		e.ok("version")
		started = max(started, time.Since(t0))
	}
	t.Logf("a dm starts in at most %s", started.Round(time.Millisecond))
	cut := 0
	for i := range 2 * runs {
		kill := i%2 == 0
		// The neutral stream is read from the dump store as it goes (the
		// source, not the network, is the slow side) and a new remote name
		// each time makes b receive all of it again.
		cmd, wait := e.startPush("--remote", "a", "push", "b", "big", "--neutral", "--remote-name", fmt.Sprintf("big-%d", i))
		// Cut somewhere between 10% and 70% of the way through.
		time.Sleep(max(whole*time.Duration(10+rng.IntN(61))/100, 3*started))
		if kill {
			b.kill()
		} else if err := cmd.Process.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Fatal(err)
		}
		err, stderr := wait(2 * time.Minute)
		a.alive(fmt.Sprintf("after push %d was cut off", i))
		if kill {
			b.start()
		}
		if err == nil {
			continue // it finished before the cut
		}
		cut++
		if strings.Count(stderr, "\n") > 0 || !strings.HasPrefix(stderr, "dm: ") {
			t.Fatalf("push %d: want a one-line error, got %q", i, stderr)
		}
		if !kill && !strings.Contains(stderr, "interrupted") {
			t.Fatalf("push %d cut by Ctrl-C: %q", i, stderr)
		}
		if i < 2 {
			t.Logf("push %d (%s): %s", i, map[bool]string{true: "receiver killed", false: "Ctrl-C"}[kill], stderr)
		}
	}
	if cut < runs {
		t.Fatalf("only %d of %d pushes were cut off mid-way; the cuts came too late", cut, 2*runs)
	}
	log, _ := os.ReadFile(a.log)
	if bytes.Contains(log, []byte("panic")) || bytes.Contains(log, []byte("nil pointer")) {
		t.Fatalf("the sending node logged a panic: %s", tail(log, 3000))
	}
	if s := e.transfer(a, "push", "b", "big", "--remote-name", "big-final"); s.Commits != 1 {
		t.Fatalf("a push after the cut ones: %+v", s)
	}
	t.Logf("%d of %d pushes cut off mid-way; the sender stayed up", cut, 2*runs)
}

// TestPushToFrozenPeer: a peer stopped with SIGSTOP mid-push (its kernel
// still holds the connections open) ends the push within the idle
// timeout, with an error that names the peer's address and says what to
// do; after SIGCONT the same push resumes and completes. A sending node
// that is itself frozen ends `dm push` the same way, naming that node.
func TestPushToFrozenPeer(t *testing.T) {
	a := startServe(t, "a", "127.0.0.1")
	b := startServe(t, "b", "127.0.0.2")
	e := newEnv(t)
	e.addRemote(a)
	e.addRemote(b)
	dir := e.bigDot(a, "big", 96<<20)
	thaw := func(n *serveNode) { n.cmd.Process.Signal(syscall.SIGCONT) }
	t.Cleanup(func() { thaw(a); thaw(b) }) // before the nodes' own cleanup kills them

	const idle = 3 * time.Second
	_, wait := e.startPush("--remote", "a", "--idle-timeout", idle.String(), "push", "b", "big")
	objects := filepath.Join(b.data, "dump", "store", "packs")
	for start := time.Now(); storedBytes(objects) < 1<<20; time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > time.Minute {
			t.Fatal("no data arrived on b in a minute")
		}
	}
	must(t, b.cmd.Process.Signal(syscall.SIGSTOP))
	stopped := time.Now()
	err, stderr := wait(2 * time.Minute)
	took := time.Since(stopped)
	t.Logf("push to a frozen peer ended after %s: %s", took.Round(time.Millisecond), stderr)
	if err == nil {
		t.Fatalf("the push succeeded although b was stopped (after %d bytes arrived)", storedBytes(objects))
	}
	if took > idle+10*time.Second {
		t.Fatalf("the push took %s to give up on a frozen peer with --idle-timeout %s", took, idle)
	}
	if !strings.Contains(stderr, b.addr) || !strings.Contains(stderr, "running") || !strings.Contains(stderr, "again") || strings.Count(stderr, "\n") > 0 {
		t.Fatalf("want one line naming %s and what to do, got %q", b.addr, stderr)
	}
	a.alive("after giving up on a frozen peer")

	thaw(b)
	if s := e.transfer(a, "push", "b", "big"); s.Commits != 1 {
		t.Fatalf("the push after SIGCONT: %+v", s)
	}
	if !sameTree(readTree(t, dir), readTree(t, e.pathOn(b, "big"))) {
		t.Fatal("b's tree differs from a's after the resumed push")
	}

	// The node dm talks to is the frozen one.
	e.on(a, "init", "small")
	writeFile(t, filepath.Join(e.pathOn(a, "small"), "f"), "x")
	e.commitOn(a, "small", "one")
	must(t, a.cmd.Process.Signal(syscall.SIGSTOP))
	stopped = time.Now()
	_, wait = e.startPush("--remote", "a", "--idle-timeout", idle.String(), "push", "b", "small")
	err, stderr = wait(2 * time.Minute)
	took = time.Since(stopped)
	thaw(a)
	t.Logf("push through a frozen node ended after %s: %s", took.Round(time.Millisecond), stderr)
	if err == nil || took > idle+10*time.Second || !strings.Contains(stderr, a.addr) || !strings.Contains(stderr, "running") {
		t.Fatalf("push through a frozen node: err %v after %s: %q", err, took, stderr)
	}
	a.alive("after SIGCONT")
}
