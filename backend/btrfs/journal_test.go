//go:build linux && cgo

package btrfs

import (
	"bufio"
	"bytes"
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

// journalChildEnv names the directory the child of
// TestJournaledCommitSurvivesKill works in.
const journalChildEnv = "DM_BTRFS_JOURNAL_CHILD"

var journalDot = dotmesh.DotName{Namespace: dotmesh.DefaultNamespace, Name: "journal"}

// openJournalNode opens a standalone Node on a btrfs backend in dir and a
// bbolt registry beside it; before, when set, runs on the backend first.
func openJournalNode(t testing.TB, dir string, step func(string), before func(*Guarded), log io.Writer) *dotmesh.Node {
	t.Helper()
	ctx := context.Background()
	be, err := Open(ctx, Options{DataDir: filepath.Join(dir, "btrfs")})
	if err != nil {
		t.Fatal(err)
	}
	if before != nil {
		before(be)
	}
	store, err := bboltstore.Open(filepath.Join(dir, "registry.db"), bboltstore.Options{})
	if err != nil {
		be.Close()
		t.Fatal(err)
	}
	if log == nil {
		log = os.Stderr
	}
	n, err := dotmesh.NewNode(ctx, dotmesh.Options{Store: store, Backends: []dotmesh.StorageBackend{be}, StepHook: step, Logger: slog.New(slog.NewTextHandler(log, nil))})
	if err != nil {
		be.Close()
		store.Close()
		t.Fatal(err)
	}
	return n
}

func writeDot(t testing.TB, n *dotmesh.Node, data string) {
	t.Helper()
	p, err := n.SubdotPath(context.Background(), dotmesh.VolumeName{Dot: journalDot})
	if err != nil {
		t.Fatal(err)
	}
	must(t, os.WriteFile(filepath.Join(p, "data.txt"), []byte(data), 0o644))
}

// TestJournalCrashChild is the node TestJournaledCommitSurvivesKill
// kills: it commits twice and is killed by SIGKILL after the second
// commit was answered, before that commit's registry transaction.
func TestJournalCrashChild(t *testing.T) {
	dir := os.Getenv(journalChildEnv)
	if dir == "" {
		t.Skip("run by TestJournaledCommitSurvivesKill")
	}
	answered := make(chan struct{})
	steps := 0
	n := openJournalNode(t, dir, func(step string) {
		if step != "commit answered" {
			return
		}
		if steps++; steps == 2 {
			<-answered
			syscall.Kill(os.Getpid(), syscall.SIGKILL) // this process only
			select {}
		}
	}, nil, nil)
	ctx := context.Background()
	if _, err := n.CreateDot(ctx, journalDot, dotmesh.CreateDotOptions{}); err != nil {
		t.Fatal(err)
	}
	writeDot(t, n, "one")
	if _, err := n.Commit(ctx, journalDot, "", dotmesh.CommitOptions{Message: "first"}); err != nil {
		t.Fatal(err)
	}
	writeDot(t, n, "two")
	c, err := n.Commit(ctx, journalDot, "", dotmesh.CommitOptions{Message: "answered, then killed"})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("answered %s\n", c.ID)
	os.Stdout.Sync()
	close(answered)
	select {}
}

// TestJournaledCommitSurvivesKill: a commit answered before its registry
// transaction, whose node was then killed, is in the log with its message
// after a restart; a journal record whose snapshot was never taken is
// dropped; a commit is seen by a log read right after its answer; an
// unchanged working state is still nothing to commit.
func TestJournaledCommitSurvivesKill(t *testing.T) {
	ctx := context.Background()
	dir := sharedRoot(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestJournalCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), journalChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())
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

	// A record of a commit whose snapshot was never taken (killed before
	// the ioctl) is dropped at the start.
	var ghost dotmesh.CommitRef
	var logged bytes.Buffer
	n := openJournalNode(t, dir, nil, func(be *Guarded) {
		js, err := be.Journaled(ctx)
		must(t, err)
		if len(js) != 1 || string(js[0].Commit.ID) != id || !js[0].Stored {
			t.Fatalf("journal after the kill: %+v, want the answered commit %s, stored", js, id)
		}
		ghost = dotmesh.CommitRef{BranchRef: js[0].Commit.BranchRef, ID: dotmesh.NewCommitID()}
		rec := fmt.Sprintf(`{"commit":{"id":%q,"dot":%q,"branch":%q,"parent":%q,"message":"never taken"},"branch":"master"}`, ghost.ID, ghost.Dot, ghost.Branch, id)
		must(t, be.JournalCommit(ctx, ghost, nil, []byte(rec)))
	}, &logged)
	defer func() { n.Close() }()
	if !strings.Contains(logged.String(), "whose data was never made") || !strings.Contains(logged.String(), string(ghost.ID)) {
		t.Fatalf("the start did not drop the record of %s as never made; its log:\n%s", ghost.ID, logged.String())
	}
	log, err := n.Log(ctx, journalDot, "", 0)
	must(t, err)
	if len(log) != 2 || string(log[0].ID) != id || log[0].Message != "answered, then killed" || log[1].Message != "first" {
		t.Fatalf("log after restart: %+v, want the answered commit %s on top of the first", log, id)
	}
	if log[0].Info[dotmesh.InfoConsistency] != dotmesh.ConsistencyCrash || log[0].Info["btrfs_uuid"] == "" {
		t.Fatalf("replayed commit's facts: %v", log[0].Info)
	}
	be, _ := n.Backend(Name)
	js, err := be.(dotmesh.CommitJournal).Journaled(ctx)
	must(t, err)
	if len(js) != 0 {
		t.Fatalf("journal after the restart: %+v, want none", js)
	}
	if ids, err := be.Commits(ctx, ghost.BranchRef); err != nil || len(ids) != 2 {
		t.Fatalf("commits stored after the restart: %v, %v; want 2", ids, err)
	}

	// Answered, then read at once: the log waits for the transaction.
	writeDot(t, n, "three")
	c, err := n.Commit(ctx, journalDot, "", dotmesh.CommitOptions{Message: "third"})
	must(t, err)
	if log, err = n.Log(ctx, journalDot, "", 1); err != nil || len(log) != 1 || log[0].ID != c.ID {
		t.Fatalf("log right after the commit: %+v, %v; want %s", log, err, c.ID)
	}
	_, err = n.Commit(ctx, journalDot, "", dotmesh.CommitOptions{Message: "unchanged"})
	var nothing *dotmesh.NothingToCommitError
	if !errors.As(err, &nothing) {
		t.Fatalf("commit of an unchanged state: %v, want NothingToCommitError", err)
	}
	must(t, n.Close())

	// A crash between the snapshot of an unchanged state and its deletion
	// leaves no commit.
	head := dotmesh.CommitRef{BranchRef: ghost.BranchRef, ID: c.ID}
	empty := dotmesh.CommitRef{BranchRef: ghost.BranchRef, ID: dotmesh.NewCommitID()}
	logged.Reset()
	n = openJournalNode(t, dir, nil, func(be *Guarded) {
		js, err := be.Journaled(ctx)
		must(t, err)
		if len(js) != 0 {
			t.Fatalf("journal after a clean close: %+v, want none", js)
		}
		rec := fmt.Sprintf(`{"commit":{"id":%q,"dot":%q,"branch":%q,"parent":%q,"message":"unchanged"},"branch":"master"}`, empty.ID, empty.Dot, empty.Branch, c.ID)
		must(t, be.JournalCommit(ctx, empty, &head, []byte(rec)))
		_, err = be.Commit(ctx, empty)
		must(t, err)
	}, &logged)
	if !strings.Contains(logged.String(), "equals its head") || !strings.Contains(logged.String(), string(empty.ID)) {
		t.Fatalf("the start did not drop the record of the unchanged %s; its log:\n%s", empty.ID, logged.String())
	}
	if log, err = n.Log(ctx, journalDot, "", 0); err != nil || len(log) != 3 {
		t.Fatalf("log after a restart: %+v, %v; want 3 commits", log, err)
	}
	be, _ = n.Backend(Name)
	if ids, err := be.Commits(ctx, empty.BranchRef); err != nil || len(ids) != 3 {
		t.Fatalf("commits stored after the restart: %v, %v; want 3", ids, err)
	}
}
