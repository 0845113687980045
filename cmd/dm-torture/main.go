// Command dm-torture is dotmesh's torture run (see package tests/torture):
// random operations, SIGKILLs and restarts on real `dm serve` nodes, with
// invariant checks after every restart. It exits 1 on the first violation,
// printing the seed that replays it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/dotmesh-io/dotmesh/tests/torture"
)

func main() {
	var (
		dm       = flag.String("dm", "bin/dm", "the dm binary to run the nodes and commands with")
		backends = flag.String("backends", "files", "comma-separated backends to run in turn: files, zfs, btrfs (zfs and btrfs need root; each gets its own pools, removed at the end)")
		dur      = flag.Duration("time", 10*time.Minute, "how long to run operations, per backend")
		seed     = flag.Uint64("seed", 0, "seed of the run (0: from the clock); the same seed replays the same operations and kill decisions")
		nodes    = flag.Int("nodes", 3, "number of dm serve nodes (2 or 3), on 127.0.0.1..N")
		exclude  = flag.String("exclude", "", "comma-separated operation classes not to run: "+strings.Join(torture.Classes, ","))
		killRate = flag.Float64("kill-rate", 0.25, "chance that an operation gets a SIGKILL of a node it involves (0: none)")
		maxFile  = flag.Int("max-file", 2<<20, "largest file a write makes, in bytes")
	)
	flag.Parse()
	cfgs, err := torture.Configs(*dm, *backends, *exclude, *dur, *seed, *nodes, *killRate, *maxFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dm-torture:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, cfg := range cfgs {
		if err := torture.Run(ctx, cfg); err != nil {
			var v *torture.Violation
			if errors.As(err, &v) {
				fmt.Fprintf(os.Stderr, "dm-torture: seed %d backend %s: %v\n", cfg.Seed, cfg.Backend, err)
				os.Exit(1)
			}
			fmt.Fprintf(os.Stderr, "dm-torture: seed %d backend %s: the run could not go on: %v\n", cfg.Seed, cfg.Backend, err)
			os.Exit(2)
		}
	}
}
