package dotmesh_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func TestPushPullCloneDiverge(t *testing.T) {
	ctx := context.Background()
	a, b := newEnv(t), newEnv(t)
	_, err := a.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	a.write("app.db", "f", "v1")
	c1 := a.commit("one")

	// First push creates the dot on b, with identical commit records.
	res, err := a.node.Push(ctx, app, "", dotmesh.LocalTransport(b.node), dotmesh.TransferOptions{RemoteName: "b"})
	require.NoError(t, err)
	require.Equal(t, 1, res.Commits)
	require.True(t, res.Created)
	require.Equal(t, "v1", b.read("app.db", "f"))
	bl, err := b.node.Log(ctx, app, "", 0)
	require.NoError(t, err)
	require.Len(t, bl, 1)
	require.Equal(t, c1.ID, bl[0].ID)
	require.Equal(t, c1.Author, bl[0].Author)
	require.True(t, c1.Time.Equal(bl[0].Time))
	d, err := a.node.Dot(ctx, app)
	require.NoError(t, err)
	require.Equal(t, "app", d.Upstreams["b"])

	// Incremental: only the new commit moves.
	a.write("app.db", "g", "v2")
	c2 := a.commit("two")
	res, err = a.node.Push(ctx, app, "", dotmesh.LocalTransport(b.node), dotmesh.TransferOptions{})
	require.NoError(t, err)
	require.Equal(t, 1, res.Commits)
	require.Equal(t, "v2", b.read("app.db", "g"))
	res, err = a.node.Push(ctx, app, "", dotmesh.LocalTransport(b.node), dotmesh.TransferOptions{})
	require.NoError(t, err)
	require.True(t, res.UpToDate)

	// Clone into a third node, pull into it later.
	c := newEnv(t)
	_, err = c.node.Clone(ctx, app, "", dotmesh.LocalTransport(b.node), dotmesh.TransferOptions{})
	require.NoError(t, err)
	require.Equal(t, []string{"two", "one"}, c.logMessages(""))

	// Uncommitted changes on the receiver are protected.
	b.write("app.db", "dirty", "x")
	a.write("app.db", "h", "v3")
	a.commit("three")
	_, err = a.node.Push(ctx, app, "", dotmesh.LocalTransport(b.node), dotmesh.TransferOptions{})
	require.ErrorIs(t, err, dotmesh.ErrDirty)
	require.Equal(t, []string{"two", "one"}, b.logMessages(""))
	_, err = b.node.Reset(ctx, app, "", "HEAD", dotmesh.ResetOptions{Hard: true})
	require.NoError(t, err)

	// Divergence: b commits on its own, a pushes: refused, naming c2.
	b.write("app.db", "mine", "b")
	b.commit("b-only")
	_, err = a.node.Push(ctx, app, "", dotmesh.LocalTransport(b.node), dotmesh.TransferOptions{})
	require.ErrorIs(t, err, dotmesh.ErrConflict)
	require.Contains(t, err.Error(), "diverged")
	require.Contains(t, err.Error(), string(c2.ID))
	require.Equal(t, []string{"b-only", "two", "one"}, b.logMessages(""))

	res, err = a.node.Push(ctx, app, "", dotmesh.LocalTransport(b.node), dotmesh.TransferOptions{StashOnDivergence: true})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(res.Stashed, "master-DIVERGED-"), res.Stashed)
	require.Equal(t, []string{"three", "two", "one"}, b.logMessages(""))
	require.Equal(t, []string{"b-only", "two", "one"}, b.logMessages(res.Stashed))
	require.Equal(t, "<missing>", b.read("app.db", "mine"))
	require.Equal(t, "v3", b.read("app.db", "h"))

	// Pull: c fetches only "three".
	res, err = c.node.Pull(ctx, app, "", dotmesh.LocalTransport(b.node), dotmesh.TransferOptions{})
	require.NoError(t, err)
	require.Equal(t, 1, res.Commits)
	require.Equal(t, "v3", c.read("app.db", "h"))
}

// flakyTransport cuts the stream of one commit after limit bytes.
type flakyTransport struct {
	dotmesh.Transport
	cut   int
	limit int64
	sent  []dotmesh.CommitID
	flip  bool
}

func (f *flakyTransport) SendCommit(ctx context.Context, dot dotmesh.DotName, branch string, c dotmesh.Commit, base *dotmesh.CommitID, format string, data io.Reader) error {
	f.sent = append(f.sent, c.ID)
	if len(f.sent) == f.cut {
		if f.flip {
			return f.Transport.SendCommit(ctx, dot, branch, c, base, format, &flipReader{r: data, at: f.limit})
		}
		return f.Transport.SendCommit(ctx, dot, branch, c, base, format, io.LimitReader(data, f.limit))
	}
	return f.Transport.SendCommit(ctx, dot, branch, c, base, format, data)
}

