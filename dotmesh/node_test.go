package dotmesh_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/backend/dump"
	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// env is a node on a temp dir with the real bbolt store and dump backend.
type env struct {
	t    *testing.T
	dir  string
	node *dotmesh.Node
	be   *dump.Guarded
	st   dotmesh.ClusterStore

	// For fault injection at the next open: the node's StepHook, and a
	// decorator of its backend.
	hook   func(step string)
	wrapBe func(dotmesh.StorageBackend) dotmesh.StorageBackend
}

func newEnv(t *testing.T) *env {
	e := &env{t: t, dir: t.TempDir()}
	e.open(nil)
	return e
}

// open (re)opens the node; wrap may decorate the store.
func (e *env) open(wrap func(dotmesh.ClusterStore) dotmesh.ClusterStore) {
	t := e.t
	st, err := bboltstore.Open(filepath.Join(e.dir, "registry.db"), bboltstore.Options{})
	require.NoError(t, err)
	be, err := dump.Open(filepath.Join(e.dir, "dump"), dump.Options{})
	require.NoError(t, err)
	e.be = be
	e.st = st
	var s dotmesh.ClusterStore = st
	if wrap != nil {
		s = wrap(st)
	}
	var sb dotmesh.StorageBackend = be
	if e.wrapBe != nil {
		sb = e.wrapBe(be)
	}
	n, err := dotmesh.NewNode(context.Background(), dotmesh.Options{Store: s, Backends: []dotmesh.StorageBackend{sb}, StepHook: func(step string) {
		if e.hook != nil {
			e.hook(step)
		}
	}})
	require.NoError(t, err)
	e.node = n
	t.Cleanup(func() { n.Close() })
}

func (e *env) reopen() {
	require.NoError(e.t, e.node.Close())
	e.open(nil)
}

var app = dotmesh.DotName{Namespace: dotmesh.DefaultNamespace, Name: "app"}

func (e *env) write(v string, file, content string) {
	name, err := dotmesh.ParseVolumeName(v)
	require.NoError(e.t, err)
	p, err := e.node.SubdotPath(context.Background(), name)
	require.NoError(e.t, err)
	require.NoError(e.t, os.WriteFile(filepath.Join(p, file), []byte(content), 0o644))
}

func (e *env) read(v string, file string) string {
	name, err := dotmesh.ParseVolumeName(v)
	require.NoError(e.t, err)
	p, err := e.node.SubdotPath(context.Background(), name)
	require.NoError(e.t, err)
	b, err := os.ReadFile(filepath.Join(p, file))
	if errors.Is(err, os.ErrNotExist) {
		return "<missing>"
	}
	require.NoError(e.t, err)
	return string(b)
}

func (e *env) commit(msg string) *dotmesh.Commit {
	c, err := e.node.Commit(context.Background(), app, "", dotmesh.CommitOptions{AllowEmpty: true, Message: msg, Author: "test"})
	require.NoError(e.t, err)
	return c
}

func (e *env) logMessages(branch string) []string {
	log, err := e.node.Log(context.Background(), app, branch, 0)
	require.NoError(e.t, err)
	var out []string
	for _, c := range log {
		out = append(out, c.Message)
	}
	return out
}

func TestDotLifecycle(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	d, err := e.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	require.Equal(t, "dump", d.Backend)
	require.Equal(t, dotmesh.DefaultBranch, d.Current)

	_, err = e.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.ErrorIs(t, err, dotmesh.ErrAlreadyExists)
	_, err = e.node.CreateDot(ctx, dotmesh.DotName{Namespace: "admin", Name: "../x"}, dotmesh.CreateDotOptions{})
	require.ErrorIs(t, err, dotmesh.ErrInvalidName)
	_, err = e.node.CreateDot(ctx, dotmesh.DotName{Namespace: "admin", Name: "other"}, dotmesh.CreateDotOptions{Backend: "nope"})
	require.ErrorIs(t, err, dotmesh.ErrInvalidArgument)

	list, err := e.node.ListDots(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1, "failed creates must not leave dots behind")
	require.Equal(t, 0, list[0].Commits)
	require.False(t, list[0].Usage.Dirty)

	e.write("app.db", "f", "x")
	st, err := e.node.Status(ctx, app)
	require.NoError(t, err)
	require.True(t, st.Usage.Dirty)

	require.NoError(t, e.node.DeleteDot(ctx, app))
	_, err = e.node.Status(ctx, app)
	require.ErrorIs(t, err, dotmesh.ErrNotFound)
	require.ErrorIs(t, e.node.DeleteDot(ctx, app), dotmesh.ErrNotFound)
	refs, err := e.be.Branches(ctx)
	require.NoError(t, err)
	require.Empty(t, refs, "deleting a dot removes its storage")

	// The name can be used again, for a new dot with a new id.
	d2, err := e.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	require.NotEqual(t, d.ID, d2.ID)
}

