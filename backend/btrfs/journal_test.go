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
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/backendtest"
	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/internal/syncbuf"
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

// failingCommits is the node's bbolt registry with the next left
// transactions that record a commit failing as an I/O error would, before
// they reach the store.
type failingCommits struct {
	dotmesh.ClusterStore
	mu           sync.Mutex
	left, failed int
}

func (s *failingCommits) Txn(ctx context.Context, conds []dotmesh.Condition, ops []dotmesh.Op) (int64, error) {
	s.mu.Lock()
	fail := s.left > 0 && slices.ContainsFunc(ops, func(op dotmesh.Op) bool { return strings.HasPrefix(op.Key, "commits/") && !op.Delete })
	if fail {
		s.left--
		s.failed++
	}
	s.mu.Unlock()
	if fail {
		return 0, fmt.Errorf("injected registry write failure: %w", syscall.EIO)
	}
	return s.ClusterStore.Txn(ctx, conds, ops)
}

// TestJournaledCommitHealsTransientFailure: when the registry transaction
// behind a commit's answer fails twice with an I/O error, the node tries
// it again while reads still wait: a log read right after the answer has
// the commit, its journal record is gone, and nothing is left to replay.
func TestJournaledCommitHealsTransientFailure(t *testing.T) {
	ctx := context.Background()
	dir := sharedRoot(t)
	var store *failingCommits
	var logged syncbuf.Buffer
	n := openJournalNodeOn(t, dir, func(s dotmesh.ClusterStore) dotmesh.ClusterStore {
		store = &failingCommits{ClusterStore: s}
		return store
	}, &logged)
	defer n.Close()
	dot := dotmesh.DotName{Namespace: dotmesh.DefaultNamespace, Name: "heals"}
	commitFirst(t, n, dot)

	store.mu.Lock()
	store.left = 2
	store.mu.Unlock()
	backendtest.WriteDotFile(t, n, dot, "two")
	c, err := n.Commit(ctx, dot, "", dotmesh.CommitOptions{Message: "after two failures"})
	must(t, err)
	log, err := n.Log(ctx, dot, "", 0)
	must(t, err)
	if len(log) != 2 || log[0].ID != c.ID || log[0].Message != "after two failures" {
		t.Fatalf("log right after the commit whose transaction failed twice: %+v, want %s on top; node log:\n%s", log, c.ID, logged.String())
	}
	store.mu.Lock()
	failed := store.failed
	store.mu.Unlock()
	if failed != 2 {
		t.Fatalf("%d transactions failed, want 2 (did the commit take the journal?)", failed)
	}
	jb, _ := n.Backend(Name)
	if js, err := jb.(dotmesh.CommitJournal).Journaled(ctx); err != nil || len(js) != 0 {
		t.Fatalf("journal after the healed transaction: %+v, %v; want none", js, err)
	}
	if !strings.Contains(logged.String(), "trying again") || strings.Contains(logged.String(), "replayed at the next start") {
		t.Fatalf("node log does not show the transaction tried again and done:\n%s", logged.String())
	}
}

// TestJournaledCommitBesideLabelWrites: a dot's labels written while a
// commit's transaction follows its answer (queued at the gate from the
// "commit answered" step, and racing the commit's branch read) do not
// conflict with it: every write of the branch record holds the dot's
// lock, and labels live in the dot's record. Both the commits and the
// labels are in the registry, and no transaction was tried again.
func TestJournaledCommitBesideLabelWrites(t *testing.T) {
	ctx := context.Background()
	dir := sharedRoot(t)
	dot := dotmesh.DotName{Namespace: dotmesh.DefaultNamespace, Name: "labelled"}
	var logged syncbuf.Buffer
	var labels sync.WaitGroup
	var answered atomic.Int32
	errs := make(chan error, 16)
	var n *dotmesh.Node
	label := func(k string) {
		defer labels.Done()
		_, err := n.Label(ctx, dot, dotmesh.LabelChange{Set: map[string]string{k: "yes"}})
		errs <- err
	}
	step := func(s string) {
		if s != "commit answered" {
			return
		}
		labels.Add(1)
		go label(fmt.Sprintf("answered%d", answered.Add(1)))
		time.Sleep(20 * time.Millisecond) // let it reach the gate
	}
	n = openJournalNode(t, dir, step, nil, &logged)
	defer n.Close()
	_, err := n.CreateDot(ctx, dot, dotmesh.CreateDotOptions{})
	must(t, err)
	var ids []dotmesh.CommitID
	for i := range 4 {
		backendtest.WriteDotFile(t, n, dot, fmt.Sprint(i))
		labels.Add(1)
		go label(fmt.Sprintf("racing%d", i)) // beside the commit's read, snapshot and answer
		c, err := n.Commit(ctx, dot, "", dotmesh.CommitOptions{Message: fmt.Sprint("commit ", i)})
		must(t, err)
		ids = append(ids, c.ID)
	}
	labels.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	log, err := n.Log(ctx, dot, "", 0)
	must(t, err)
	if len(log) != 4 || log[0].ID != ids[3] || log[3].ID != ids[0] {
		t.Fatalf("log: %+v, want the 4 commits %v", log, ids)
	}
	d, err := n.Dot(ctx, dot)
	must(t, err)
	if len(d.Labels) != 8 {
		t.Fatalf("labels: %v, want 8", d.Labels)
	}
	if s := logged.String(); strings.Contains(s, "recording an answered commit") || strings.Contains(s, "another writer") {
		t.Fatalf("a commit's transaction was tried again:\n%s", s)
	}
}

