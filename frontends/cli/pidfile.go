package cli

import "github.com/dotmesh-io/dotmesh/internal/node"

// keyFileName is the file of a node's data directory that holds its admin
// API key, which the remote "local" uses. Whether a node runs there, and
// its pid file, are package daemon's (Wiring.NodeRunning).
const keyFileName = node.AdminKeyFile
