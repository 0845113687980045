package dotmesh_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/backend/backendtest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// twoStates commits state A, then state B (changed, added and removed
// files in two subdots), and leaves B plus an uncommitted file in the tree.
func twoStates(e *env) (a, b *dotmesh.Commit, treeA, treeB backendtest.Tree, root string) {
	t := e.t
	ctx := context.Background()
	_, err := e.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	root = e.rootPath()
	for i := 0; i < 60; i++ {
		sub := []string{"db", "web"}[i%2]
		backendtest.WriteTree(t, root, backendtest.Tree{fmt.Sprintf("%s/f%02d", sub, i): backendtest.File(0o644, fmt.Sprintf("A %d", i))})
	}
	a = e.commit("A")
	treeA = backendtest.ReadTree(t, root)
	for i := 0; i < 40; i++ {
		backendtest.WriteTree(t, root, backendtest.Tree{fmt.Sprintf("%s/f%02d", []string{"db", "web"}[i%2], i): backendtest.File(0o644, fmt.Sprintf("B %d", i))})
	}
	for i := 40; i < 50; i++ {
		require.NoError(t, os.Remove(filepath.Join(root, []string{"db", "web"}[i%2], fmt.Sprintf("f%02d", i))))
	}
	backendtest.WriteTree(t, root, backendtest.Tree{"db/new1": backendtest.File(0o600, "B new"), "web/new/x": backendtest.File(0o644, "B x")})
	b = e.commit("B")
	treeB = backendtest.ReadTree(t, root)
	backendtest.WriteTree(t, root, backendtest.Tree{"db/dirty": backendtest.File(0o644, "uncommitted")})
	return a, b, treeA, treeB, root
}

func (e *env) rootPath() string {
	p, err := e.node.SubdotPath(context.Background(), dotmesh.VolumeName{Dot: app, Subdot: dotmesh.RootSubdot})
	require.NoError(e.t, err)
	return p
}

func (e *env) head() dotmesh.CommitID {
	c, err := e.node.ResolveRef(context.Background(), app, "", "HEAD")
	require.NoError(e.t, err)
	return c.ID
}

// cutShort runs fn in a goroutine that ends (runtime.Goexit, as if the
// process died there, but for deferred unlocks) when the node reaches
// journal step `at`; before ending it calls also, if set.
func cutShort(e *env, at string, also func(), fn func() error) (reached bool) {
	done := make(chan bool, 1)
	e.hook = func(step string) {
		if step == at {
			if also != nil {
				also()
			}
			done <- true
			runtime.Goexit()
		}
	}
	go func() {
		err := fn()
		e.t.Logf("the operation finished without reaching step %s: %v", at, err)
		done <- false
	}()
	reached = <-done
	e.hook = nil
	return reached
}

// TestResetInterruptedAtEachStep cuts a reset --hard short at each step
// of its journal (and with a half-written tree, as a SIGKILL in the
// middle of the backend's restore leaves it), restarts the node, and
// checks that the tree is wholly the target's with the head there, the
// dropped commit's data gone, and the branch usable.
func TestResetInterruptedAtEachStep(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		step  string
		mixed bool
	}{{"marked", false}, {"marked", true}, {"restored", false}, {"recorded", false}} {
		t.Run(fmt.Sprintf("%s/mixed=%v", tc.step, tc.mixed), func(t *testing.T) {
			e := &env{t: t, dir: t.TempDir()}
			e.open(nil)
			a, b, treeA, _, root := twoStates(e)
			var also func()
			if tc.mixed { // half of the files back at A, a temporary file left
				also = func() {
					for i := 0; i < 20; i++ {
						p := fmt.Sprintf("%s/f%02d", []string{"db", "web"}[i%2], i)
						backendtest.WriteTree(t, root, backendtest.Tree{p: treeA[p]})
					}
					require.NoError(t, os.Remove(filepath.Join(root, "db", "new1")))
					backendtest.WriteTree(t, root, backendtest.Tree{"web/.dmtmp-x": backendtest.File(0o600, "half")})
				}
			}
			require.True(t, cutShort(e, tc.step, also, func() error {
				_, err := e.node.Reset(ctx, app, "", string(a.ID), dotmesh.ResetOptions{Hard: true})
				return err
			}), "the reset never reached step %s", tc.step)
			e.reopen()

			require.Equal(t, a.ID, e.head(), "the head after the restart")
			if d := backendtest.DiffTrees(backendtest.ReadTree(t, root), treeA); len(d) > 0 {
				t.Fatalf("the tree after the restart is not A's (head %s): %v", short(e.head()), d)
			}
			st, err := e.node.Status(ctx, app)
			require.NoError(t, err)
			require.False(t, st.Usage.Dirty, "the tree after the restart is A's, so clean")
			ids, err := e.be.Commits(ctx, a.Ref().BranchRef)
			require.NoError(t, err)
			require.Equal(t, []dotmesh.CommitID{a.ID}, ids, "commit B (%s), reached by nothing, is gone", short(b.ID))
			require.Equal(t, []string{"A"}, e.logMessages(""))
			e.write("app.db", "after", "x")
			e.commit("after the restart")
		})
	}
}

