package source

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// policy is the scheduling policy of the calling thread.
func policy(t *testing.T) uint32 {
	t.Helper()
	a, err := unix.SchedGetAttr(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return a.Policy
}

// idleThreads lists this process's threads under SCHED_IDLE.
func idleThreads(t *testing.T) []string {
	t.Helper()
	stats, _ := filepath.Glob("/proc/self/task/*/stat")
	var idle []string
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the thread ended
		}
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) > 38 && fields[38] == "5" { // field 41, policy; 5 is SCHED_IDLE
			idle = append(idle, f)
		}
	}
	return idle
}

// mayLeaveIdle reports whether this process holds CAP_SYS_NICE or an
// RLIMIT_NICE of 20, either of which lets a thread leave SCHED_IDLE.
func mayLeaveIdle(t *testing.T) bool {
	t.Helper()
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NICE, &rl) == nil && rl.Cur >= 20 {
		return true
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatalf("CapEff %q: %v", v, err)
			}
			return caps&(1<<unix.CAP_SYS_NICE) != 0
		}
	}
	t.Fatal("no CapEff in /proc/self/status")
	return false
}

// Where a thread may leave SCHED_IDLE again (root here), the copy yields,
// and no thread is left yielding afterwards. Without that right it never
// yields.
func TestSpoolYields(t *testing.T) {
	if got, may := canYield(), mayLeaveIdle(t); got != may {
		t.Fatalf("canYield() = %v with CAP_SYS_NICE or RLIMIT_NICE >= 20: %v", got, may)
	}
	var writes, yielded int
	w := hashWriter{before: func(int64) error {
		writes++
		if policy(t) == unix.SCHED_IDLE {
			yielded++
		}
		return nil
	}}
	w.data.Grow(40 << 20) // writes stay quick: the copy keeps up
	// 40 MiB over about a second, a megabyte at a time.
	script := "for i in $(seq 40); do head -c 1048576 /dev/zero; sleep 0.02; done"
	if err := (&tool{name: "sh", args: []string{"-c", script}, stdout: &w}).run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w.n != 40<<20 {
		t.Fatalf("got %d bytes of %d", w.n, 40<<20)
	}
	// On a busy machine a yielding copy starves and stops yielding for a
	// while (yieldRule), so some writes may run as any thread's.
	switch {
	case canYield() && yielded == 0:
		t.Fatalf("never yielded in %d writes", writes)
	case !canYield() && yielded > 0:
		t.Fatalf("yielded in %d writes without the right to stop", yielded)
	}
	if idle := idleThreads(t); len(idle) > 0 {
		t.Fatalf("threads left under SCHED_IDLE: %v", idle)
	}
}

// A copy that makes no progress while output waits (here: a slow
// destination) stops yielding within spoolStarved checks, so a busy
// machine cannot stall a dump.
func TestSpoolStopsYieldingWhenStarved(t *testing.T) {
	if !canYield() {
		t.Fatalf("this test needs the right to leave SCHED_IDLE (CAP_SYS_NICE, as root has, or RLIMIT_NICE 20); uid %d has not", os.Geteuid())
	}
	var first, later uint32 = 99, 99
	w := hashWriter{before: func(n int64) error {
		if n == 0 {
			first = policy(t)
			// Stall with output waiting, as a starved thread would, for
			// three times the 50 ms that spoolStarved checks take.
			time.Sleep(150 * time.Millisecond)
			later = policy(t)
		}
		return nil
	}}
	if err := (&tool{name: "sh", args: []string{"-c", "head -c 8388608 /dev/zero; sleep 0.5"}, stdout: &w}).run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if later != unix.SCHED_NORMAL {
		t.Fatalf("policy %d after stalling (first %d), want SCHED_NORMAL", later, first)
	}
	if idle := idleThreads(t); len(idle) > 0 {
		t.Fatalf("threads left under SCHED_IDLE: %v", idle)
	}
}

// yieldRule: yield until the backlog reaches spoolUrgent, progress stops
// for spoolStarved checks with output waiting, or the tool exits; then
// not until caught up.
func TestYieldRule(t *testing.T) {
	type check struct {
		off, backlog int64
		done         bool
		want         bool
	}
	const mb = 1 << 20
	for name, checks := range map[string][]check{
		"keeping up": {{0, 0, false, true}, {5 * mb, 100, false, true}, {9 * mb, 0, false, true}},
		"far behind": {{0, 0, false, true}, {mb, spoolUrgent - 1, false, true}, {2 * mb, spoolUrgent, false, false},
			{40 * mb, 2 * mb, false, false}, {48 * mb, mb - 1, false, true}},
		"starved": {{0, 0, false, true}, {mb, 10, false, true}, {mb, 10, false, true}, {mb, 10, false, true},
			{mb, 10, false, true}, {mb, 10, false, true}, {mb, 10, false, false}, {2 * mb, 10, false, true}},
		"idle, nothing waiting": {{mb, 0, false, true}, {mb, 0, false, true}, {mb, 0, false, true},
			{mb, 0, false, true}, {mb, 0, false, true}, {mb, 0, false, true}, {mb, 0, false, true}},
		"tool exited": {{0, 0, false, true}, {mb, 0, true, false}, {2 * mb, 0, true, false}},
	} {
		rule := yieldRule{lastOff: -1}
		for i, c := range checks {
			if got := rule.check(c.off, c.backlog, c.done); got != c.want {
				t.Errorf("%s: check %d (copied %d, backlog %d, done %v): yield %v, want %v", name, i, c.off, c.backlog, c.done, got, c.want)
			}
		}
	}
}

// pace: a wait when caught up lets about spoolBatch bytes arrive at the
// tool's rate so far, within spoolPoll and spoolPace.
func TestSpoolPace(t *testing.T) {
	for _, c := range []struct {
		name    string
		elapsed time.Duration
		off     int64
		want    time.Duration
	}{
		{"nothing read yet", time.Second, 0, spoolPoll},
		{"fast tool", 100 * time.Millisecond, 1 << 30, spoolPoll},
		{"100 MB/s", time.Second, 100 << 20, 5 * time.Millisecond},
		{"slow tool", time.Second, 1 << 20, spoolPace},
	} {
		r := &spoolReader{start: time.Now().Add(-c.elapsed)}
		r.off.Store(c.off)
		got := r.pace()
		// The clock moves on between start and pace: a little slack.
		if got < c.want || got > c.want+c.want/10+time.Millisecond/10 {
			t.Errorf("%s: pace %v, want %v", c.name, got, c.want)
		}
	}
}
