package dotmesh_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/backend/dump"
	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// BenchmarkNeutralWhole streams the whole neutral stream of a 256 MiB
// dump dot (64 files of 4 MiB): what the sender of a first
// cross-backend push does before the network.
func BenchmarkNeutralWhole(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	st, err := bboltstore.Open(filepath.Join(dir, "registry.db"), bboltstore.Options{})
	require.NoError(b, err)
	be, err := dump.Open(filepath.Join(dir, "dump"), dump.Options{})
	require.NoError(b, err)
	n, err := dotmesh.NewNode(ctx, dotmesh.Options{Store: st, Backends: []dotmesh.StorageBackend{be}})
	require.NoError(b, err)
	defer n.Close()
	_, err = n.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(b, err)
	root, err := n.SubdotPath(ctx, dotmesh.VolumeName{Dot: app, Subdot: dotmesh.RootSubdot})
	require.NoError(b, err)
	r := rand.New(rand.NewPCG(1, 1))
	data := make([]byte, 4<<20)
	for i := range 64 {
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		require.NoError(b, os.WriteFile(filepath.Join(root, fmt.Sprintf("f%02d", i)), data, 0o644))
	}
	c, err := n.Commit(ctx, app, "", dotmesh.CommitOptions{Message: "big", Author: "bench"})
	require.NoError(b, err)
	b.SetBytes(256 << 20)
	b.ResetTimer()
	for range b.N {
		rc, err := dotmesh.LocalTransport(n).FetchCommit(ctx, app, c.ID, nil, dotmesh.FormatNeutral)
		require.NoError(b, err)
		got, err := io.Copy(io.Discard, rc)
		require.NoError(b, err)
		rc.Close()
		require.Greater(b, got, int64(256<<20))
	}
}
