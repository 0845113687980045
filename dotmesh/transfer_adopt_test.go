package dotmesh_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/backend/dump"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// adoptCounter is a dump backend that counts the branches' working
// states made by restoring a commit and those adopted; failAdopt makes the next
// adoption report an error after it happened, as a node that died
// before its registry write would leave it.
type adoptCounter struct {
	*dump.Guarded
	restores, adopts int
	failAdopt        bool
}

func (a *adoptCounter) CreateBranch(ctx context.Context, b dotmesh.BranchRef, from *dotmesh.CommitRef) error {
	if from != nil && !strings.HasPrefix(b.Branch, "_recv-") {
		a.restores++ // of a branch, not of a delta's base to apply it to
	}
	return a.Guarded.CreateBranch(ctx, b, from)
}

func (a *adoptCounter) AdoptWorkingState(ctx context.Context, from, to dotmesh.BranchRef, c dotmesh.CommitRef) error {
	err := a.Guarded.AdoptWorkingState(ctx, from, to, c)
	if err == nil {
		a.adopts++
		if a.failAdopt {
			a.failAdopt = false
			return errors.New("injected: the node stops after the adoption")
		}
	}
	return err
}

// countAdoptions makes e's node run over an adoptCounter, returned.
func countAdoptions(e *env) *adoptCounter {
	ac := &adoptCounter{}
	e.wrapBe = func(be dotmesh.StorageBackend) dotmesh.StorageBackend {
		ac.Guarded = be.(*dump.Guarded)
		return ac
	}
	e.reopen()
	return ac
}

// writeVariedTree fills dir with what a tree may hold: nested and empty
// directories, files of several modes and sizes (empty too), symlinks,
// set modification times.
func writeVariedTree(t *testing.T, dir string, seed uint64) {
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range 40 {
		p := filepath.Join(dir, fmt.Sprintf("d%d", i%4), fmt.Sprintf("s%d", i%3), fmt.Sprintf("f%02d", i))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		data := make([]byte, r.IntN(200<<10)*(i%2))
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		require.NoError(t, os.WriteFile(p, data, 0o644))
		require.NoError(t, os.Chmod(p, []os.FileMode{0o644, 0o600, 0o755, 0o444}[i%4]))
		mt := time.Unix(1500000000+int64(r.IntN(1e8)), int64(r.IntN(1e9)))
		require.NoError(t, os.Chtimes(p, mt, mt))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "empty", "dir"), 0o750))
	require.NoError(t, os.Symlink("d0/s0/f00", filepath.Join(dir, "link")))
	require.NoError(t, os.Symlink("../nowhere", filepath.Join(dir, "d1", "dangling")))
}

func rootOf(t *testing.T, e *env, branch string) string {
	p, err := e.node.SubdotPath(context.Background(), dotmesh.VolumeName{Dot: app, Branch: branch, Subdot: dotmesh.RootSubdot})
	require.NoError(t, err)
	return p
}

