package dotmesh_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func TestFrontendRecords(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	csi, err := e.node.FrontendRecords("csi")
	require.NoError(t, err)
	docker, err := e.node.FrontendRecords("docker")
	require.NoError(t, err)

	require.NoError(t, csi.Put(ctx, "volumes/a", []byte("1")))
	require.NoError(t, csi.Put(ctx, "snapshots/b", []byte("2")))
	require.NoError(t, docker.Put(ctx, "team/app@dev.db", []byte("3")))

	v, err := csi.Get(ctx, "volumes/a")
	require.NoError(t, err)
	require.Equal(t, "1", string(v))
	_, err = csi.Get(ctx, "team/app@dev.db")
	require.ErrorIs(t, err, dotmesh.ErrNotFound, "namespaces are apart")

	kvs, err := csi.List(ctx, "volumes/")
	require.NoError(t, err)
	require.Len(t, kvs, 1)
	require.Equal(t, "volumes/a", kvs[0].Key)
	all, err := csi.List(ctx, "")
	require.NoError(t, err)
	require.Len(t, all, 2)

	// The bytes in the store: under frontend/<namespace>/.
	kv, err := e.st.Get(ctx, "frontend/docker/team/app@dev.db")
	require.NoError(t, err)
	require.Equal(t, "3", string(kv.Value))

	require.NoError(t, csi.Delete(ctx, "volumes/a"))
	require.NoError(t, csi.Delete(ctx, "volumes/a"), "deleting a missing record is no error")
	_, err = csi.Get(ctx, "volumes/a")
	require.ErrorIs(t, err, dotmesh.ErrNotFound)

	// Records survive a restart.
	e.reopen()
	docker, err = e.node.FrontendRecords("docker")
	require.NoError(t, err)
	v, err = docker.Get(ctx, "team/app@dev.db")
	require.NoError(t, err)
	require.Equal(t, "3", string(v))
}

func TestFrontendRecordsRefuseBadInput(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, ns := range []string{"", "dots", "commits", "frontend", "nodes", "a/b", "-x", strings.Repeat("n", 65)} {
		_, err := e.node.FrontendRecords(ns)
		require.Error(t, err, "namespace %q", ns)
		require.NotContains(t, err.Error(), "\n")
	}
	r, err := e.node.FrontendRecords("csi")
	require.NoError(t, err)
	for _, k := range []string{"", "a\x00b", "\xff", strings.Repeat("k", dotmesh.MaxFrontendRecordKey+1)} {
		require.ErrorIs(t, r.Put(ctx, k, nil), dotmesh.ErrInvalidArgument, "key %q", k)
		_, err := r.Get(ctx, k)
		require.ErrorIs(t, err, dotmesh.ErrInvalidArgument)
		require.ErrorIs(t, r.Delete(ctx, k), dotmesh.ErrInvalidArgument)
	}
	require.ErrorIs(t, r.Put(ctx, "big", make([]byte, dotmesh.MaxRecordSize+1)), dotmesh.ErrInvalidArgument)
	kvs, err := e.st.List(ctx, "frontend/")
	require.NoError(t, err)
	require.Empty(t, kvs, "refused writes store nothing")
}

// Records a frontend wrote at <namespace>/ before namespaces move into
// frontend/<namespace>/ once; one already there wins over its old copy.
func TestFrontendRecordsImportLegacy(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for k, v := range map[string]string{"csi/volumes/a": "old-a", "csi/snapshots/c1": "old-c1", "csi/volumes/b": "old-b", "csix/other": "keep"} {
		_, err := e.st.Put(ctx, k, []byte(v))
		require.NoError(t, err)
	}
	r, err := e.node.FrontendRecords("csi")
	require.NoError(t, err)
	require.NoError(t, r.Put(ctx, "volumes/b", []byte("new-b")))

	moved, err := r.ImportLegacy(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, moved)
	for k, want := range map[string]string{"volumes/a": "old-a", "snapshots/c1": "old-c1", "volumes/b": "new-b"} {
		v, err := r.Get(ctx, k)
		require.NoError(t, err)
		require.Equal(t, want, string(v), k)
	}
	left, err := e.st.List(ctx, "csi/")
	require.NoError(t, err)
	require.Empty(t, left, "old keys are gone")
	_, err = e.st.Get(ctx, "csix/other")
	require.NoError(t, err, "only the namespace's own keys move")

	moved, err = r.ImportLegacy(ctx)
	require.NoError(t, err)
	require.Zero(t, moved)
}
