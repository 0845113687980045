package docker

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/backend/dump"
	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

type fixture struct {
	t     *testing.T
	dir   string
	node  *dotmesh.Node
	store dotmesh.ClusterStore
	p     *Plugin
	srv   *httptest.Server
}

func newFixture(t *testing.T) *fixture { return newFixtureWith(t, nil) }

// newFixtureWith runs before(dir) before the node and plugin start.
func newFixtureWith(t *testing.T, before func(dir string)) *fixture {
	t.Helper()
	dir := t.TempDir()
	if before != nil {
		before(dir)
	}
	store, err := bboltstore.Open(filepath.Join(dir, "registry.db"), bboltstore.Options{NoSync: true})
	require.NoError(t, err)
	be, err := dump.Open(filepath.Join(dir, "dump"), dump.Options{})
	require.NoError(t, err)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	node, err := dotmesh.NewNode(context.Background(), dotmesh.Options{Store: store, Backends: []dotmesh.StorageBackend{be}, Logger: log})
	require.NoError(t, err)
	t.Cleanup(func() { node.Close() })
	// No Docker engine here: the plugin must work without one.
	p, err := New(node, Options{Driver: "dm", Engine: filepath.Join(dir, "no-docker.sock"), LegacyStateFile: filepath.Join(dir, "docker-volumes.json"),
		BackendAliases: map[string]string{"files": "dump"}, Logger: log})
	require.NoError(t, err)
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return &fixture{t: t, dir: dir, node: node, store: store, p: p, srv: srv}
}

// call posts body to /VolumeDriver.op (or another path) and decodes the
// answer, checking the protocol's shape: 200 without Err, or 500 with a
// one-line Err.
func (f *fixture) call(op string, body string) response {
	f.t.Helper()
	path := op
	if !strings.HasPrefix(op, "/") {
		path = "/VolumeDriver." + op
	}
	resp, err := http.Post(f.srv.URL+path, contentType, strings.NewReader(body))
	require.NoError(f.t, err)
	defer resp.Body.Close()
	var r response
	require.NoError(f.t, json.NewDecoder(resp.Body).Decode(&r), op)
	require.Equal(f.t, contentType, resp.Header.Get("Content-Type"))
	if r.Err != "" {
		require.Equal(f.t, http.StatusInternalServerError, resp.StatusCode)
		require.NotContains(f.t, r.Err, "\n")
	} else {
		require.Equal(f.t, http.StatusOK, resp.StatusCode)
	}
	return r
}

func (f *fixture) ok(op, body string) response {
	f.t.Helper()
	r := f.call(op, body)
	require.Empty(f.t, r.Err, "%s %s", op, body)
	return r
}

func (f *fixture) fails(want, op, body string) {
	f.t.Helper()
	r := f.call(op, body)
	require.Contains(f.t, r.Err, want, "%s %s", op, body)
}

func TestActivateAndCapabilities(t *testing.T) {
	f := newFixture(t)
	resp, err := http.Post(f.srv.URL+"/Plugin.Activate", contentType, nil)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.JSONEq(t, `{"Implements": ["VolumeDriver"]}`, string(b))
	require.Equal(t, "local", f.ok("Capabilities", "").Capabilities.Scope)
}

