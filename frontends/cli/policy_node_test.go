package cli

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// TestPolicyCLI: dm policy set, show, prune (dry and real), remove over a
// real node; the scheduled commits come from the node's scheduler; bad
// input exits non-zero with one line and stores nothing.
func TestPolicyCLI(t *testing.T) {
	e, n := withNode(t)
	ctx := context.Background()
	mustRun(t, e, "init", "app")
	got := runDM(t, e, "policy", "set", "app", "--every", "1s", "--keep", "last=5")
	if got.code != 0 || !strings.Contains(got.err+got.out, "Policy dot:app: every 1s, keep last=5") {
		t.Fatalf("dm policy set: %+v", got)
	}
	if out := mustRun(t, e, "policy", "show"); !regexp.MustCompile(`^POLICY\s+EVERY\s+KEEP\s+SET BY\s+SET\ndot:app\s+1s\s+last=5\s+admin\s+\d{4}-`).MatchString(out) {
		t.Fatalf("dm policy show:\n%s", out)
	}
	if out := mustRun(t, e, "policy", "show", "app"); !strings.Contains(out, "policy:   dot:app\n") || !strings.Contains(out, "last run: -\n") {
		t.Fatalf("dm policy show app:\n%s", out)
	}

	// Three scheduled commits, a second apart, by the node's scheduler.
	for i := 0; i < 3; i++ {
		writeIn(t, e, "app", "f", strings.Repeat("x", i+1))
		runs, err := n.Node.Policies().RunDue(ctx)
		if err != nil || len(runs) != 1 || runs[0].Result != dotmesh.ScheduleCommitted {
			t.Fatalf("run %d: %+v, %v", i, runs, err)
		}
		time.Sleep(1100 * time.Millisecond)
	}
	var st dotmesh.PolicyStatus
	if err := json.Unmarshal([]byte(mustRun(t, e, "policy", "show", "app", "--json")), &st); err != nil || st.Last == nil || st.Last.Result != "committed" || st.Policy.Keep.Last != 5 {
		t.Fatalf("dm policy show app --json: %+v, %v", st, err)
	}
	if out := mustRun(t, e, "log", "-n", "1"); !strings.Contains(out, "scheduled commit (every 1s)") || !strings.Contains(out, "dotmesh-schedule=dot:app") {
		t.Fatalf("dm log of a scheduled commit:\n%s", out)
	}
	logLines := strings.Split(strings.TrimSpace(mustRun(t, e, "log", "-H")), "\n")
	if len(logLines) != 3 {
		t.Fatalf("want 3 commits, log:\n%s", strings.Join(logLines, "\n"))
	}
	oldest := strings.Fields(logLines[2])[0]
	middle := strings.Fields(logLines[1])[0]

	// Dry runs name exactly the commits that would go, with branch, time
	// and message; nothing changes.
	wantDry := regexp.MustCompile(`(?s)^would remove commit ` + oldest[:8] + `\S* of app@master \(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\) scheduled commit \(every 1s\)\nwould remove commit ` + middle[:8] + `\S* of app@master \(.*\) scheduled commit \(every 1s\)\nwould remove 2 commits and \d+ chunks; would free `)
	for _, args := range [][]string{
		{"policy", "prune", "app", "--keep", "last=1", "--dry-run"},
		{"policy", "set", "app", "--every", "1m", "--keep", "last=1", "--dry-run"},
		{"gc", "app", "--keep", "1", "--dry-run"},
	} {
		if out := mustRun(t, e, args...); !wantDry.MatchString(out) {
			t.Fatalf("dm %v:\n%s", args, out)
		}
	}
	if out := mustRun(t, e, "policy", "show", "-H"); !strings.HasPrefix(out, "dot:app\t1s\tlast=5\tadmin\t") {
		t.Fatalf("the dry run of set changed the policy: %q", out)
	}
	if out := mustRun(t, e, "policy", "prune", "app", "--dry-run"); !strings.HasPrefix(out, "would remove 0 commits") {
		t.Fatalf("the policy's own grid (last=5) removes nothing of 3:\n%s", out)
	}

	// Bad input: one line, the right status, nothing stored.
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"policy", "set", "app", "--every", "0s"}, exitInvalid},
		{[]string{"policy", "set", "app", "--every", "soon"}, exitInvalid},
		{[]string{"policy", "set", "app", "--every", "1m", "--keep", "minutely=3"}, exitInvalid},
		{[]string{"policy", "set", "app", "--every", "1m", "--keep", "last=0"}, exitInvalid},
		{[]string{"policy", "set", "app", "--keep", "last=1"}, exitUsage},
		{[]string{"policy", "set", "--every", "1m"}, exitUsage},
		{[]string{"policy", "set", "app", "--label", "a=b", "--every", "1m"}, exitUsage},
		{[]string{"policy", "set", "--label", "a b", "--every", "1m"}, exitInvalid},
		{[]string{"policy", "set", "nope", "--every", "1m"}, exitNotFound},
		{[]string{"policy", "prune", "app", "--keep", "daily=x"}, exitInvalid},
	} {
		r := runDM(t, e, c.args...)
		if r.code != c.code || strings.Count(r.err, "\n") != 1 || !strings.HasPrefix(r.err, "dm: ") {
			t.Errorf("dm %v: exit %d (want %d), stderr %q", c.args, r.code, c.code, r.err)
		}
	}
	if out := mustRun(t, e, "policy", "show", "-H"); out != strings.SplitAfter(out, "\n")[0] || !strings.HasPrefix(out, "dot:app\t1s\tlast=5\t") {
		t.Fatalf("bad input changed the policies: %q", out)
	}

	// A real prune by the grid, then a selector's policy, then removal.
	if out := mustRun(t, e, "policy", "prune", "app", "--keep", "last=2"); !strings.Contains(out, "removed commit "+oldest[:8]) || !strings.Contains(out, "removed 1 commits") {
		t.Fatalf("dm policy prune app --keep last=2:\n%s", out)
	}
	if n := len(strings.Split(strings.TrimSpace(mustRun(t, e, "log", "-H")), "\n")); n != 2 {
		t.Fatalf("after the prune the log has %d commits, want 2", n)
	}
	mustRun(t, e, "policy", "set", "--label", "app=shop", "--every", "1h", "--keep", "daily=7")
	if out := mustRun(t, e, "policy", "show", "-H"); !strings.Contains(out, "selector:app=shop\t1h\tdaily=7\tadmin\t") {
		t.Fatalf("dm policy show -H with a selector's policy:\n%s", out)
	}
	mustRun(t, e, "policy", "remove", "--label", "app=shop")
	mustRun(t, e, "policy", "remove", "app")
	if r := runDM(t, e, "policy", "remove", "app"); r.code != exitNotFound {
		t.Fatalf("removing a policy twice: %+v", r)
	}
	if out := mustRun(t, e, "policy", "show", "--json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("policies left: %s", out)
	}
}
