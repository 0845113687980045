package dotmesh_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// A single node answers the cluster verbs as it did before placement was
// a strategy: no id, nothing to replicate, hand-over not supported, and
// writes need no move.
func TestStandalonePlacement(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	require.Equal(t, "", e.node.Cluster().NodeID())
	require.NoError(t, e.node.Cluster().Sync(ctx))
	reps, err := e.node.Cluster().Replication(ctx, app)
	require.NoError(t, err)
	require.Nil(t, reps)
	_, err = e.node.Cluster().Release(ctx, app, "master", "other")
	require.ErrorIs(t, err, dotmesh.ErrNotSupported)
	_, err = e.node.Cluster().TakeOver(ctx, app, "master")
	require.ErrorIs(t, err, dotmesh.ErrNotSupported)
	e.write("app", "f", "x")
	e.commit("one")
	subs, err := e.node.Subdots(ctx, app, "")
	require.NoError(t, err)
	require.NotEmpty(t, subs)
	require.NoError(t, e.node.DeleteDot(ctx, app))
}