func TestCommitLogReset(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	_, err := e.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)

	_, err = e.node.ResolveRef(ctx, app, "", "HEAD")
	require.ErrorIs(t, err, dotmesh.ErrNotFound, "no commits yet")
	var nc *dotmesh.NoCommitsError
	require.ErrorAs(t, err, &nc)
	require.Equal(t, dotmesh.NoCommitsError{Dot: app, Branch: "master"}, *nc)

	e.write("app.db", "rows", "1")
	e.write("app.web", "page", "a")
	c1 := e.commit("one")
	e.write("app.db", "rows", "12")
	e.write("app.web", "page", "ab")
	c2 := e.commit("two")
	c3 := e.commit("three: no changes")
	require.Equal(t, []string{"three: no changes", "two", "one"}, e.logMessages(""))
	require.Equal(t, c2.ID, c3.Parent)
	require.Equal(t, c1.ID, c2.Parent)

	_, err = e.node.Commit(ctx, app, "", dotmesh.CommitOptions{Message: "  "})
	require.ErrorIs(t, err, dotmesh.ErrInvalidArgument)

	for ref, want := range map[string]dotmesh.CommitID{"HEAD": c3.ID, "HEAD^": c2.ID, "HEAD~2": c1.ID, "HEAD^^": c1.ID, string(c2.ID[:8]): c2.ID, string(c3.ID) + "^": c2.ID} {
		got, err := e.node.ResolveRef(ctx, app, "", ref)
		require.NoError(t, err, ref)
		require.Equal(t, want, got.ID, ref)
	}
	_, err = e.node.ResolveRef(ctx, app, "", "HEAD~3")
	require.ErrorIs(t, err, dotmesh.ErrNotFound)
	_, err = e.node.ResolveRef(ctx, app, "", "ffffffff")
	require.ErrorIs(t, err, dotmesh.ErrNotFound)

	// Dirty changes block a plain reset and change nothing.
	e.write("app.db", "rows", "dirty")
	_, err = e.node.Reset(ctx, app, "", "HEAD^", dotmesh.ResetOptions{})
	require.ErrorIs(t, err, dotmesh.ErrDirty)
	require.Equal(t, "dirty", e.read("app.db", "rows"))
	require.Len(t, e.logMessages(""), 3)

	// Bad refs change nothing either.
	_, err = e.node.Reset(ctx, app, "", "HEAD~7", dotmesh.ResetOptions{Hard: true})
	require.ErrorIs(t, err, dotmesh.ErrNotFound)
	require.Equal(t, "dirty", e.read("app.db", "rows"))

	got, err := e.node.Reset(ctx, app, "", "HEAD~2", dotmesh.ResetOptions{Hard: true})
	require.NoError(t, err)
	require.Equal(t, c1.ID, got.ID)
	require.Equal(t, "1", e.read("app.db", "rows"), "both subdots go back together")
	require.Equal(t, "a", e.read("app.web", "page"))
	require.Equal(t, []string{"one"}, e.logMessages(""))

	// Unreachable commits are gone from the registry and the backend.
	_, err = e.node.ResolveRef(ctx, app, "", string(c2.ID))
	require.ErrorIs(t, err, dotmesh.ErrNotFound)
	ids, err := e.be.Commits(ctx, c1.Ref().BranchRef)
	require.NoError(t, err)
	require.Equal(t, []dotmesh.CommitID{c1.ID}, ids)

	_, err = e.node.Reset(ctx, app, "", "HEAD^", dotmesh.ResetOptions{Hard: true})
	require.ErrorIs(t, err, dotmesh.ErrNotFound, "HEAD^ of the first commit")
}

func TestAmbiguousPrefix(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	_, err := e.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	// With 17 commits two ids share a first hex digit; 4-digit prefixes
	// rarely collide, so look for a colliding prefix of the shortest length.
	seen := map[string]bool{}
	var ambiguous string
	for i := 0; i < 17 && ambiguous == ""; i++ {
		c := e.commit(fmt.Sprint(i))
		for n := 4; n >= 4; n-- {
			p := string(c.ID[:n])
			if seen[p] {
				ambiguous = p
			}
			seen[p] = true
		}
	}
	if ambiguous == "" {
		// No 4-digit collision (the usual case): the prefix rule is still
		// exercised by a unique prefix resolving.
		log, _ := e.node.Log(ctx, app, "", 0)
		got, err := e.node.ResolveRef(ctx, app, "", string(log[5].ID[:6]))
		require.NoError(t, err)
		require.Equal(t, log[5].ID, got.ID)
		return
	}
	_, err = e.node.ResolveRef(ctx, app, "", ambiguous)
	require.ErrorIs(t, err, dotmesh.ErrAmbiguous)
}

