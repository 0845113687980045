package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestStablePathAndCheckoutWarning: dm path prints DATADIR/dots/NS/DOT/
// SUBDOT, which follows checkout; dm checkout warns about a real process
// whose working directory is in the old branch's tree, and says nothing
// when no process is there. @BRANCH and --branch print the branch's own
// directory.
func TestStablePathAndCheckoutWarning(t *testing.T) {
	e := newEnv(t)
	e.clusterInit()
	e.ok("init", "app")
	p := e.path("app.db")
	if want := filepath.Join(e.data, "dots", "admin", "app", "db"); p != want {
		t.Fatalf("dm path app.db = %s, want the stable path %s", p, want)
	}
	if err := os.WriteFile(filepath.Join(p, "f"), []byte("master"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.ok("commit", "--dot", "app", "-m", "one")

	sleep := exec.Command("sleep", "300")
	sleep.Dir = p
	if err := sleep.Start(); err != nil {
		t.Fatalf("starting sleep (coreutils) in %s: %v", p, err)
	}
	defer func() { sleep.Process.Kill(); sleep.Wait() }()
	r := e.dm("checkout", "--dot", "app", "-b", "exp")
	if r.code != 0 {
		t.Fatalf("dm checkout -b exp with a process in master's tree: %v", r)
	}
	want := "process " + strconv.Itoa(sleep.Process.Pid) + " (sleep) has its working directory"
	if !strings.HasPrefix(r.err, "Warning: ") || !strings.Contains(r.err, want) || !strings.Contains(r.err, "it still sees branch master; cd to "+p+" again") {
		t.Fatalf("dm checkout -b exp stderr %q; want a warning naming %q and the path %s", r.err, want, p)
	}

	// The same path now shows exp; master's own directory keeps its file.
	if err := os.WriteFile(filepath.Join(p, "f"), []byte("exp"), 0o644); err != nil {
		t.Fatal(err)
	}
	own := e.path("app@master.db")
	if got := strings.TrimSpace(e.ok("path", "app.db", "--branch", "master")); got != own {
		t.Errorf("dm path app.db --branch master = %s, want app@master.db's %s", got, own)
	}
	if b, _ := os.ReadFile(filepath.Join(own, "f")); string(b) != "master" {
		t.Errorf("master's f after writing through the stable path on exp: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(e.path("app@exp.db"), "f")); string(b) != "exp" {
		t.Errorf("exp's f: %q", b)
	}
	if !strings.Contains(e.ok("list", "-H"), "app\texp\t") {
		t.Errorf("dm list does not show app on exp")
	}

	// Nobody in exp's tree: no warning. And none once sleep is gone.
	sleep.Process.Kill()
	sleep.Wait()
	for _, b := range []string{"master", "exp"} {
		if r := e.dm("checkout", "--dot", "app", b); r.code != 0 || r.err != "" {
			t.Fatalf("dm checkout %s with nobody in the old tree: %v", b, r)
		}
	}
}
