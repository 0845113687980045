package dotmesh_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// prunedAt returns the ids of the commits e's log of branch marks Pruned.
func (e *env) prunedAt(branch string) []dotmesh.CommitID {
	log, err := e.node.Log(context.Background(), app, branch, 0)
	require.NoError(e.t, err)
	var out []dotmesh.CommitID
	for _, c := range log {
		if c.Pruned {
			out = append(out, c.ID)
		}
	}
	return out
}

// commitSeries writes and commits one file version per message.
func (e *env) commitSeries(msgs ...string) []*dotmesh.Commit {
	var out []*dotmesh.Commit
	for _, m := range msgs {
		e.write("app", "f", m)
		e.write("app", m, m)
		out = append(out, e.commit(m))
	}
	return out
}

func push(t *testing.T, from, to *env, opts dotmesh.TransferOptions) *dotmesh.TransferResult {
	t.Helper()
	res, err := from.node.Push(context.Background(), app, "", dotmesh.LocalTransport(to.node), opts)
	require.NoError(t, err)
	return res
}

// TestPushAfterGC: a history pruned by gc travels as a shallow history,
// native and neutral, by push and clone and on to a third node; the
// receiver records where it starts, across a restart.
func TestPushAfterGC(t *testing.T) {
	ctx := context.Background()
	a := newEnv(t)
	_, err := a.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	cs := a.commitSeries("c1", "c2", "c3", "c4", "c5")
	_, err = a.node.GC(ctx, dotmesh.GCOptions{Dot: &app, Keep: 2})
	require.NoError(t, err)
	require.Equal(t, []string{"c5", "c4"}, a.logMessages(""))
	require.Equal(t, []dotmesh.CommitID{cs[3].ID}, a.prunedAt(""), "gc marks where history now starts")

	for i, neutral := range []bool{false, true} {
		b := newEnv(t)
		res := push(t, a, b, dotmesh.TransferOptions{Neutral: neutral})
		require.Equal(t, 2+i, res.Commits)
		require.Equal(t, a.logMessages(""), b.logMessages(""))
		require.Equal(t, []dotmesh.CommitID{cs[3].ID}, b.prunedAt(""))
		require.Equal(t, a.read("app", "f"), b.read("app", "f"))
		require.Equal(t, "c1", b.read("app", "c1"))
		bl, err := b.node.Log(ctx, app, "", 0)
		require.NoError(t, err)
		require.Equal(t, cs[2].ID, bl[len(bl)-1].Parent, "the parent id is kept")

		b.reopen()
		require.Equal(t, []dotmesh.CommitID{cs[3].ID}, b.prunedAt(""), "the marker survives a restart")
		c := newEnv(t)
		push(t, b, c, dotmesh.TransferOptions{Neutral: neutral})
		require.Equal(t, []dotmesh.CommitID{cs[3].ID}, c.prunedAt(""))
		require.Equal(t, a.read("app", "f"), c.read("app", "f"))

		// Later commits go incrementally and the history stays shallow.
		a.commitSeries(fmt.Sprintf("c%d", 6+i))
		res = push(t, a, b, dotmesh.TransferOptions{Neutral: neutral})
		require.Equal(t, 1, res.Commits)
		require.Equal(t, []dotmesh.CommitID{cs[3].ID}, b.prunedAt(""))
		vr, err := b.node.Verify(ctx, nil)
		require.NoError(t, err)
		require.True(t, vr.OK(), "%+v", vr)
	}

	d := newEnv(t)
	_, err = d.node.Clone(ctx, app, "", dotmesh.LocalTransport(a.node), dotmesh.TransferOptions{})
	require.NoError(t, err)
	require.Equal(t, []dotmesh.CommitID{cs[3].ID}, d.prunedAt(""))
	require.Equal(t, []string{"c7", "c6", "c5", "c4"}, d.logMessages(""))
}

