package dotmesh_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/backend/backendtest"
	"github.com/dotmesh-io/dotmesh/backend/dump"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Cluster mode on the files backend; backend/zfs and backend/btrfs run the
// same scenarios on their storage.
func TestCluster(t *testing.T) {
	backendtest.RunCluster(t, func(t *testing.T, _ string) dotmesh.StorageBackend {
		be, err := dump.Open(filepath.Join(t.TempDir(), "dump"), dump.Options{})
		require.NoError(t, err)
		return be
	})
}
