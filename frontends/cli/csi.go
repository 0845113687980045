package cli

import (
	"github.com/spf13/pflag"

	"github.com/dotmesh-io/dotmesh/internal/node"
)

// csiFlags are `dm serve`'s Kubernetes CSI flags.
type csiFlags struct{ socket, nodeID string }

func (c *csiFlags) add(f *pflag.FlagSet) {
	f.StringVar(&c.socket, "csi-socket", "", "serve the Kubernetes CSI plugin (driver dotmesh.io) on unix socket `PATH`, e.g. /var/lib/kubelet/plugins/dotmesh.io/csi.sock")
	f.StringVar(&c.nodeID, "csi-node-id", "", "node `ID` in CSI topology (key dotmesh.io/node; default: the host name, which must match the Kubernetes node)")
}

func (c *csiFlags) apply(cfg *node.Config) {
	cfg.CSISocket, cfg.CSINodeID = c.socket, c.nodeID
}