// openJournalNodeOn is openJournalNode on the bbolt registry in dir as
// wrap returns it.
func openJournalNodeOn(t testing.TB, dir string, wrap func(dotmesh.ClusterStore) dotmesh.ClusterStore, log io.Writer) *dotmesh.Node {
	t.Helper()
	be, err := Open(context.Background(), Options{DataDir: filepath.Join(dir, "btrfs")})
	must(t, err)
	bs, err := bboltstore.Open(filepath.Join(dir, "registry.db"), bboltstore.Options{})
	if err != nil {
		be.Close()
		t.Fatal(err)
	}
	return backendtest.OpenJournalNodeOn(t, be, wrap(bs), nil, log)
}

// commitFirst creates dot on n and commits "first" in it, and returns
// once the commit's registry transaction is done.
func commitFirst(t testing.TB, n *dotmesh.Node, dot dotmesh.DotName) {
	t.Helper()
	ctx := context.Background()
	_, err := n.CreateDot(ctx, dot, dotmesh.CreateDotOptions{})
	must(t, err)
	backendtest.WriteDotFile(t, n, dot, "one")
	_, err = n.Commit(ctx, dot, "", dotmesh.CommitOptions{Message: "first"})
	must(t, err)
	_, err = n.Log(ctx, dot, "", 0) // waits for the commit's transaction
	must(t, err)
}

// conflictChildEnv names the directory the child of
// TestJournaledCommitSurvivesOutsideWrite works in.
const conflictChildEnv = "DM_BTRFS_JOURNAL_CONFLICT_CHILD"

// outsideWriter is the node's bbolt registry with a writer outside the
// node: once armed, before the first transaction that records a commit it
// writes the commit's branch record again (its revision moves, so the
// transaction conflicts), and at the second it waits for answered and
// kills the process.
type outsideWriter struct {
	dotmesh.ClusterStore
	armed    atomic.Bool
	tries    atomic.Int32
	answered chan struct{}
}

func (s *outsideWriter) Txn(ctx context.Context, conds []dotmesh.Condition, ops []dotmesh.Op) (int64, error) {
	if s.armed.Load() && slices.ContainsFunc(ops, func(op dotmesh.Op) bool { return strings.HasPrefix(op.Key, "commits/") }) {
		switch s.tries.Add(1) {
		case 1:
			for _, op := range ops {
				if strings.HasPrefix(op.Key, "branches/") {
					kv, err := s.ClusterStore.Get(ctx, op.Key)
					if err != nil {
						return 0, err
					}
					if _, err := s.ClusterStore.Put(ctx, op.Key, kv.Value); err != nil {
						return 0, err
					}
				}
			}
		case 2:
			<-s.answered
			syscall.Kill(os.Getpid(), syscall.SIGKILL) // this process only
			select {}
		}
	}
	return s.ClusterStore.Txn(ctx, conds, ops)
}

// TestJournalConflictChild is the node TestJournaledCommitSurvivesOutsideWrite
// kills.
func TestJournalConflictChild(t *testing.T) {
	dir := os.Getenv(conflictChildEnv)
	if dir == "" {
		return // the body of a child process TestJournaledCommitSurvivesOutsideWrite starts and kills; nothing to run alone
	}
	ctx := context.Background()
	var store *outsideWriter
	n := openJournalNodeOn(t, dir, func(s dotmesh.ClusterStore) dotmesh.ClusterStore {
		store = &outsideWriter{ClusterStore: s, answered: make(chan struct{})}
		return store
	}, nil)
	commitFirst(t, n, journalDot)
	store.armed.Store(true)
	backendtest.WriteDotFile(t, n, journalDot, "two")
	c, err := n.Commit(ctx, journalDot, "", dotmesh.CommitOptions{Message: "answered, then written from outside"})
	must(t, err)
	fmt.Printf("answered %s\n", c.ID)
	os.Stdout.Sync()
	close(store.answered)
	select {}
}

// TestJournaledCommitSurvivesOutsideWrite: a commit answered before its
// registry transaction, whose branch record a writer outside the node
// rewrote before that transaction (so it conflicted), and whose node was
// killed before the transaction was tried again, is in the log with its
// message after a restart: its record was journaled again at the
// revision the outside write left.
func TestJournaledCommitSurvivesOutsideWrite(t *testing.T) {
	ctx := context.Background()
	dir := sharedRoot(t)
	id := backendtest.RunJournalCrashChild(t, "TestJournalConflictChild", conflictChildEnv+"="+dir)
	var logged syncbuf.Buffer
	n := openJournalNode(t, dir, nil, nil, &logged)
	defer n.Close()
	log, err := n.Log(ctx, journalDot, "", 0)
	must(t, err)
	if len(log) != 2 || log[0].ID != id || log[0].Message != "answered, then written from outside" || log[1].Message != "first" {
		t.Fatalf("log after restart: %+v, want the answered commit %s on top of the first; node log:\n%s", log, id, logged.String())
	}
}
