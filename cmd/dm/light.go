//go:build dmlight

package main

import (
	"os"

	"github.com/dotmesh-io/dotmesh/frontends/cli"
)

// wiring hands every command that runs nodes, reaches an s3:// bucket or
// writes man pages to dm-node.
var wiring = cli.Wiring{HandOver: handOver}

func main() {
	os.Exit(cli.Main(os.Args, os.Stdin, os.Stdout, os.Stderr, wiring))
}