// TestNeutralCloneKeepsReceivedTree: a dump node cloning (and pulling a
// new branch) over a neutral stream keeps the tree it received as the
// branch's working state, restoring nothing: bytes, modes, times and
// symlinks as the sender's, the dot clean, the next commit empty.
func TestNeutralCloneKeepsReceivedTree(t *testing.T) {
	ctx := context.Background()
	a, b := newEnv(t), newEnv(t)
	ac := countAdoptions(b)
	_, err := a.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	writeVariedTree(t, rootOf(t, a, ""), 1)
	a.commit("one")
	mutateDir(t, rand.New(rand.NewPCG(5, 5)), rootOf(t, a, ""))
	a.commit("two")

	_, err = b.node.Clone(ctx, app, "", dotmesh.LocalTransport(a.node), dotmesh.TransferOptions{Neutral: true})
	require.NoError(t, err)
	require.Equal(t, streamSummary(t, dirStream(t, rootOf(t, a, ""))), streamSummary(t, dirStream(t, rootOf(t, b, ""))))
	require.Equal(t, 1, ac.adopts, "the received tree became master's")
	require.Zero(t, ac.restores, "nothing restored from the local store")
	st, err := b.node.Status(ctx, app)
	require.NoError(t, err)
	require.False(t, st.Usage.Dirty, "the clone is clean: %+v", st.Usage)
	_, err = b.node.Commit(ctx, app, "", dotmesh.CommitOptions{Message: "nothing", Author: "test"})
	var nothing *dotmesh.NothingToCommitError
	require.ErrorAs(t, err, &nothing, "the clone's working state is its head")

	// A pull of a new branch keeps its tree too; a pull that moves
	// master restores it (only what changed) as before.
	_, err = a.node.CreateBranch(ctx, app, "feat", "master")
	require.NoError(t, err)
	_, err = a.node.Checkout(ctx, app, "feat", dotmesh.CheckoutOptions{})
	require.NoError(t, err)
	writeVariedTree(t, filepath.Join(rootOf(t, a, "feat"), "more"), 2)
	a.commit("feat")
	_, err = b.node.Pull(ctx, app, "feat", dotmesh.LocalTransport(a.node), dotmesh.TransferOptions{Neutral: true})
	require.NoError(t, err)
	require.Equal(t, 2, ac.adopts)
	require.Zero(t, ac.restores)
	require.Equal(t, streamSummary(t, dirStream(t, rootOf(t, a, "feat"))), streamSummary(t, dirStream(t, rootOf(t, b, "feat"))))

	_, err = a.node.Checkout(ctx, app, "master", dotmesh.CheckoutOptions{})
	require.NoError(t, err)
	mutateDir(t, rand.New(rand.NewPCG(6, 6)), rootOf(t, a, "master"))
	a.commit("three")
	_, err = b.node.Pull(ctx, app, "master", dotmesh.LocalTransport(a.node), dotmesh.TransferOptions{Neutral: true})
	require.NoError(t, err)
	require.Equal(t, streamSummary(t, dirStream(t, rootOf(t, a, "master"))), streamSummary(t, dirStream(t, rootOf(t, b, "master"))))
	st, err = b.node.Status(ctx, app)
	require.NoError(t, err)
	require.False(t, st.Usage.Dirty, "clean after the pull: %+v", st.Usage)
}

// TestNeutralCloneAdoptInterrupted: a clone that stops after the
// received tree passed to master but before the registry made the dot
// leaves no dot; after a restart the clone runs again and is complete.
func TestNeutralCloneAdoptInterrupted(t *testing.T) {
	ctx := context.Background()
	a, b := newEnv(t), newEnv(t)
	ac := countAdoptions(b)
	_, err := a.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	writeVariedTree(t, rootOf(t, a, ""), 3)
	a.commit("one")

	ac.failAdopt = true
	_, err = b.node.Clone(ctx, app, "", dotmesh.LocalTransport(a.node), dotmesh.TransferOptions{Neutral: true})
	require.ErrorContains(t, err, "injected")
	_, err = b.node.Dot(ctx, app)
	require.ErrorIs(t, err, dotmesh.ErrNotFound, "no half-made clone")
	b.reopen() // reconcile removes the working state no branch owns
	_, err = b.node.Dot(ctx, app)
	require.ErrorIs(t, err, dotmesh.ErrNotFound)

	_, err = b.node.Clone(ctx, app, "", dotmesh.LocalTransport(a.node), dotmesh.TransferOptions{Neutral: true})
	require.NoError(t, err)
	require.Equal(t, 1, ac.restores, "the received tree is gone: master is restored from the commit")
	require.Equal(t, streamSummary(t, dirStream(t, rootOf(t, a, ""))), streamSummary(t, dirStream(t, rootOf(t, b, ""))))
	st, err := b.node.Status(ctx, app)
	require.NoError(t, err)
	require.False(t, st.Usage.Dirty)
}

// inProcessTap is an in-process peer (as LocalTransport or a bucket
// remote) that keeps the last stream it was sent.
type inProcessTap struct {
	dotmesh.Transport
	last []byte
}

func (p *inProcessTap) InProcess() bool { return true }

func (p *inProcessTap) SendCommit(ctx context.Context, dot dotmesh.DotName, branch string, c dotmesh.Commit, base *dotmesh.CommitID, format string, data io.Reader) error {
	b, err := io.ReadAll(data)
	if err != nil {
		return err
	}
	p.last = b
	return p.Transport.SendCommit(ctx, dot, branch, c, base, format, bytes.NewReader(b))
}

