//go:build unix

package backendtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// JournalCrashChild is the body of the child process of a crash test of
// a dotmesh.CommitJournal backend: a Node opened by open, with the step
// hook it is given, creates dot, commits "first" and then "answered,
// then killed", prints "answered <id>" and is killed by SIGKILL at that
// commit's "commit answered" step: after the answer, before the
// registry's transaction.
func JournalCrashChild(t testing.TB, dot dotmesh.DotName, open func(step func(string)) *dotmesh.Node) {
	answered := make(chan struct{})
	steps := 0
	n := open(func(step string) {
		if step != "commit answered" {
			return
		}
		if steps++; steps == 2 {
			<-answered
			syscall.Kill(os.Getpid(), syscall.SIGKILL) // this process only
			select {}
		}
	})
	ctx := context.Background()
	if _, err := n.CreateDot(ctx, dot, dotmesh.CreateDotOptions{}); err != nil {
		t.Fatal(err)
	}
	WriteDotFile(t, n, dot, "one")
	if _, err := n.Commit(ctx, dot, "", dotmesh.CommitOptions{Message: "first"}); err != nil {
		t.Fatal(err)
	}
	WriteDotFile(t, n, dot, "two")
	c, err := n.Commit(ctx, dot, "", dotmesh.CommitOptions{Message: "answered, then killed"})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("answered %s\n", c.ID)
	os.Stdout.Sync()
	close(answered)
	select {}
}

// RunJournalCrashChild runs test, of this test binary, in a child process
// with env ("NAME=value") added, and returns the commit the child
// answered before it was killed by SIGKILL (JournalCrashChild).
func RunJournalCrashChild(t testing.TB, test, env string) dotmesh.CommitID {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var id string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if s, ok := strings.CutPrefix(sc.Text(), "answered "); ok {
			id = s
		}
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child: %v, want killed by SIGKILL", err)
	}
	if id == "" {
		t.Fatal("the child answered no commit before it was killed")
	}
	return dotmesh.CommitID(id)
}

// WriteDotFile writes data to data.txt in dot's root subdot.
func WriteDotFile(t testing.TB, n *dotmesh.Node, dot dotmesh.DotName, data string) {
	t.Helper()
	p, err := n.SubdotPath(context.Background(), dotmesh.VolumeName{Dot: dot})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p, "data.txt"), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// OpenJournalNode opens a standalone Node on be with the bbolt registry
// at path, with step as its StepHook and logging to log (nil: stderr).
func OpenJournalNode(t testing.TB, be dotmesh.StorageBackend, path string, step func(string), log io.Writer) *dotmesh.Node {
	t.Helper()
	store, err := bboltstore.Open(path, bboltstore.Options{})
	if err != nil {
		be.Close()
		t.Fatal(err)
	}
	return OpenJournalNodeOn(t, be, store, step, log)
}

// OpenJournalNodeOn is OpenJournalNode on an open store, which the Node
// closes.
func OpenJournalNodeOn(t testing.TB, be dotmesh.StorageBackend, store dotmesh.ClusterStore, step func(string), log io.Writer) *dotmesh.Node {
	t.Helper()
	if log == nil {
		log = os.Stderr
	}
	n, err := dotmesh.NewNode(context.Background(), dotmesh.Options{Store: store, Backends: []dotmesh.StorageBackend{be}, StepHook: step, Logger: slog.New(slog.NewTextHandler(log, nil))})
	if err != nil {
		be.Close()
		store.Close()
		t.Fatal(err)
	}
	return n
}
