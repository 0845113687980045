package dotmesh_test

import (
	"context"
	"io"
	"math/rand"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func randomString(seed int64, n int) string {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return string(b)
}

// cutTransport is a Transport that keeps the optional have/want exchange
// (unlike flakyTransport) and cuts every commit stream after limit bytes.
type cutTransport struct {
	dotmesh.ObjectTransport
	limit int64
}

func (c *cutTransport) SendCommit(ctx context.Context, dot dotmesh.DotName, branch string, cm dotmesh.Commit, base *dotmesh.CommitID, format string, data io.Reader) error {
	return c.ObjectTransport.SendCommit(ctx, dot, branch, cm, base, format, io.LimitReader(data, c.limit))
}

// TestTransferResumesInsideCommit interrupts a push in the middle of one
// large commit: the re-run sends only what had not arrived (chunk-level
// resume), and the result is byte-identical.
func TestTransferResumesInsideCommit(t *testing.T) {
	ctx := context.Background()
	a, b, ref := newEnv(t), newEnv(t), newEnv(t)
	_, err := a.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	const size = 24 << 20
	big := randomString(1, size)
	a.write("app.db", "big", big)
	a.write("app.db", "small", "s")
	a.commit("big")

	full, err := a.node.Push(ctx, app, "", dotmesh.LocalTransport(ref.node), dotmesh.TransferOptions{})
	require.NoError(t, err)

	cut := &cutTransport{ObjectTransport: dotmesh.LocalTransport(b.node).(dotmesh.ObjectTransport), limit: full.Bytes * 6 / 10}
	_, err = a.node.Push(ctx, app, "", cut, dotmesh.TransferOptions{})
	require.Error(t, err)
	_, err = b.node.Dot(ctx, app)
	require.ErrorIs(t, err, dotmesh.ErrNotFound, "nothing partial is visible")
	st, err := b.node.TransferPeer().State(ctx, app, "master", dotmesh.StateOptions{})
	require.NoError(t, err)
	require.Empty(t, st.Have, "the cut commit did not arrive")

	b.reopen() // what arrived survives a restart
	var reports []dotmesh.Progress
	res, err := a.node.Push(ctx, app, "", dotmesh.LocalTransport(b.node), dotmesh.TransferOptions{
		Progress: func(p dotmesh.Progress) { reports = append(reports, p) }})
	require.NoError(t, err)
	// The resumed run measures against what it still sends: once the
	// receiver said what it holds, the total is about that, and the bar
	// ends at 100% before the receiver's finish step.
	var last dotmesh.Progress
	for _, p := range reports[1:] {
		if p.Phase == "" {
			require.Less(t, p.Total, full.Bytes*7/10, "a resumed run's total: %+v", p)
			require.LessOrEqual(t, p.Bytes, p.Total)
			last = p
		}
	}
	require.Equal(t, res.Bytes, last.Bytes)
	require.Equal(t, last.Bytes, last.Total)
	phases := map[string]bool{}
	for _, p := range reports {
		phases[p.Phase] = true
	}
	require.True(t, phases[dotmesh.PhaseFinishing], "no finishing phase")
	t.Logf("whole commit: %d stream bytes; cut after %d; resumed run sent %d bytes (%d objects held)", full.Bytes, cut.limit, res.Bytes, res.ObjectsHeld)
	require.Equal(t, 1, res.Commits)
	require.Positive(t, res.ObjectsHeld)
	require.Less(t, res.Bytes, full.Bytes/2, "the resumed run resends what arrived")
	require.Equal(t, big, b.read("app.db", "big"))
	require.Equal(t, "s", b.read("app.db", "small"))
}

// TestTransferHaveWant: a 1% change sends about the changed chunks, both
// incrementally and to a receiver that has the data only under another
// dot (no common commit to be incremental from).
func TestTransferHaveWant(t *testing.T) {
	ctx := context.Background()
	a, b := newEnv(t), newEnv(t)
	_, err := a.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	const size = 32 << 20
	data := randomString(2, size)
	a.write("app.db", "big", data)
	a.commit("one")
	first, err := a.node.Push(ctx, app, "", dotmesh.LocalTransport(b.node), dotmesh.TransferOptions{})
	require.NoError(t, err)

	changed := data[:size/2] + randomString(3, size/100) + data[size/2+size/100:]
	a.write("app.db", "big", changed)
	a.commit("two")
	res, err := a.node.Push(ctx, app, "", dotmesh.LocalTransport(b.node), dotmesh.TransferOptions{})
	require.NoError(t, err)
	t.Logf("first push %d bytes; 1%% change pushed with %d bytes", first.Bytes, res.Bytes)
	require.Less(t, res.Bytes, int64(size/100+(2<<20)))
	require.Equal(t, changed, b.read("app.db", "big"))

	// Another dot with the same data plus another 1% change: the receiver
	// has no commit of it, yet only the new chunks travel.
	other := dotmesh.DotName{Namespace: dotmesh.DefaultNamespace, Name: "other"}
	_, err = a.node.CreateDot(ctx, other, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	third := changed[:size/4] + randomString(4, size/100) + changed[size/4+size/100:]
	a.write("other.db", "big", third)
	_, err = a.node.Commit(ctx, other, "", dotmesh.CommitOptions{AllowEmpty: true, Message: "other one", Author: "test"})
	require.NoError(t, err)
	res, err = a.node.Push(ctx, other, "", dotmesh.LocalTransport(b.node), dotmesh.TransferOptions{})
	require.NoError(t, err)
	t.Logf("new dot sharing 99%% of its data: pushed with %d bytes, %d objects held", res.Bytes, res.ObjectsHeld)
	require.True(t, res.Created)
	require.Positive(t, res.ObjectsHeld)
	require.Less(t, res.Bytes, int64(size/100+(2<<20)))
	require.Equal(t, third, b.read("other.db", "big"))
}

// TestHaveObjectsRefusesBadInput: a peer's bad id list changes nothing.
func TestHaveObjectsRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	b := newEnv(t)
	format := dotmesh.FormatNative + "dump"
	c := dotmesh.NewCommitID()
	for name, ids := range map[string][]dotmesh.ObjectID{
		"too many": make([]dotmesh.ObjectID, dotmesh.MaxObjectBatch+1),
		"not hex":  {"zz"},
		"odd":      {"abc"},
		"upper":    {"ABCD"},
		"path":     {"../../etc/passwd"},
	} {
		_, err := b.node.TransferPeer().HaveObjects(ctx, app, "master", c, format, ids)
		require.ErrorIs(t, err, dotmesh.ErrInvalidArgument, name)
		require.NotContains(t, err.Error(), "\n", name)
	}
	_, err := b.node.TransferPeer().HaveObjects(ctx, app, "master", c, dotmesh.FormatNeutral, []dotmesh.ObjectID{"ab"})
	require.ErrorIs(t, err, dotmesh.ErrNotSupported)
	st, err := b.node.TransferPeer().State(ctx, app, "master", dotmesh.StateOptions{})
	require.NoError(t, err)
	require.False(t, st.Exists)
	require.Empty(t, st.Have)
}