// TestNeutralInProcessUnchecked: a neutral stream between two transports
// of one process carries no checksum (its trailer is zeros) and is taken
// as it is; to a peer that is not known to be in the process the
// checksum goes as always.
func TestNeutralInProcessUnchecked(t *testing.T) {
	ctx := context.Background()
	a, b, c := newEnv(t), newEnv(t), newEnv(t)
	_, err := a.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	writeVariedTree(t, rootOf(t, a, ""), 4)
	a.commit("one")

	tap := &inProcessTap{Transport: dotmesh.LocalTransport(b.node)}
	_, err = a.node.Push(ctx, app, "", tap, dotmesh.TransferOptions{Neutral: true})
	require.NoError(t, err)
	require.Greater(t, len(tap.last), 32)
	require.Equal(t, make([]byte, 32), tap.last[len(tap.last)-32:], "in process: no checksum")
	require.Equal(t, streamSummary(t, dirStream(t, rootOf(t, a, ""))), streamSummary(t, dirStream(t, rootOf(t, b, ""))))

	var kept []byte
	_, err = a.node.Push(ctx, app, "", &checkedTap{Transport: dotmesh.LocalTransport(c.node), last: &kept}, dotmesh.TransferOptions{Neutral: true})
	require.NoError(t, err)
	require.NotEqual(t, make([]byte, 32), kept[len(kept)-32:], "to a peer not in this process: checksummed")
}

// checkedTap keeps the last stream it was sent; it is not an
// InProcessTransport.
type checkedTap struct {
	dotmesh.Transport
	last *[]byte
}

func (p *checkedTap) SendCommit(ctx context.Context, dot dotmesh.DotName, branch string, c dotmesh.Commit, base *dotmesh.CommitID, format string, data io.Reader) error {
	b, err := io.ReadAll(data)
	if err != nil {
		return err
	}
	*p.last = b
	return p.Transport.SendCommit(ctx, dot, branch, c, base, format, bytes.NewReader(b))
}

// TestNeutralPullReadsTheChange: a dump node taking neutral deltas
// applies each to a working state at its base that it need not read
// again (the receiving storage's, still at base; or one restored from
// base with the change cache's vouching), so committing the received
// commit reads the changed files only, not the tree.
func TestNeutralPullReadsTheChange(t *testing.T) {
	ctx := context.Background()
	a, b := newEnv(t), newEnv(t)
	_, err := a.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	r := rand.New(rand.NewPCG(7, 7))
	file := func(i int) {
		data := make([]byte, 64<<10)
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		require.NoError(t, os.WriteFile(filepath.Join(rootOf(t, a, ""), fmt.Sprintf("f%02d", i)), data, 0o644))
	}
	for i := range 64 {
		file(i)
	}
	a.commit("one")
	_, err = b.node.Clone(ctx, app, "", dotmesh.LocalTransport(a.node), dotmesh.TransferOptions{Neutral: true})
	require.NoError(t, err)

	for round, commits := range []int{1, 1, 2} {
		for k := range commits {
			file(round*3 + k)
			a.commit(fmt.Sprint("change ", round, k))
		}
		res, err := b.node.Pull(ctx, app, "", dotmesh.LocalTransport(a.node), dotmesh.TransferOptions{Neutral: true})
		require.NoError(t, err)
		require.Equal(t, commits, res.Commits)
		require.Equal(t, streamSummary(t, dirStream(t, rootOf(t, a, ""))), streamSummary(t, dirStream(t, rootOf(t, b, ""))), "round %d", round)
		log, err := b.node.Log(ctx, app, "", commits)
		require.NoError(t, err)
		for _, c := range log {
			read, err := strconv.ParseInt(c.Info["bytes_read"], 10, 64)
			require.NoError(t, err, "round %d: the dump backend's facts of the received commit: %v", round, c.Info)
			require.LessOrEqual(t, read, int64(64<<10), "round %d: committing a received change of one 64 KiB file of 64 read %d bytes", round, read)
		}
	}
}
