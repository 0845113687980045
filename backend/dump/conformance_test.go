package dump

import (
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/backendtest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) dotmesh.StorageBackend {
		dir := t.TempDir()
		b, err := Open(dir, Options{Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { makeWritable(dir) }) // after the suite closes b
		return b
	})
}

// Renamed branches and tags through real nodes.
func TestRefs(t *testing.T) {
	backendtest.RunRefs(t, func(t *testing.T, _ string) dotmesh.StorageBackend {
		dir := t.TempDir()
		b, err := Open(dir, Options{Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { makeWritable(dir) })
		return b
	})
}