type flipReader struct {
	r   io.Reader
	at  int64
	off int64
}

func (f *flipReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if f.off <= f.at && f.at < f.off+int64(n) {
		p[f.at-f.off] ^= 0x40
	}
	f.off += int64(n)
	return n, err
}

func TestTransferResumeAndIntegrity(t *testing.T) {
	ctx := context.Background()
	for _, flip := range []bool{false, true} {
		a, b := newEnv(t), newEnv(t)
		_, err := a.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
		require.NoError(t, err)
		for i := range 3 {
			a.write("app.db", "f"+string(rune('0'+i)), strings.Repeat("data", 10000*(i+1)))
			a.commit("c" + string(rune('0'+i)))
		}
		ft := &flakyTransport{Transport: dotmesh.LocalTransport(b.node), cut: 2, limit: 300, flip: flip}
		_, err = a.node.Push(ctx, app, "", ft, dotmesh.TransferOptions{})
		require.Error(t, err, "flip=%v", flip)
		if flip {
			require.ErrorIs(t, err, dotmesh.ErrCorrupt)
		}
		// Nothing visible on b; the first commit is staged.
		_, err = b.node.Dot(ctx, app)
		require.ErrorIs(t, err, dotmesh.ErrNotFound)
		st, err := b.node.TransferPeer().State(ctx, app, "master", dotmesh.StateOptions{})
		require.NoError(t, err)
		require.Len(t, st.Have, 1)

		b.reopen() // reconcile must keep the staged commit
		ft = &flakyTransport{Transport: dotmesh.LocalTransport(b.node)}
		res, err := a.node.Push(ctx, app, "", ft, dotmesh.TransferOptions{})
		require.NoError(t, err)
		require.Equal(t, 2, res.Commits, "the first commit is not sent again")
		require.Equal(t, 1, res.Skipped)
		require.Equal(t, []string{"c2", "c1", "c0"}, b.logMessages(""))
		require.Equal(t, strings.Repeat("data", 30000), b.read("app.db", "f2"))
	}
}

func TestNeutralTransfer(t *testing.T) {
	ctx := context.Background()
	a, b := newEnv(t), newEnv(t)
	_, err := a.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	a.write("app.db", "f", "v1")
	c1 := a.commit("one")
	a.write("app.web", "g", "v2")
	a.commit("two")
	res, err := a.node.Push(ctx, app, "", dotmesh.LocalTransport(b.node), dotmesh.TransferOptions{Neutral: true})
	require.NoError(t, err)
	require.Equal(t, dotmesh.FormatNeutral, res.Format)
	require.Equal(t, 2, res.Commits)
	require.Equal(t, []string{"two", "one"}, b.logMessages(""))
	require.Equal(t, "v1", b.read("app.db", "f"))
	require.Equal(t, "v2", b.read("app.web", "g"))
	bs, err := b.node.Branches(ctx, app)
	require.NoError(t, err)
	require.Len(t, bs, 1, "the receiving storage is not a branch")

	// A corrupted neutral stream is refused and leaves no commit.
	a.write("app.db", "f", strings.Repeat("v3", 50000))
	a.commit("three")
	ft := &flakyTransport{Transport: dotmesh.LocalTransport(b.node), cut: 1, limit: 20000, flip: true}
	_, err = a.node.Push(ctx, app, "", ft, dotmesh.TransferOptions{Neutral: true})
	require.ErrorIs(t, err, dotmesh.ErrCorrupt)
	require.Contains(t, err.Error(), "corrupt data: neutral stream: ", "the stream's own words, said once")
	st, err := b.node.TransferPeer().State(ctx, app, "master", dotmesh.StateOptions{})
	require.NoError(t, err)
	require.Len(t, st.Have, 2)
	res, err = a.node.Push(ctx, app, "", dotmesh.LocalTransport(b.node), dotmesh.TransferOptions{Neutral: true})
	require.NoError(t, err)
	require.Equal(t, 1, res.Commits)
	require.Equal(t, strings.Repeat("v3", 50000), b.read("app.db", "f"))

	// And back with pull, natively, from commits received neutrally.
	a2 := newEnv(t)
	_, err = a2.node.Clone(ctx, app, "", dotmesh.LocalTransport(b.node), dotmesh.TransferOptions{})
	require.NoError(t, err)
	require.Equal(t, []string{"three", "two", "one"}, a2.logMessages(""))
	l, err := a2.node.Log(ctx, app, "", 0)
	require.NoError(t, err)
	require.Equal(t, c1.ID, l[2].ID, "the same commit ids on every node")
	require.Equal(t, "v2", a2.read("app.web", "g"))
}

