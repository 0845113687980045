package dump

import (
	"context"

	"github.com/dotmesh-io/dotmesh/backend/internal/fsfree"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Capacity implements dotmesh.CapacityReporter: the free bytes of the
// file system holding the store. Working states and the store share it,
// and nothing bounds one branch: the backend is no dotmesh.VolumeSizer.
func (b *Backend) Capacity(context.Context) (dotmesh.Capacity, error) {
	return fsfree.Capacity(b.dir)
}