func TestVolumeLifecycle(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	app := dotmesh.DotName{Namespace: "admin", Name: "app"}

	f.fails("does not exist", "Get", `{"Name":"app.web"}`) // Docker creates only after Get fails
	f.ok("Create", `{"Name":"app.web","Opts":{"backend":"files"}}`)
	d, err := f.node.Dot(ctx, app)
	require.NoError(t, err)
	require.Equal(t, "dump", d.Backend)
	f.ok("Create", `{"Name":"app.db","Opts":null}`) // the dot exists: fine

	m := f.ok("Mount", `{"Name":"app.web","ID":"m1"}`)
	require.DirExists(t, m.Mountpoint)
	require.NoError(t, os.WriteFile(filepath.Join(m.Mountpoint, "f"), []byte("v1"), 0o644))
	require.Equal(t, m.Mountpoint, f.ok("Mount", `{"Name":"app.web","ID":"m1"}`).Mountpoint, "same id: same mount")
	require.Equal(t, m.Mountpoint, f.ok("Path", `{"Name":"app.web"}`).Mountpoint)

	ms, err := f.node.Mounts().List(ctx, app)
	require.NoError(t, err)
	require.Len(t, ms, 1)
	require.Equal(t, Consumer, ms[0].Consumer)
	require.Equal(t, "docker:m1", Describe(ms[0]))

	// A running container blocks reset and checkout, naming the mount.
	_, err = f.node.Commit(ctx, app, "", dotmesh.CommitOptions{Message: "one", Author: "t", AllowEmpty: true})
	require.NoError(t, err)
	_, err = f.node.Checkout(ctx, app, "feature", dotmesh.CheckoutOptions{Create: true})
	require.ErrorIs(t, err, dotmesh.ErrInUse)
	require.ErrorContains(t, err, "mount m1")

	g := f.ok("Get", `{"Name":"app.web"}`).Volume
	require.Equal(t, "app.web", g.Name)
	require.Equal(t, m.Mountpoint, g.Mountpoint)
	require.Equal(t, "master", g.Status["branch"])
	require.Equal(t, "web", g.Status["subdot"])
	require.EqualValues(t, 1, g.Status["commits"])
	require.Equal(t, []any{"docker:m1"}, g.Status["used_by"])

	var names []string
	for _, v := range f.ok("List", `{}`).Volumes {
		names = append(names, v.Name)
	}
	require.ElementsMatch(t, []string{"app", "app.db", "app.web"}, names)

	f.ok("Unmount", `{"Name":"app.web","ID":"m1"}`)
	f.ok("Unmount", `{"Name":"app.web","ID":"m1"}`) // retries are fine
	ms, err = f.node.Mounts().List(ctx, app)
	require.NoError(t, err)
	require.Empty(t, ms)

	// Checkout now works; the next mount of an unpinned name follows it,
	// a pinned one stays.
	_, err = f.node.Checkout(ctx, app, "feature", dotmesh.CheckoutOptions{Create: true})
	require.NoError(t, err)
	feat := f.ok("Mount", `{"Name":"app.web","ID":"m2"}`).Mountpoint
	require.NotEqual(t, m.Mountpoint, feat)
	require.Equal(t, m.Mountpoint, f.ok("Mount", `{"Name":"app@master.web","ID":"m3"}`).Mountpoint)
	f.ok("Unmount", `{"Name":"app.web","ID":"m2"}`)
	f.ok("Unmount", `{"Name":"app@master.web","ID":"m3"}`)

	// Remove forgets the Docker volume and keeps the dot.
	f.ok("Remove", `{"Name":"app.web"}`)
	_, err = f.node.Dot(ctx, app)
	require.NoError(t, err)
	names, err = f.p.state.names(ctx)
	require.NoError(t, err)
	require.NotContains(t, names, "app.web")
	require.Contains(t, names, "app.db")
	_, err = f.store.Get(ctx, "frontend/docker/app.db")
	require.NoError(t, err, "the record is in the node's registry")
}

func TestDeleteOnRemove(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.fails("true or false", "Create", `{"Name":"scratch","Opts":{"delete-on-remove":"maybe"}}`)
	f.ok("Create", `{"Name":"scratch","Opts":{"delete-on-remove":"true"}}`)
	f.ok("Create", `{"Name":"scratch.db"}`)
	f.fails("remove them first", "Remove", `{"Name":"scratch"}`)
	f.ok("Remove", `{"Name":"scratch.db"}`)
	f.ok("Mount", `{"Name":"scratch","ID":"x"}`)
	f.fails("in use", "Remove", `{"Name":"scratch"}`)
	f.ok("Unmount", `{"Name":"scratch","ID":"x"}`)
	f.ok("Remove", `{"Name":"scratch"}`)
	_, err := f.node.Dot(ctx, dotmesh.DotName{Namespace: "admin", Name: "scratch"})
	require.ErrorIs(t, err, dotmesh.ErrNotFound)
}

// Bad input gets an {"Err"} answer and changes nothing.
func TestBadRequestsChangeNothing(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	for _, c := range []struct{ op, body, want string }{
		{"Create", `{"Name":`, "malformed Create request"},
		{"Create", `{"Name":"a"} {"Name":"b"}`, "more than one JSON value"},
		{"Create", `[1,2]`, "malformed"},
		{"Create", `{"Name":""}`, "name is empty"},
		{"Create", `{"Name":"../etc"}`, "invalid name"},
		{"Create", `{"Name":"app.__secret"}`, "reserved"},
		{"Create", `{"Name":"a/b/c"}`, "more than one '/'"},
		{"Create", `{"Name":"app","Opts":{"size":"1G"}}`, `unknown option "size"`},
		{"Create", `{"Name":"app","Opts":{"backend":"nope"}}`, "not available"},
		{"Create", `{"Name":"app@feature"}`, "does not exist"},
		{"Mount", `{"Name":"app"}`, "mount ID"},
		{"Mount", `{"Name":"nope","ID":"1"}`, "not found"},
		{"Unmount", `{"Name":"bad name","ID":"1"}`, "invalid name"},
		{"Remove", `{"Name":"x\nx"}`, "invalid name"},
		{"Get", `{"Name":"app","Opts":{"a":"b"}}`, "takes no options"},
	} {
		f.fails(c.want, c.op, c.body)
	}
	big := `{"Name":"` + strings.Repeat("a", maxBody) + `"}`
	f.fails("larger than", "Create", big)
	dots, err := f.node.ListDots(ctx)
	require.NoError(t, err)
	require.Empty(t, dots)
	names, err := f.p.state.names(ctx)
	require.NoError(t, err)
	require.Empty(t, names)

	resp, err := http.Post(f.srv.URL+"/VolumeDriver.Nope", contentType, bytes.NewReader(nil))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}

func TestCreateRefusesOtherBackend(t *testing.T) {
	f := newFixture(t)
	f.ok("Create", `{"Name":"app"}`)
	f.ok("Create", `{"Name":"app","Opts":{"backend":"dump"}}`)
	f.fails("exists on backend dump, not zfs", "Create", `{"Name":"app","Opts":{"backend":"zfs"}}`)
}
