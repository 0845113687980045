//go:build dmlight

package main

import (
	"os"

	// The s3:// kind of bucket remotes, which the CLI opens itself.
	_ "github.com/dotmesh-io/dotmesh/bucket/s3"
	"github.com/dotmesh-io/dotmesh/frontends/cli"
)

// wiring hands every command that runs nodes to dm-node.
var wiring = cli.Wiring{HandOver: handOver}

func main() {
	os.Exit(cli.Main(os.Args, os.Stdin, os.Stdout, os.Stderr, wiring))
}
