package bucketremote_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// TestInProcessStreams: a bucket remote is an in-process transport; a
// commit fetched under a context marked WithInProcessStream comes
// without the neutral checksum (a node in this process reads it), and
// with it otherwise; a node's push and clone through it (in process,
// unchecked both ways) give the same tree back.
func TestInProcessStreams(t *testing.T) {
	ctx := context.Background()
	a := newNode(t)
	a.create(app)
	fillTree(t, a.root(app, ""), randomBytes(52, 1<<20))
	c := a.commit(app, "one")
	b := newBucket(t)
	rem := b.remote()
	require.True(t, rem.InProcess())
	_, err := a.node.Push(ctx, app, "", rem, dotmesh.TransferOptions{})
	require.NoError(t, err)

	fetch := func(ctx context.Context) []byte {
		rc, err := rem.FetchCommit(ctx, app, c.ID, nil, dotmesh.FormatNeutral)
		require.NoError(t, err)
		defer rc.Close()
		data, err := io.ReadAll(rc)
		require.NoError(t, err)
		return data
	}
	checked, unchecked := fetch(ctx), fetch(dotmesh.WithInProcessStream(ctx))
	n := len(checked)
	require.Equal(t, n, len(unchecked))
	require.Equal(t, checked[:n-32], unchecked[:n-32], "the same records")
	require.Equal(t, make([]byte, 32), unchecked[n-32:], "no checksum in process")
	require.NotEqual(t, make([]byte, 32), checked[n-32:])

	requireSameTree(t, treeOf(t, a.root(app, "")), treeOf(t, cloneRoot(t, rem, app)))

	// An unchecked stream to a bucket not told it is in process is
	// refused as damaged: the marks go together or not at all.
	other := dotmesh.DotName{Namespace: dotmesh.DefaultNamespace, Name: "other"}
	err = rem.SendCommit(ctx, other, "master", dotmesh.Commit{ID: dotmesh.NewCommitID()}, nil, dotmesh.FormatNeutral, bytes.NewReader(unchecked))
	require.ErrorIs(t, err, dotmesh.ErrCorrupt)
}
