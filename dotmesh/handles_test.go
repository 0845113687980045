package dotmesh_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// The handles Node returns are views of the same node: what one call
// through a handle stores, the next call (through a fresh handle) sees.
func TestHandlesShareTheNode(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)

	k := dotmesh.APIKey{User: "alice", Hash: []byte("h1"), Created: time.Now().UTC()}
	require.NoError(t, e.node.APIKeys().Create(ctx, k))
	require.ErrorIs(t, e.node.APIKeys().Create(ctx, k), dotmesh.ErrAlreadyExists)
	k.Hash = []byte("h2")
	require.NoError(t, e.node.APIKeys().Put(ctx, k))
	got, err := e.node.APIKeys().Get(ctx, "alice")
	require.NoError(t, err)
	require.Equal(t, []byte("h2"), got.Hash)
	_, err = e.node.APIKeys().Get(ctx, "bob")
	require.ErrorIs(t, err, dotmesh.ErrNotFound)

	m, err := e.node.Mounts().Mount(ctx, dotmesh.VolumeName{Dot: app}, "test", "c1", "one")
	require.NoError(t, err)
	ms, err := e.node.Mounts().List(ctx, app)
	require.NoError(t, err)
	require.Len(t, ms, 1)
	require.Equal(t, m.Path, ms[0].Path)
	require.NoError(t, e.node.Mounts().Unmount(ctx, app, "test", "c1"))
	ms, err = e.node.Mounts().List(ctx, app)
	require.NoError(t, err)
	require.Empty(t, ms)

	srcs, err := e.node.Sources().List(ctx, app, "")
	require.NoError(t, err)
	require.Empty(t, srcs)
	err = e.node.Sources().Lifecycle(ctx, dotmesh.VolumeName{Dot: app, Subdot: "db"}, "explode")
	require.ErrorIs(t, err, dotmesh.ErrInvalidArgument)

	in, err := e.node.TransferPeer().Incoming(ctx)
	require.NoError(t, err)
	require.Empty(t, in)
	_, err = e.node.TransferPeer().Abort(ctx, app, "")
	require.ErrorIs(t, err, dotmesh.ErrNotFound)

	nodes, err := e.node.Cluster().Nodes(ctx)
	require.NoError(t, err)
	require.Empty(t, nodes)
}