func TestBranchesAreIndependent(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	_, err := e.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	e.write("app", "f", "m1")
	e.commit("m1")
	e.write("app", "f", "m2")
	m2 := e.commit("m2")

	_, err = e.node.Checkout(ctx, app, "feature", dotmesh.CheckoutOptions{})
	require.ErrorIs(t, err, dotmesh.ErrNotFound)
	_, err = e.node.Checkout(ctx, app, "feature", dotmesh.CheckoutOptions{Create: true})
	require.NoError(t, err)
	require.Equal(t, "m2", e.read("app", "f"))
	e.write("app", "f", "f1")
	e.commit("f1")
	require.Equal(t, []string{"f1", "m2", "m1"}, e.logMessages("feature"))
	_, err = e.node.Checkout(ctx, app, "feature", dotmesh.CheckoutOptions{Create: true})
	require.ErrorIs(t, err, dotmesh.ErrAlreadyExists)

	// master's working state is its own.
	require.Equal(t, "m2", e.read("app@master", "f"))

	// Resetting master before the feature's origin keeps feature's history.
	_, err = e.node.Checkout(ctx, app, "master", dotmesh.CheckoutOptions{})
	require.NoError(t, err)
	_, err = e.node.Reset(ctx, app, "", "HEAD^", dotmesh.ResetOptions{Hard: true})
	require.NoError(t, err)
	require.Equal(t, "m1", e.read("app", "f"))
	require.Equal(t, []string{"f1", "m2", "m1"}, e.logMessages("feature"))
	// ...and the origin commit's data still restores.
	_, err = e.node.Reset(ctx, app, "feature", string(m2.ID), dotmesh.ResetOptions{Hard: true})
	require.NoError(t, err)
	require.Equal(t, "m2", e.read("app@feature", "f"))

	bs, err := e.node.Branches(ctx, app)
	require.NoError(t, err)
	require.Len(t, bs, 2)
	require.ErrorIs(t, e.node.DeleteBranch(ctx, app, "master"), dotmesh.ErrInUse)
	_, err = e.node.Checkout(ctx, app, "feature", dotmesh.CheckoutOptions{})
	require.NoError(t, err)
	err = e.node.DeleteBranch(ctx, app, "master")
	require.ErrorIs(t, err, dotmesh.ErrInUse, "feature was made from master's commits")
	require.Contains(t, err.Error(), "feature")
	_, err = e.node.Checkout(ctx, app, "master", dotmesh.CheckoutOptions{})
	require.NoError(t, err)
	require.NoError(t, e.node.DeleteBranch(ctx, app, "feature"))
	require.Equal(t, []string{"m1"}, e.logMessages("master"))
	// m2 was only reachable from feature: gone from the registry.
	_, err = e.node.ResolveRef(ctx, app, "", string(m2.ID))
	require.ErrorIs(t, err, dotmesh.ErrNotFound)
	// The name is free again.
	_, err = e.node.Checkout(ctx, app, "feature", dotmesh.CheckoutOptions{Create: true})
	require.NoError(t, err)
	require.Equal(t, "m1", e.read("app", "f"))
}

func TestConcurrentCommitsAreSerialised(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	_, err := e.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	const n = 12
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, err := e.node.Commit(ctx, app, "", dotmesh.CommitOptions{AllowEmpty: true, Message: fmt.Sprint("c", i)})
			errs <- err
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Len(t, e.logMessages(""), n, "every commit is in one linear history")
}

// failingTxn makes every registry transaction fail, as a crash or a lost
// store connection between the backend's work and the registry would.
type failingTxn struct{ dotmesh.ClusterStore }

func (failingTxn) Txn(context.Context, []dotmesh.Condition, []dotmesh.Op) (int64, error) {
	return 0, fmt.Errorf("%w: injected", dotmesh.ErrUnavailable)
}

