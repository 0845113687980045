package dotmesh_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// TestGCKeepsOriginsAndHeads: --keep applies per branch, a branch's origin
// survives however old, and a concurrent commit loses nothing.
func TestGCKeepsOriginsAndHeads(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	_, err := e.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	for _, m := range []string{"m1", "m2"} {
		e.write("app", "f", m)
		e.commit(m)
	}
	_, err = e.node.Checkout(ctx, app, "feature", dotmesh.CheckoutOptions{Create: true}) // origin m2
	require.NoError(t, err)
	for _, m := range []string{"f1", "f2", "f3"} {
		e.write("app", "f", m)
		e.commit(m)
	}
	_, err = e.node.Checkout(ctx, app, "master", dotmesh.CheckoutOptions{})
	require.NoError(t, err)
	for _, m := range []string{"m3", "m4"} {
		e.write("app", "f", m)
		e.commit(m)
	}

	_, err = e.node.GC(ctx, dotmesh.GCOptions{Keep: -1})
	require.ErrorIs(t, err, dotmesh.ErrInvalidArgument)
	dry, err := e.node.GC(ctx, dotmesh.GCOptions{Dot: &app, Keep: 1, DryRun: true})
	require.NoError(t, err)
	require.Len(t, dry.Removed, 4) // m1, m3, f1, f2; m2 is feature's origin
	require.Equal(t, []string{"m4", "m3", "m2", "m1"}, e.logMessages("master"))

	// A commit racing the sweep must survive it intact.
	done := make(chan error)
	go func() {
		_, err := e.node.Commit(ctx, app, "feature", dotmesh.CommitOptions{AllowEmpty: true, Message: "f4", Author: "t"})
		done <- err
	}()
	res, err := e.node.GC(ctx, dotmesh.GCOptions{Keep: 1})
	require.NoError(t, err)
	require.NoError(t, <-done)
	require.GreaterOrEqual(t, len(res.Removed), 4)
	require.Equal(t, []string{"m4"}, e.logMessages("master"))
	fl := e.logMessages("feature")
	require.Equal(t, "f4", fl[0])

	_, err = e.node.Reset(ctx, app, "master", "HEAD", dotmesh.ResetOptions{Hard: true})
	require.NoError(t, err)
	require.Equal(t, "m4", e.read("app", "f"))
	_, err = e.node.Checkout(ctx, app, "feature", dotmesh.CheckoutOptions{})
	require.NoError(t, err)
	require.Equal(t, "f3", e.read("app", "f")) // f4 committed the same tree
	vr, err := e.node.Verify(ctx, nil)
	require.NoError(t, err)
	require.True(t, vr.OK(), "%+v", vr.Backends["dump"])
	require.NoError(t, e.be.Check(ctx))
}
