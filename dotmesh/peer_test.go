package dotmesh_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// TestTransferPeerLifecycle drives two nodes' TransferPeers by hand in the
// order their godoc gives (what runTransfer does through Transports):
// State, then per commit Objects on the sender, HaveObjects and Receive
// on the receiver, then Finish, which alone makes the dot visible.
func TestTransferPeerLifecycle(t *testing.T) {
	ctx := context.Background()
	a, b := newEnv(t), newEnv(t)
	src, dst := a.node.TransferPeer(), b.node.TransferPeer()
	_, err := a.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	data := randomString(5, 4<<20)
	a.write("app.db", "big", data)
	a.commit("one")
	changed := data[:2<<20] + randomString(6, 64<<10) + data[2<<20+64<<10:]
	a.write("app.db", "big", changed)
	a.commit("two")
	a.write("app.db", "uncommitted", "x")

	from, err := src.State(ctx, app, "master", dotmesh.StateOptions{SkipUsage: true})
	require.NoError(t, err)
	require.Len(t, from.History, 2)
	require.Equal(t, dotmesh.Usage{}, from.Usage, "the sender's working state is not read")
	to, err := dst.State(ctx, app, "master", dotmesh.StateOptions{})
	require.NoError(t, err)
	require.False(t, to.Exists)

	format := dotmesh.FormatNative + from.Backend
	for i, c := range from.History {
		list, err := src.Objects(ctx, app, c.ID, nil, format)
		require.NoError(t, err)
		require.NotEmpty(t, list.IDs)
		held, err := dst.HaveObjects(ctx, app, "master", c.ID, format, list.IDs)
		require.NoError(t, err)
		f := &dotmesh.ObjectFilter{Count: len(list.IDs), Digest: list.Digest, Have: make([]byte, (len(list.IDs)+7)/8)}
		nheld := 0
		for j, h := range held {
			if h {
				f.Have[j/8] |= 1 << (j % 8)
				nheld++
			}
		}
		var whole, without bytes.Buffer
		require.NoError(t, src.Send(ctx, app, c.ID, nil, format, &whole))
		require.NoError(t, src.SendWithout(ctx, app, c.ID, nil, format, f, &without))
		if i == 0 {
			require.Zero(t, nheld, "the receiver holds nothing yet")
		} else {
			require.Positive(t, nheld, "the unchanged chunks of the first commit")
			require.Less(t, without.Len(), whole.Len()/2)
		}
		require.NoError(t, dst.Receive(ctx, app, "master", c, nil, format, &without))
		_, err = b.node.Dot(ctx, app)
		require.ErrorIs(t, err, dotmesh.ErrNotFound, "nothing is visible before Finish")
	}
	to, err = dst.State(ctx, app, "master", dotmesh.StateOptions{})
	require.NoError(t, err)
	require.Len(t, to.Have, 2)

	head := from.History[1].ID
	res, err := dst.Finish(ctx, app, "master", dotmesh.FinishRequest{Head: head})
	require.NoError(t, err)
	require.True(t, res.Created)
	require.Equal(t, head, res.Head)
	require.Equal(t, []string{"two", "one"}, b.logMessages(""))
	require.Equal(t, changed, b.read("app.db", "big"))
	require.Equal(t, "<missing>", b.read("app.db", "uncommitted"))
}

// A transfer run again after an interrupted run whose commit still
// arrived and finished on the receiver: the re-run read the receiver's
// State before that, so it sends the commit and asks to move the branch
// from no commit at all. The commit is held and the branch is already
// there, so each step succeeds without changing anything, as git's "up
// to date", instead of failing as a branch that moved.
func TestTransferPeerRunAgainAfterLateFinish(t *testing.T) {
	ctx := context.Background()
	a, b := newEnv(t), newEnv(t)
	src, dst := a.node.TransferPeer(), b.node.TransferPeer()
	_, err := a.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	a.write("app.db", "f", randomString(7, 1<<20))
	a.commit("one")
	from, err := src.State(ctx, app, "master", dotmesh.StateOptions{SkipUsage: true})
	require.NoError(t, err)
	c := from.History[0]
	format := dotmesh.FormatNative + from.Backend
	stale, err := dst.State(ctx, app, "master", dotmesh.StateOptions{})
	require.NoError(t, err)
	require.False(t, stale.Exists)

	run := func() *dotmesh.FinishResult {
		var stream bytes.Buffer
		require.NoError(t, src.Send(ctx, app, c.ID, nil, format, &stream))
		require.NoError(t, dst.Receive(ctx, app, "master", c, nil, format, &stream))
		res, err := dst.Finish(ctx, app, "master", dotmesh.FinishRequest{Head: c.ID})
		require.NoError(t, err)
		require.Equal(t, c.ID, res.Head)
		return res
	}
	require.True(t, run().Created, "the interrupted run's late finish")
	require.False(t, run().Created, "the re-run, planned on the stale State")
	require.Equal(t, []string{"one"}, b.logMessages(""))
	_, err = dst.Finish(ctx, app, "master", dotmesh.FinishRequest{Head: c.ID, OldHead: "0123456789abcdef0123456789abcdef"})
	require.NoError(t, err, "the branch is already at the head asked for")
}
