package dotmesh_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// directBe gives a backend the direct way of a commit's stream
// (DirectTransferer) over its own: a receive reads the stream Send wrote
// from the file accept hands over.
type directBe struct{ dotmesh.StorageBackend }

func (d directBe) SendDirect(ctx context.Context, target dotmesh.CommitRef, base *dotmesh.CommitRef, f *os.File) error {
	return d.Send(ctx, target, base, f)
}

func (d directBe) ReceiveDirect(ctx context.Context, target dotmesh.CommitRef, base *dotmesh.CommitRef, accept func() (*os.File, error)) error {
	f, err := accept()
	if err != nil {
		return err
	}
	defer f.Close()
	return d.Receive(ctx, target, base, f)
}

// pipeConn is a dotmesh.DirectConn whose stream is what the sending node
// writes into a pipe.
type pipeConn struct{ r *os.File }

func (p pipeConn) Accept(context.Context) (*os.File, func(), error) { return p.r, func() {}, nil }
func (p pipeConn) Received() int64                                  { return 0 }

// receiveDeferred has dst receive src's head directly, incremental from
// its parent, leaving the record to a Finish on the returned ctx.
func receiveDeferred(t *testing.T, src, dst *env) (context.Context, dotmesh.Commit, dotmesh.FinishRequest) {
	t.Helper()
	ctx := context.Background()
	st, err := src.node.TransferPeer().State(ctx, app, "master", dotmesh.StateOptions{SkipUsage: true})
	require.NoError(t, err)
	h := st.History
	c, parent := h[len(h)-1], h[len(h)-2]
	format := dotmesh.FormatNative + st.Backend
	r, w, err := os.Pipe()
	require.NoError(t, err)
	sent := make(chan error, 1)
	go func() {
		defer w.Close()
		sent <- src.node.TransferPeer().Send(ctx, app, c.ID, &parent.ID, format, w)
	}()
	fin := dotmesh.FinishRequest{Head: c.ID, OldHead: parent.ID}
	dctx := dotmesh.WithDeferredRecord(ctx)
	require.NoError(t, dst.node.TransferPeer().ReceiveDirect(dctx, app, "master", c, &parent.ID, format, &fin, pipeConn{r}))
	require.NoError(t, <-sent)
	return dctx, c, fin
}

// TestDirectReceiveRecordWithTheMark: a commit received directly with its
// Finish along is recorded in the transaction that marks the branch for
// the move, not in one of its own; a Finish refused after the receive
// (uncommitted changes that came after the check) still leaves the commit
// recorded, so that a re-run does not send it again.
func TestDirectReceiveRecordWithTheMark(t *testing.T) {
	ctx := context.Background()
	src := newEnv(t)
	dst := &env{t: t, dir: t.TempDir(), wrapBe: func(b dotmesh.StorageBackend) dotmesh.StorageBackend { return directBe{b} }}
	log := dst.openLogged()
	_, err := src.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	commit := func(v string) {
		t.Helper()
		src.write("app.db", "f", v)
		_, err := src.node.Commit(ctx, app, "", dotmesh.CommitOptions{Message: v})
		require.NoError(t, err)
	}
	commit("one")
	_, err = src.node.Push(ctx, app, "", dotmesh.LocalTransport(dst.node), dotmesh.TransferOptions{})
	require.NoError(t, err)

	// Moved: the commit's record and the mark in one transaction.
	commit("two")
	dctx, c, fin := receiveDeferred(t, src, dst)
	log.mu.Lock()
	log.writes = nil
	log.mu.Unlock()
	_, err = dst.node.TransferPeer().Finish(dctx, app, "master", fin)
	require.NoError(t, err)
	log.mu.Lock()
	var with []string
	for _, keys := range log.writes {
		for _, k := range keys {
			if strings.HasPrefix(k, "commits/") && strings.HasSuffix(k, "/"+string(c.ID)) {
				with = keys
			}
		}
	}
	log.mu.Unlock()
	require.NotNil(t, with, "the Finish wrote no record of commit %s", c.ID)
	require.Contains(t, strings.Join(with, " "), "branches/", "the record is not in the mark's transaction: %v", with)
	l, err := dst.node.Log(ctx, app, "", 1)
	require.NoError(t, err)
	require.Equal(t, c.ID, l[0].ID)

	// Refused after the receive: the commit stays recorded, the head
	// where it was.
	commit("three")
	dctx, c, fin = receiveDeferred(t, src, dst)
	dst.write("app.db", "g", "uncommitted")
	_, err = dst.node.TransferPeer().Finish(dctx, app, "master", fin)
	require.Error(t, err)
	st, err := dst.node.TransferPeer().State(ctx, app, "master", dotmesh.StateOptions{})
	require.NoError(t, err)
	require.Contains(t, st.Have, c.ID, "the refused Finish dropped the received commit's record")
	require.Equal(t, fin.OldHead, st.Branch.Head)
}
