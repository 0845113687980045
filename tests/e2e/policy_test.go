package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// TestPolicyRealTime: a real node (dm cluster init) runs a 1 s schedule
// for 30 s while a file changes every 300 ms, pruning by
// last=3,hourly=2 after each commit. Every scheduled commit is seen (the
// log is polled faster than the grid lets one go); at the end the
// surviving commits are exactly what the grid keeps of all of them, the
// node logged what it removed and the bytes freed, and the history is
// one chain that restores.
func TestPolicyRealTime(t *testing.T) {
	const (
		run  = 30 * time.Second
		grid = "last=3,hourly=2"
	)
	e := newEnv(t)
	e.clusterInit()
	e.ok("init", "app")
	e.ok("switch", "app")
	db := e.path("app.db")
	writeFile(t, filepath.Join(db, "data"), randomText(t, 64<<10))
	e.ok("policy", "set", "app", "--every", "1s", "--keep", grid)
	start := time.Now()

	// A writer changes the file; a watcher records every commit it sees.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(300 * time.Millisecond):
				_ = os.WriteFile(filepath.Join(db, "data"), []byte(randomText(t, 64<<10)), 0o644)
			}
		}
	}()
	seen := map[dotmesh.CommitID]dotmesh.Commit{}
	for time.Since(start) < run {
		for _, c := range e.log("app") {
			seen[c.ID] = c
		}
		time.Sleep(250 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	e.ok("policy", "remove", "app")
	time.Sleep(1500 * time.Millisecond) // a pass that read the policy before ends
	for _, c := range e.log("app") {
		seen[c.ID] = c
	}

	var all []dotmesh.Commit
	for _, c := range seen {
		if c.Metadata[dotmesh.MetaSchedule] != "dot:app" || c.Message != "scheduled commit (every 1s)" {
			t.Fatalf("a commit the schedule did not make: %+v", c)
		}
		all = append(all, c)
	}
	slices.SortFunc(all, func(a, b dotmesh.Commit) int { return b.Time.Compare(a.Time) })
	if len(all) < int(run/time.Second)*2/3 {
		t.Fatalf("the schedule made %d commits in %s, want about one a second", len(all), run)
	}
	// A run is due a period after the previous run started; its commit's
	// time comes later by as long as the commit took to start, which a
	// loaded machine stretches. Two runs in one period would be much
	// closer than half of it.
	for i := 1; i < len(all); i++ {
		if gap := all[i-1].Time.Sub(all[i].Time); gap < 500*time.Millisecond {
			t.Fatalf("two scheduled commits %s apart, the period is 1s", gap)
		}
	}
	g, err := dotmesh.ParseKeepGrid(grid)
	if err != nil {
		t.Fatal(err)
	}
	times := make([]time.Time, len(all))
	for i, c := range all {
		times[i] = c.Time
	}
	var want []dotmesh.CommitID
	var reasons [][]string
	for i, why := range g.Keep(times) {
		if len(why) > 0 {
			want = append(want, all[i].ID)
			reasons = append(reasons, why)
		}
	}
	final := e.log("app")
	var got []dotmesh.CommitID
	for i, c := range final {
		got = append(got, c.ID)
		if i+1 < len(final) && c.Parent != final[i+1].ID {
			t.Fatalf("the kept history is not one chain at %s", c.ID)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("surviving commits %v, the grid keeps %v (of %d)", got, want, len(all))
	}

	logText, _ := os.ReadFile(filepath.Join(e.data, "dm.log"))
	prunes := regexp.MustCompile(`msg="pruned by the policy's grid".* bytes_freed=(\d+)`).FindAllSubmatch(logText, -1)
	var freed int64
	for _, m := range prunes {
		n, _ := strconv.ParseInt(string(m[1]), 10, 64)
		freed += n
	}
	if len(prunes) == 0 || freed < int64(len(all)-len(got))*32<<10 {
		t.Fatalf("the node logged %d prunes freeing %d bytes for %d removed commits", len(prunes), freed, len(all)-len(got))
	}
	t.Logf("retention figures: %s at 1s, keep %s: %d scheduled commits, %d kept (%v), %d removed in %d prunes, %d bytes freed",
		run, grid, len(all), len(got), reasons, len(all)-len(got), len(prunes), freed)

	e.ok("reset", "--hard", string(final[len(final)-1].ID))
	e.ok("verify", "app") // damage would exit 8
}

// TestReadmePolicyLines runs the label and policy lines of README's
// "Whole deployments" block as written (the transfers there need
// remotes and are left out), with a scheduled commit in between.
func TestReadmePolicyLines(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sect, ok := strings.Cut(string(b), "\n## Whole deployments\n")
	if !ok {
		t.Fatal("README.md has no \"## Whole deployments\" section")
	}
	_, block, _ := strings.Cut(sect, "```sh\n")
	block, _, _ = strings.Cut(block, "```")
	e := newEnv(t)
	e.clusterInit()
	e.ok("init", "shop-db")
	e.ok("init", "shop-web")
	writeFile(t, filepath.Join(e.path("shop-db.db"), "f"), "x")
	ran := 0
	for _, l := range strings.Split(block, "\n") {
		if !strings.HasPrefix(l, "dm dot label ") && !strings.HasPrefix(l, "dm policy ") && !strings.HasPrefix(l, "dm gc shop-db ") {
			continue
		}
		cmd := exec.Command("bash", "-c", l)
		cmd.Env = append(e.environ(), "PATH="+filepath.Dir(dmBin)+":"+os.Getenv("PATH"), "DOTMESH_CONFIG="+e.config)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("README line %q: %v\n%s", l, err, out)
		}
		ran++
		if strings.HasPrefix(l, "dm policy set shop-db") {
			// The node's first pass commits shop-db at once.
			deadline := time.Now().Add(30 * time.Second)
			for len(e.log("shop-db")) == 0 && time.Now().Before(deadline) {
				time.Sleep(200 * time.Millisecond)
			}
			if log := e.log("shop-db"); len(log) != 1 || log[0].Metadata[dotmesh.MetaSchedule] != "dot:shop-db" {
				t.Fatalf("after %q the log of shop-db is %+v", l, log)
			}
		}
	}
	if ran < 8 {
		t.Fatalf("ran %d README lines, want the label and policy ones", ran)
	}
}
