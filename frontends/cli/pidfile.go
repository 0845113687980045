package cli

import "github.com/dotmesh-io/dotmesh/server"

// Files of a node's data directory the CLI reads. Whether a node runs
// there is daemon.NodeRunning's to say: package daemon owns the pid file.
const (
	keyFileName = server.AdminKeyFile
	logFileName = "dm.log"
)
