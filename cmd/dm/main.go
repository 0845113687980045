//go:build !dmlight

// Command dm is the dotmesh command line. This is its composition root: it
// wires package daemon, which runs nodes, into package cli, which talks,
// so that no frontend imports the daemon.
//
// Built as is, dm does everything. Built with -tags dmlight (light.go),
// it links only the CLI and the API client, so that it starts several
// times faster (no package init of etcd's client, gRPC, zap, protobuf
// registries, CSI, Prometheus, the bucket and S3 clients, the man page
// writer...), and hands the commands that run nodes, open bucket
// repositories or write man pages to this all-in-one build installed
// beside it as dm-node. `make build` makes both: bin/dm (light) and
// bin/dm-node.
package main

import (
	"os"

	// The s3:// kind of bucket remotes (registered on import), for the
	// CLI and the node alike.
	"github.com/dotmesh-io/dotmesh/bucket/s3"
	"github.com/dotmesh-io/dotmesh/daemon"
	"github.com/dotmesh-io/dotmesh/frontends/cli"
	"github.com/dotmesh-io/dotmesh/frontends/cli/manpage"
)

// wiring is how dm runs nodes.
var wiring = cli.Wiring{
	Serve:            daemon.Run,
	RebuildRegistry:  daemon.RebuildRegistry,
	MakeDataDir:      daemon.MakeDataDir,
	RememberedListen: daemon.RememberedListen,
	NodeRunning:      daemon.NodeRunning,
	StartNode:        daemon.StartNode,
	StopNode:         daemon.StopNode,

	StoreEncrypted:     daemon.StoreEncrypted,
	CheckStorePassword: daemon.CheckStorePassword,
	StoreKeys:          daemon.StoreKeys,

	S3Credentials: s3.DefaultCredentials,
	ManPages:      manpage.Write,
}

func main() {
	os.Exit(cli.Main(os.Args, os.Stdin, os.Stdout, os.Stderr, wiring))
}
