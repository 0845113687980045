package docker

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// recordingEngine is a Docker engine API stand-in that lists containers
// and records stops and starts. The real engine is exercised by the e2e
// tests; this covers the refusals.
type recordingEngine struct {
	mu         sync.Mutex
	containers []container
	autoRemove map[string]bool
	calls      []string
}

func (e *recordingEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case r.URL.Path == "/containers/json":
		json.NewEncoder(w).Encode(e.containers)
	case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/json"):
		id := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/containers/"), "/json")
		json.NewEncoder(w).Encode(map[string]any{"HostConfig": map[string]any{"AutoRemove": e.autoRemove[id]}})
	default:
		e.calls = append(e.calls, r.Method+" "+r.URL.Path)
		w.WriteHeader(http.StatusNoContent)
	}
}

func serveEngine(t *testing.T, h http.Handler) string {
	sock := filepath.Join(t.TempDir(), "engine.sock")
	ln, err := net.Listen("unix", sock)
	require.NoError(t, err)
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sock
}

func withVolume(id, name, driver, vol string) container {
	c := container{ID: id, Names: []string{"/" + name}, State: "running"}
	c.Mounts = append(c.Mounts, struct {
		Type   string `json:"Type"`
		Name   string `json:"Name"`
		Driver string `json:"Driver"`
	}{"volume", vol, driver})
	return c
}

func TestControllerStopsAndStartsContainers(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	eng := &recordingEngine{containers: []container{
		withVolume("c1", "web", "dm", "app.web"),
		withVolume("c2", "other", "dm", "other.web"),
		withVolume("c3", "foreign", "local", "app.web"), // another driver's volume of that name
	}}
	f.p.engine = newEngine(serveEngine(t, eng))
	ctrl := f.p.Controller()
	f.node.Mounts().RegisterController(ctrl)
	app := dotmesh.DotName{Namespace: "admin", Name: "app"}
	f.ok("Create", `{"Name":"app.web"}`)
	_, err := f.node.Commit(ctx, app, "", dotmesh.CommitOptions{Message: "one", Author: "t", AllowEmpty: true})
	require.NoError(t, err)
	f.ok("Mount", `{"Name":"app.web","ID":"m1"}`)

	_, err = f.node.Checkout(ctx, app, "feature", dotmesh.CheckoutOptions{Create: true, Restart: true})
	require.NoError(t, err)
	require.Equal(t, []string{"POST /containers/c1/stop", "POST /containers/c1/start"}, eng.calls)

	// A container started with --rm is refused before anything stops.
	eng.calls, eng.autoRemove = nil, map[string]bool{"c1": true}
	_, err = f.node.Checkout(ctx, app, "master", dotmesh.CheckoutOptions{Restart: true})
	require.ErrorIs(t, err, dotmesh.ErrInUse)
	require.ErrorContains(t, err, "--rm")
	require.Empty(t, eng.calls)
	d, err := f.node.Dot(ctx, app)
	require.NoError(t, err)
	require.Equal(t, "feature", d.Current, "nothing switched")
}
