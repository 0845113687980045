// Command dm is the dotmesh command line; everything lives in package cli.
package main

import (
	"os"

	"github.com/dotmesh-io/dotmesh/frontends/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
