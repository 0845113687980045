package dotmesh_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// recorder is a MountController that records what it was asked and, like
// Docker, unmounts on Stop and mounts again on Start.
type recorder struct {
	node   *dotmesh.Node
	events []string
}

func (r *recorder) Consumer() string { return "docker" }
func (r *recorder) Stop(ctx context.Context, ms []dotmesh.Mount) error {
	for _, m := range ms {
		r.events = append(r.events, "stop "+m.Name)
		v, _ := dotmesh.ParseVolumeName(m.Volume)
		if err := r.node.Mounts().Unmount(ctx, v.Dot, m.Consumer, m.ID); err != nil {
			return err
		}
	}
	return nil
}
func (r *recorder) Start(ctx context.Context, ms []dotmesh.Mount) error {
	for _, m := range ms {
		r.events = append(r.events, "start "+m.Name)
		v, _ := dotmesh.ParseVolumeName(m.Volume)
		if _, err := r.node.Mounts().Mount(ctx, v, m.Consumer, m.ID+"-again", m.Name); err != nil {
			return err
		}
	}
	return nil
}

func TestMountsGuardResetAndCheckout(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	_, err := e.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	e.write("app.web", "f", "1")
	e.commit("one")
	e.write("app.web", "f", "2")
	e.commit("two")

	v, _ := dotmesh.ParseVolumeName("app.web")
	m, err := e.node.Mounts().Mount(ctx, v, "docker", "m1", "web-container")
	require.NoError(t, err)
	again, err := e.node.Mounts().Mount(ctx, v, "docker", "m1", "web-container")
	require.NoError(t, err)
	require.Equal(t, m.Path, again.Path, "mounting the same id again is idempotent")
	st, err := e.node.Status(ctx, app)
	require.NoError(t, err)
	require.Len(t, st.Mounts, 1)

	_, err = e.node.Reset(ctx, app, "", "HEAD^", dotmesh.ResetOptions{Hard: true})
	require.ErrorIs(t, err, dotmesh.ErrInUse)
	require.Contains(t, err.Error(), "web-container")
	require.Equal(t, "2", e.read("app.web", "f"), "a refused reset changes nothing")
	_, err = e.node.Checkout(ctx, app, "feature", dotmesh.CheckoutOptions{Create: true})
	require.ErrorIs(t, err, dotmesh.ErrInUse)
	require.ErrorIs(t, e.node.DeleteDot(ctx, app), dotmesh.ErrInUse)
	_, err = e.node.Reset(ctx, app, "", "HEAD^", dotmesh.ResetOptions{Hard: true, Restart: true})
	require.ErrorIs(t, err, dotmesh.ErrInUse, "no controller registered for docker")

	rec := &recorder{node: e.node}
	e.node.Mounts().RegisterController(rec)
	_, err = e.node.Reset(ctx, app, "", "HEAD^", dotmesh.ResetOptions{Hard: true, Restart: true})
	require.NoError(t, err)
	require.Equal(t, []string{"stop web-container", "start web-container"}, rec.events)
	require.Equal(t, "1", e.read("app.web", "f"))

	// A pinned mount does not follow checkout, so it does not block it.
	ms, err := e.node.Mounts().List(ctx, app)
	require.NoError(t, err)
	for _, m := range ms {
		require.NoError(t, e.node.Mounts().Unmount(ctx, app, m.Consumer, m.ID))
	}
	pinned, _ := dotmesh.ParseVolumeName("app@master.web")
	_, err = e.node.Mounts().Mount(ctx, pinned, "docker", "m2", "pinned")
	require.NoError(t, err)
	_, err = e.node.Checkout(ctx, app, "feature", dotmesh.CheckoutOptions{Create: true})
	require.NoError(t, err)
	require.NoError(t, e.node.Mounts().Unmount(ctx, app, "docker", "m2"))
	require.NoError(t, e.node.Mounts().Unmount(ctx, app, "docker", "m2"), "unmounting twice is fine")
	require.NoError(t, e.node.DeleteDot(ctx, app))
}
