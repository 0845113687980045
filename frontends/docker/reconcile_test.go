package docker

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// fakeEngine answers GET /containers/json with the given containers.
func fakeEngine(t *testing.T, cs []container) string {
	return serveEngine(t, &recordingEngine{containers: cs})
}

func TestReconcileForgetsMountsNoContainerHolds(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	app := dotmesh.DotName{Namespace: "admin", Name: "app"}
	f.ok("Create", `{"Name":"app.web"}`)
	f.ok("Mount", `{"Name":"app.web","ID":"held"}`)
	f.ok("Mount", `{"Name":"app.db","ID":"gone"}`)
	before := time.Now()

	// No engine: nothing is forgotten.
	require.Error(t, f.p.Reconcile(ctx, before))
	ms, err := f.node.Mounts().List(ctx, app)
	require.NoError(t, err)
	require.Len(t, ms, 2)

	web := container{ID: "c1", Names: []string{"/web"}, State: "running"}
	web.Mounts = append(web.Mounts, struct {
		Type   string `json:"Type"`
		Name   string `json:"Name"`
		Driver string `json:"Driver"`
	}{"volume", "admin/app.web", "dm"}) // another spelling of the same volume
	f.p.engine = newEngine(fakeEngine(t, []container{web}))
	require.NoError(t, f.p.Reconcile(ctx, before))
	ms, err = f.node.Mounts().List(ctx, app)
	require.NoError(t, err)
	require.Len(t, ms, 1)
	require.Equal(t, "held", ms[0].ID)

	// Mounts made after the node started are left alone.
	f.p.engine = newEngine(fakeEngine(t, nil))
	require.NoError(t, f.p.Reconcile(ctx, before.Add(-time.Hour)))
	ms, err = f.node.Mounts().List(ctx, app)
	require.NoError(t, err)
	require.Len(t, ms, 1)
}
