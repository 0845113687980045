package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// dm commit catches SIGINT and SIGTERM only once it has run a while
// (cli's catchLate): one in its first moments, the request already at
// the node, ends dm by the signal's default action, which costs no
// handler; one during a long commit cancels it: "interrupted", status 130.
func TestCommitCatchesInterruptsLate(t *testing.T) {
	dir, dm, _, env, run := lightNode(t)
	started := filepath.Join(dir, "hook-started")
	for _, args := range [][]string{
		{"init", "app"},
		{"hook", "set", "app", "pre-commit", "--", "sh", "-c", "touch " + started + "; sleep 2"},
	} {
		if out, err := run(args...); err != nil {
			t.Fatalf("dm %v: %v: %s", args, err, out)
		}
	}
	commit := func() (*exec.Cmd, *bytes.Buffer, time.Time) {
		os.Remove(started)
		cmd := exec.Command(dm, "commit", "--allow-empty", "-m", "x")
		cmd.Env = env
		var errb bytes.Buffer
		cmd.Stderr = &errb
		t0 := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, &errb, t0
	}

	// Early: as soon as the node runs the hook. A loaded machine may take
	// longer than the grace to get there; a few tries find a quick one.
	early := false
	for try := 0; try < 5 && !early; try++ {
		cmd, errb, t0 := commit()
		for {
			if _, err := os.Stat(started); err == nil {
				break
			}
			if time.Since(t0) > 5*time.Second {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("the pre-commit hook did not start in 5 s: %s", errb)
			}
			time.Sleep(time.Millisecond)
		}
		late := time.Since(t0) > 100*time.Millisecond
		cmd.Process.Signal(os.Interrupt)
		err := cmd.Wait()
		if late {
			continue
		}
		early = true
		ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if err == nil || !ws.Signaled() || ws.Signal() != syscall.SIGINT || errb.Len() != 0 {
			t.Errorf("dm commit interrupted at once: %v (%v), stderr %q; want it ended by SIGINT, silent", err, cmd.ProcessState, errb)
		}
	}
	if !early {
		t.Error("in 5 tries, the node never ran the hook within 100 ms of dm's start")
	}

	// Late: the handler cancels the commit.
	cmd, errb, _ := commit()
	time.Sleep(time.Second)
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); err == nil || code != 130 || errb.String() != "dm: interrupted\n" {
		t.Errorf("dm commit interrupted after 1 s: %v (status %d), stderr %q; want status 130, \"dm: interrupted\"", err, code, errb)
	}
}