// TestPushAfterGCToPeersWithHistory: peers holding older history, or a
// commit newer than where the history was pruned, keep working; a peer
// whose head cannot be shown to lead to the pruned history is refused
// unless its commits are stashed; pulls run both ways.
func TestPushAfterGCToPeersWithHistory(t *testing.T) {
	ctx := context.Background()
	a := newEnv(t)
	_, err := a.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	a.commitSeries("c1")
	old := newEnv(t) // will hold c1 only
	push(t, a, old, dotmesh.TransferOptions{})
	a.commitSeries("c2", "c3")
	link := newEnv(t) // holds c1..c3: c3 is the parent of the oldest kept
	push(t, a, link, dotmesh.TransferOptions{})
	cs := a.commitSeries("c4", "c5")
	newer := newEnv(t) // holds c1..c5: newer than the pruned point
	push(t, a, newer, dotmesh.TransferOptions{})
	_, err = a.node.GC(ctx, dotmesh.GCOptions{Dot: &app, Keep: 2})
	require.NoError(t, err)
	a.commitSeries("c6")

	// The receiver has c3, c4's parent: c4 goes whole, history is whole.
	res := push(t, a, link, dotmesh.TransferOptions{})
	require.Equal(t, 3, res.Commits)
	require.Equal(t, []string{"c6", "c5", "c4", "c3", "c2", "c1"}, link.logMessages(""))
	require.Empty(t, link.prunedAt(""))

	// The receiver has c5: one incremental commit.
	res = push(t, a, newer, dotmesh.TransferOptions{})
	require.Equal(t, 1, res.Commits)
	require.Len(t, newer.logMessages(""), 6)

	// The receiver's head c1 may or may not lead to c4: refused, changing
	// nothing, unless its commits are stashed.
	_, err = a.node.Push(ctx, app, "", dotmesh.LocalTransport(old.node), dotmesh.TransferOptions{})
	require.ErrorIs(t, err, dotmesh.ErrDiverged)
	require.Contains(t, err.Error(), "gc removed")
	require.Equal(t, []string{"c1"}, old.logMessages(""))
	res = push(t, a, old, dotmesh.TransferOptions{StashOnDivergence: true})
	require.NotEmpty(t, res.Stashed)
	require.Equal(t, []string{"c6", "c5", "c4"}, old.logMessages(""))
	require.Equal(t, []dotmesh.CommitID{cs[0].ID}, old.prunedAt(""))
	require.Equal(t, []string{"c1"}, old.logMessages(res.Stashed))

	// Pull into the pruned node from a whole one, and into a whole one
	// from the pruned node; a shallow node stays shallow.
	newer.commitSeries("c7")
	pr, err := a.node.Pull(ctx, app, "", dotmesh.LocalTransport(newer.node), dotmesh.TransferOptions{})
	require.NoError(t, err)
	require.Equal(t, 1, pr.Commits, "the history gc removed is not fetched again")
	require.Equal(t, []string{"c7", "c6", "c5", "c4"}, a.logMessages(""))
	require.Equal(t, []dotmesh.CommitID{cs[0].ID}, a.prunedAt(""))
	a.commitSeries("c8")
	pr, err = newer.node.Pull(ctx, app, "", dotmesh.LocalTransport(a.node), dotmesh.TransferOptions{})
	require.NoError(t, err)
	require.Equal(t, 1, pr.Commits)
	require.Len(t, newer.logMessages(""), 8)
	require.Empty(t, newer.prunedAt(""))
}

// TestReceiveRefusesUnmarkedOrphan: a commit whose parent is missing is
// taken only as a whole commit marked as a history start.
func TestReceiveRefusesUnmarkedOrphan(t *testing.T) {
	ctx := context.Background()
	a, b := newEnv(t), newEnv(t)
	_, err := a.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	cs := a.commitSeries("c1", "c2")
	_, err = a.node.GC(ctx, dotmesh.GCOptions{Dot: &app, Keep: 1})
	require.NoError(t, err)
	send := func(c dotmesh.Commit, base *dotmesh.CommitID) error {
		rc, err := dotmesh.LocalTransport(a.node).FetchCommit(ctx, app, c.ID, nil, dotmesh.FormatNative+"dump")
		require.NoError(t, err)
		defer rc.Close()
		return dotmesh.LocalTransport(b.node).SendCommit(ctx, app, "master", c, base, dotmesh.FormatNative+"dump", rc)
	}
	c2 := *cs[1]
	c2.Pruned = false
	err = send(c2, nil)
	require.ErrorIs(t, err, dotmesh.ErrInvalidArgument)
	require.True(t, strings.Contains(err.Error(), "arrived before its parent"), err)
	c2.Pruned = true
	require.ErrorIs(t, send(c2, &cs[0].ID), dotmesh.ErrInvalidArgument, "a history start must come whole")
	require.NoError(t, send(c2, nil))
	_, err = dotmesh.LocalTransport(b.node).Finish(ctx, app, "master", dotmesh.FinishRequest{Head: c2.ID})
	require.NoError(t, err)
	require.Equal(t, []dotmesh.CommitID{c2.ID}, b.prunedAt(""))
}
