//go:build linux && cgo

package btrfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/backendtest"
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
	return backendtest.OpenJournalNode(t, be, filepath.Join(dir, "registry.db"), step, log)
}

// TestJournalCrashChild is the node TestJournaledCommitSurvivesKill
// kills (backendtest.JournalCrashChild).
func TestJournalCrashChild(t *testing.T) {
	dir := os.Getenv(journalChildEnv)
	if dir == "" {
		return // the body of a child process TestJournaledCommitSurvivesKill starts and kills; nothing to run alone
	}
	backendtest.JournalCrashChild(t, journalDot, func(step func(string)) *dotmesh.Node {
		return openJournalNode(t, dir, step, nil, nil)
	})
}

// TestJournaledCommitSurvivesKill: a commit answered before its registry
// transaction, whose node was then killed, is in the log with its message
// after a restart; a journal record whose snapshot was never taken is
// dropped; a commit is seen by a log read right after its answer; an
// unchanged working state is still nothing to commit, and its snapshot a
// crash left before its deletion is not replayed; a record left of a
// commit recorded and then reset away does not bring it back.
func TestJournaledCommitSurvivesKill(t *testing.T) {
	ctx := context.Background()
	dir := sharedRoot(t)
	id := string(backendtest.RunJournalCrashChild(t, "TestJournalCrashChild", journalChildEnv+"="+dir))

	// A record of a commit whose snapshot was never taken (killed before
	// the ioctl) is dropped at the start.
	var ghost dotmesh.CommitRef
	var logged bytes.Buffer
	// The records of later commits, as their answers leave them.
	var journaled []dotmesh.JournaledCommit
	var n *dotmesh.Node
	n = openJournalNode(t, dir, func(step string) {
		if step == "commit answered" {
			be, _ := n.Backend(Name)
			js, err := be.(dotmesh.CommitJournal).Journaled(ctx)
			must(t, err)
			journaled = append(journaled, js...)
		}
	}, func(be *Guarded) {
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
	backendtest.WriteDotFile(t, n, journalDot, "three")
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
	if len(journaled) != 1 || journaled[0].Commit.ID != c.ID {
		t.Fatalf("records at the third commit's answer: %+v, want its own", journaled)
	}
	// The third commit goes.
	_, err = n.Reset(ctx, journalDot, "", id, dotmesh.ResetOptions{Hard: true})
	must(t, err)
	must(t, n.Close())

	// A crash between the snapshot of an unchanged state and its deletion
	// leaves no commit; nor does a record whose removal was not durable,
	// of a commit recorded and then reset away, with its data, as a crash
	// in the reset's deletion leaves them.
	head := dotmesh.CommitRef{BranchRef: ghost.BranchRef, ID: dotmesh.CommitID(id)}
	empty := dotmesh.CommitRef{BranchRef: ghost.BranchRef, ID: dotmesh.NewCommitID()}
	logged.Reset()
	n = openJournalNode(t, dir, nil, func(be *Guarded) {
		js, err := be.Journaled(ctx)
		must(t, err)
		if len(js) != 0 {
			t.Fatalf("journal after a clean close: %+v, want none", js)
		}
		gone := journaled[0].Commit
		must(t, be.JournalCommit(ctx, gone, nil, journaled[0].Record))
		_, err = be.Commit(ctx, gone)
		must(t, err)
		rec := fmt.Sprintf(`{"commit":{"id":%q,"dot":%q,"branch":%q,"parent":%q,"message":"unchanged"},"branch":"master"}`, empty.ID, empty.Dot, empty.Branch, id)
		must(t, be.JournalCommit(ctx, empty, &head, []byte(rec)))
		_, err = be.Commit(ctx, empty)
		must(t, err)
	}, &logged)
	if !strings.Contains(logged.String(), "branch moved on") || !strings.Contains(logged.String(), string(c.ID)) {
		t.Fatalf("the start did not drop the record of the reset %s; its log:\n%s", c.ID, logged.String())
	}
	if !strings.Contains(logged.String(), "equals its head") || !strings.Contains(logged.String(), string(empty.ID)) {
		t.Fatalf("the start did not drop the record of the unchanged %s; its log:\n%s", empty.ID, logged.String())
	}
	if log, err = n.Log(ctx, journalDot, "", 0); err != nil || len(log) != 2 || string(log[0].ID) != id {
		t.Fatalf("log after a restart: %+v, %v; want the 2 commits before the reset", log, err)
	}
	be, _ = n.Backend(Name)
	if ids, err := be.Commits(ctx, empty.BranchRef); err != nil || len(ids) != 2 {
		t.Fatalf("commits stored after the restart: %v, %v; want 2", ids, err)
	}
}
