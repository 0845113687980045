//go:build dmlight

// A dm runs for milliseconds: it needs no container-aware GOMAXPROCS,
// no updates of it, nor names on the runtime's anonymous mappings (a
// prctl each): together some 50 page faults and 90 system calls fewer at
// every start. (Go 1.26's runtime still reads the four cgroup files
// once at start with containermaxprocs=0, to count the setting's
// effect; nothing in a program turns that off.)

//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0
//go:debug decoratemappings=0

package main

import (
	"os"

	"github.com/dotmesh-io/dotmesh/frontends/cli"
)

// wiring hands every command that runs nodes, opens a bucket's
// repository, talks to an https node or writes man pages to dm-node.
var wiring = cli.Wiring{HandOver: handOver}

func main() {
	os.Exit(cli.Main(os.Args, os.Stdin, os.Stdout, os.Stderr, wiring))
}