// TestInterruptedRestoreThatCannotFinish: when the restore cannot be
// finished at the restart (here the backend fails once), the node still
// starts, refuses to commit the partly restored tree, and a reset --hard
// finishes it.
func TestInterruptedRestoreThatCannotFinish(t *testing.T) {
	ctx := context.Background()
	e := &env{t: t, dir: t.TempDir()}
	e.open(nil)
	a, _, treeA, _, root := twoStates(e)
	require.True(t, cutShort(e, "marked", nil, func() error {
		_, err := e.node.Reset(ctx, app, "", string(a.ID), dotmesh.ResetOptions{Hard: true})
		return err
	}))
	failing := true
	e.wrapBe = func(be dotmesh.StorageBackend) dotmesh.StorageBackend {
		return failingRollback{be, &failing}
	}
	e.reopen()
	_, err := e.node.Commit(ctx, app, "", dotmesh.CommitOptions{AllowEmpty: true, Message: "x"})
	require.ErrorIs(t, err, dotmesh.ErrConflict)
	var pr *dotmesh.PartlyRestoredError
	require.ErrorAs(t, err, &pr)
	require.Equal(t, dotmesh.PartlyRestoredError{Dot: app, Branch: "master", Target: a.ID}, *pr)
	require.ErrorContains(t, err, "is partly restored to "+string(a.ID))
	failing = false
	_, err = e.node.Reset(ctx, app, "", string(a.ID), dotmesh.ResetOptions{Hard: true})
	require.NoError(t, err)
	require.Empty(t, backendtest.DiffTrees(backendtest.ReadTree(t, root), treeA))
	e.commit("after")
}

// failingRollback is the real backend whose Rollback fails while *fail.
type failingRollback struct {
	dotmesh.StorageBackend
	fail *bool
}

func (f failingRollback) Rollback(ctx context.Context, b dotmesh.BranchRef, c dotmesh.CommitRef) error {
	if *f.fail {
		return fmt.Errorf("%w: injected failure", dotmesh.ErrUnavailable)
	}
	return f.StorageBackend.Rollback(ctx, b, c)
}

func short(id dotmesh.CommitID) string { return string(id[:8]) }

// TestPushInterruptedWhileMovingBranch: a push that moves an existing
// branch on the receiver, cut short while the receiver restores its
// working state, is finished when the receiver starts again.
func TestPushInterruptedWhileMovingBranch(t *testing.T) {
	ctx := context.Background()
	for _, step := range []string{"marked", "restored"} {
		t.Run(step, func(t *testing.T) {
			a, b := newEnv(t), newEnv(t)
			_, err := a.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
			require.NoError(t, err)
			for i := 0; i < 20; i++ {
				a.write("app.db", fmt.Sprintf("f%d", i), "one")
			}
			a.commit("one")
			_, err = a.node.Push(ctx, app, "", dotmesh.LocalTransport(b.node), dotmesh.TransferOptions{})
			require.NoError(t, err)
			for i := 0; i < 20; i++ {
				a.write("app.db", fmt.Sprintf("f%d", i), "two")
			}
			a.write("app.db", "g", "two")
			c2 := a.commit("two")
			want := backendtest.ReadTree(t, a.rootPath())
			root := b.rootPath()
			require.True(t, cutShort(b, step, func() {
				if step == "marked" { // some files written, as a crash mid-restore leaves them
					backendtest.WriteTree(t, root, backendtest.Tree{"db/f1": want["db/f1"], "db/g": want["db/g"]})
				}
			}, func() error {
				_, err := a.node.Push(ctx, app, "", dotmesh.LocalTransport(b.node), dotmesh.TransferOptions{})
				return err
			}))
			b.reopen()
			require.Equal(t, c2.ID, b.head())
			require.Empty(t, backendtest.DiffTrees(backendtest.ReadTree(t, root), want))
			res, err := a.node.Push(ctx, app, "", dotmesh.LocalTransport(b.node), dotmesh.TransferOptions{})
			require.NoError(t, err)
			require.True(t, res.UpToDate)
		})
	}
}
