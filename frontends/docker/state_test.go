package docker

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// A node upgraded from a version that kept the plugin's records in
// docker-volumes.json keeps its volumes: New imports the file into the
// node's records once and renames it aside.
func TestLegacyStateImported(t *testing.T) {
	ctx := context.Background()
	legacy := `{
  "app.web": {"created": "2026-01-02T03:04:05Z", "delete_on_remove": true},
  "app.db": {"created": "2026-01-02T03:04:06Z"},
  "bad name": {"created": "2026-01-02T03:04:07Z"}
}`
	f := newFixtureWith(t, func(dir string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "docker-volumes.json"), []byte(legacy), 0o600))
	})
	path := filepath.Join(f.dir, "docker-volumes.json")
	require.NoFileExists(t, path)
	require.FileExists(t, path+".imported")

	names, err := f.p.state.names(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"app.db", "app.web"}, names, "the bad name is left out")
	c, ok, err := f.p.state.get(ctx, "app.web")
	require.NoError(t, err)
	require.True(t, ok)
	require.True(t, c.DeleteOnRemove)
	require.Equal(t, "2026-01-02T03:04:05Z", c.Created.Format("2006-01-02T15:04:05Z07:00"))

	// The imported wish still works: the dot goes with the volume.
	_, err = f.node.CreateDot(ctx, dotmesh.DotName{Namespace: "admin", Name: "app"}, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	f.ok("Remove", `{"Name":"app.db"}`)
	f.ok("Remove", `{"Name":"app.web"}`)
	_, err = f.node.Dot(ctx, dotmesh.DotName{Namespace: "admin", Name: "app"})
	require.ErrorIs(t, err, dotmesh.ErrNotFound)

	// A file that appears again (a downgrade and upgrade) does not undo
	// what the registry says: records there win.
	require.NoError(t, f.p.state.put(ctx, "app.db", &created{}))
	require.NoError(t, os.WriteFile(path, []byte(`{"app.db": {"created": "2026-01-02T03:04:06Z", "delete_on_remove": true}}`), 0o600))
	p2, err := New(f.node, Options{LegacyStateFile: path, Engine: filepath.Join(f.dir, "no-docker.sock")})
	require.NoError(t, err)
	c, ok, err = p2.state.get(ctx, "app.db")
	require.NoError(t, err)
	require.True(t, ok)
	require.False(t, c.DeleteOnRemove)
}

// A damaged file stops the plugin with a one-line error naming it, and
// stays where it is.
func TestLegacyStateDamaged(t *testing.T) {
	f := newFixture(t)
	path := filepath.Join(f.dir, "docker-volumes.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"app": `), 0o600))
	_, err := New(f.node, Options{LegacyStateFile: path, Engine: filepath.Join(f.dir, "no-docker.sock")})
	require.ErrorContains(t, err, path)
	require.NotContains(t, err.Error(), "\n")
	require.FileExists(t, path)
}

// A damaged record is reported as corrupt, naming the volume.
func TestDamagedRecord(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	_, err := f.store.Put(ctx, "frontend/docker/app", []byte("{"))
	require.NoError(t, err)
	_, _, err = f.p.state.get(ctx, "app")
	require.ErrorIs(t, err, dotmesh.ErrCorrupt)
	require.ErrorContains(t, err, `"app"`)
}
