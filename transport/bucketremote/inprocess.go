package bucketremote

import "github.com/dotmesh-io/dotmesh/dotmesh"

var _ dotmesh.InProcessTransport = (*Remote)(nil)

// InProcess implements dotmesh.InProcessTransport: a bucket remote runs
// in the node's process; what crosses the network are its objects, each
// sealed or checksummed on its own.
func (r *Remote) InProcess() bool { return true }