func TestFailedRegistryWriteLeavesNoCommit(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	_, err := e.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	e.write("app", "f", "1")
	c1 := e.commit("one")
	require.NoError(t, e.node.Close())

	e.open(func(s dotmesh.ClusterStore) dotmesh.ClusterStore { return failingTxn{s} })
	e.write("app", "f", "2")
	_, err = e.node.Commit(ctx, app, "", dotmesh.CommitOptions{AllowEmpty: true, Message: "two"})
	require.ErrorIs(t, err, dotmesh.ErrUnavailable)
	ids, err := e.be.Commits(ctx, c1.Ref().BranchRef)
	require.NoError(t, err)
	require.Equal(t, []dotmesh.CommitID{c1.ID}, ids, "the backend's commit is removed again")
	e.reopen()
	require.Equal(t, []string{"one"}, e.logMessages(""))
}

func TestReconcileRemovesOrphans(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	_, err := e.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	e.write("app", "f", "1")
	c1 := e.commit("one")

	// A commit whose registry write never happened (SIGKILL in between).
	orphan := dotmesh.CommitRef{BranchRef: c1.Ref().BranchRef, ID: dotmesh.NewCommitID()}
	_, err = e.be.Commit(ctx, orphan)
	require.NoError(t, err)
	// A dot whose creation died before its registry write.
	deadDot := dotmesh.BranchRef{Dot: dotmesh.NewDotID(), Branch: "master"}
	require.NoError(t, e.be.CreateBranch(ctx, deadDot, nil))

	e.reopen()
	ids, err := e.be.Commits(ctx, c1.Ref().BranchRef)
	require.NoError(t, err)
	require.Equal(t, []dotmesh.CommitID{c1.ID}, ids)
	refs, err := e.be.Branches(ctx)
	require.NoError(t, err)
	require.Equal(t, []dotmesh.BranchRef{c1.Ref().BranchRef}, refs)
	require.Equal(t, []string{"one"}, e.logMessages(""))
}

// crashBeforeRecordDeletes fails the transactions that delete commit
// records on their own, as a crash after DeleteDot's atomic delete would.
type crashBeforeRecordDeletes struct{ dotmesh.ClusterStore }

func (s crashBeforeRecordDeletes) Txn(ctx context.Context, conds []dotmesh.Condition, ops []dotmesh.Op) (int64, error) {
	if len(conds) == 0 && len(ops) > 0 && ops[0].Delete && strings.HasPrefix(ops[0].Key, "commits/") {
		return 0, fmt.Errorf("%w: injected crash", dotmesh.ErrUnavailable)
	}
	return s.ClusterStore.Txn(ctx, conds, ops)
}

func TestReconcileRemovesRecordsOfDeletedDots(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	other := dotmesh.DotName{Namespace: dotmesh.DefaultNamespace, Name: "other"}
	for _, name := range []dotmesh.DotName{app, other} {
		_, err := e.node.CreateDot(ctx, name, dotmesh.CreateDotOptions{})
		require.NoError(t, err)
		e.write(name.Name, "f", "1")
		_, err = e.node.Commit(ctx, name, "", dotmesh.CommitOptions{AllowEmpty: true, Message: "one"})
		require.NoError(t, err)
	}
	require.NoError(t, e.node.Close())
	e.open(func(s dotmesh.ClusterStore) dotmesh.ClusterStore { return crashBeforeRecordDeletes{s} })
	require.NoError(t, e.node.DeleteDot(ctx, app))
	kvs, err := e.st.List(ctx, "commits/")
	require.NoError(t, err)
	require.Len(t, kvs, 2, "the injected crash leaves the deleted dot's commit record")

	e.reopen()
	kvs, err = e.st.List(ctx, "commits/")
	require.NoError(t, err)
	require.Len(t, kvs, 1, "only the live dot's commit record is left")
	require.Equal(t, []string{"one"}, func() []string {
		cs, err := e.node.Log(ctx, other, "", 0)
		require.NoError(t, err)
		return []string{cs[0].Message}
	}())
}

func TestNewNodeOptions(t *testing.T) {
	ctx := context.Background()
	_, err := dotmesh.NewNode(ctx, dotmesh.Options{})
	require.ErrorIs(t, err, dotmesh.ErrInvalidArgument)
	st, err := bboltstore.Open(filepath.Join(t.TempDir(), "r.db"), bboltstore.Options{})
	require.NoError(t, err)
	defer st.Close()
	_, err = dotmesh.NewNode(ctx, dotmesh.Options{Store: st})
	require.ErrorIs(t, err, dotmesh.ErrInvalidArgument)
	be, err := dump.Open(t.TempDir(), dump.Options{})
	require.NoError(t, err)
	defer be.Close()
	_, err = dotmesh.NewNode(ctx, dotmesh.Options{Store: st, Backends: []dotmesh.StorageBackend{be}, DefaultBackend: "zfs"})
	require.ErrorIs(t, err, dotmesh.ErrInvalidArgument)
}