// TestTransferStateWithoutUsage: the sending side of a transfer is asked
// for its state without Usage (StateOptions.SkipUsage), so a sender with uncommitted
// changes is neither slowed by reading them nor refused; the receiver's
// are still checked, and refused with the amount in the message.
func TestTransferStateWithoutUsage(t *testing.T) {
	ctx := context.Background()
	a, b := newEnv(t), newEnv(t)
	_, err := a.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	a.write("app.db", "f", "v1")
	a.commit("one")
	a.write("app.db", "uncommitted", "on the sender")

	st, err := a.node.TransferPeer().State(ctx, app, "master", dotmesh.StateOptions{})
	require.NoError(t, err)
	require.True(t, st.Usage.Dirty)
	st, err = a.node.TransferPeer().State(ctx, app, "master", dotmesh.StateOptions{SkipUsage: true})
	require.NoError(t, err)
	require.Equal(t, dotmesh.Usage{}, st.Usage)
	require.Len(t, st.History, 1)

	_, err = a.node.Push(ctx, app, "", dotmesh.LocalTransport(b.node), dotmesh.TransferOptions{})
	require.NoError(t, err)
	b.write("app.db", "dirty", "on the receiver")
	a.write("app.db", "g", "v2")
	a.commit("two")
	_, err = a.node.Push(ctx, app, "", dotmesh.LocalTransport(b.node), dotmesh.TransferOptions{})
	require.ErrorIs(t, err, dotmesh.ErrDirty)
	require.Contains(t, err.Error(), "uncommitted changes (about ")
	var de *dotmesh.DirtyError
	require.ErrorAs(t, err, &de)
	require.Equal(t, app, de.Dot)
	require.Equal(t, "master", de.Branch)
	require.Positive(t, de.Bytes)
}

// stateOpts records the StateOptions a transfer asks its peer with.
type stateOpts struct {
	dotmesh.Transport
	asked []dotmesh.StateOptions
}

func (s *stateOpts) State(ctx context.Context, dot dotmesh.DotName, branch string, opts dotmesh.StateOptions) (*dotmesh.TransferState, error) {
	s.asked = append(s.asked, opts)
	return s.Transport.State(ctx, dot, branch, opts)
}

// TestTransferStateBriefHistory: StateOptions.BriefHistory leaves each
// commit of the history its id, parent and pruned mark, and nothing else
// of the answer changes; a transfer asks the receiving side for the brief
// history and the sending side, whose commits travel, for whole ones.
func TestTransferStateBriefHistory(t *testing.T) {
	ctx := context.Background()
	a := newEnv(t)
	_, err := a.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	a.commitSeries("c1", "c2", "c3", "c4")
	_, err = a.node.GC(ctx, dotmesh.GCOptions{Dot: &app, Keep: 3})
	require.NoError(t, err)
	_, err = a.node.Tags().Create(ctx, app, "v1", dotmesh.TagOptions{})
	require.NoError(t, err)

	full, err := a.node.TransferPeer().State(ctx, app, "master", dotmesh.StateOptions{SkipUsage: true})
	require.NoError(t, err)
	brief, err := a.node.TransferPeer().State(ctx, app, "master", dotmesh.StateOptions{SkipUsage: true, BriefHistory: true})
	require.NoError(t, err)
	require.Len(t, full.History, 3)
	require.True(t, full.History[0].Pruned, "the test needs a pruned start")
	require.Len(t, full.Tags, 1, "and a tag")
	require.Len(t, brief.History, len(full.History))
	for i, c := range full.History {
		require.NotEmpty(t, c.Message)
		require.Equal(t, dotmesh.Commit{ID: c.ID, Parent: c.Parent, Pruned: c.Pruned}, brief.History[i])
	}
	brief.History, full.History = nil, nil
	require.Equal(t, full, brief, "only the history is brief")

	b := newEnv(t)
	toB := &stateOpts{Transport: dotmesh.LocalTransport(b.node)}
	_, err = a.node.Push(ctx, app, "", toB, dotmesh.TransferOptions{})
	require.NoError(t, err)
	require.Equal(t, []dotmesh.StateOptions{{BriefHistory: true}}, toB.asked, "the receiver of a push")
	require.Equal(t, []string{"c4", "c3", "c2"}, b.logMessages(""))

	a.commitSeries("c5")
	fromA := &stateOpts{Transport: dotmesh.LocalTransport(a.node)}
	_, err = b.node.Pull(ctx, app, "", fromA, dotmesh.TransferOptions{})
	require.NoError(t, err)
	require.Equal(t, []dotmesh.StateOptions{{SkipUsage: true}}, fromA.asked, "the sender of a pull")
	require.Equal(t, []string{"c5", "c4", "c3", "c2"}, b.logMessages(""))
}
