package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// optionalDotArg parses [DOT]; nil means every dot.
func optionalDotArg(args []string) (*dotmesh.DotName, error) {
	if len(args) == 0 {
		return nil, nil
	}
	d, err := parseDotName(args[0])
	if err != nil {
		return nil, err
	}
	return &d, nil
}

func (a *app) gcCmd() *cobra.Command {
	var (
		keep     int
		dryRun   bool
		allNodes bool
	)
	c := &cobra.Command{
		Use:   "gc [DOT|BUCKET] [--keep N] [--dry-run]",
		Short: "Remove old commits and reclaim space nothing uses",
		Long: `Apply a retention policy and collect garbage, like Dysnomia's generations.

With --keep N, the newest N commits of each branch of DOT (every dot when
none is named) are kept, and so are the commit each branch was made from
and every tagged commit; every other commit in a branch's history is removed from the registry and
from storage. Removed commits disappear from ` + "`dm log`" + `, which then ends at
the oldest kept commit, marked (pruned). The dot still pushes and clones:
that commit travels whole, as the start of a shallow history. Without
--keep no commit is removed.

Then every stored chunk that no commit and no working state references is
deleted, and the bytes freed are printed. Incoming transfers cut off for
longer than the node's pin time (see ` + "`dm transfers`" + `) are ended first, so
what they received is freed too. Chunks are shared by all dots of
a backend, so this sweep is node-wide even when DOT is named. Commits that
run meanwhile are safe: the sweep holds them off.

--dry-run prints what would be removed (each commit's id, branch, time
and message) and freed, and changes nothing.

With BUCKET, a bucket remote (or --remote naming one), dm collects the
bucket itself, without a node: the newest N commits of each branch there
stay, tagged ones too, and every chunk no kept commit uses is deleted,
as are the leftovers of pushes that never finished. It holds the
bucket's exclusive lock meanwhile: a running push makes it stop at once,
naming the push's lock. A DOT named like a bucket remote is written
NAMESPACE/DOT.` + allNodesHelp,
		Example: `  dm gc --keep 10 --dry-run
  dm gc app --keep 3
  dm gc
  dm gc backup --keep 5
  dm gc --all-nodes`,
		Args: usageArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if keep < 0 {
				return fmt.Errorf("%w: --keep must be >= 1 (or 0, the default: remove no commits)", dotmesh.ErrInvalidArgument)
			}
			if bname, b, err := a.bucketArg(args); err != nil || b != nil {
				if err != nil {
					return err
				}
				if allNodes {
					return errNotForBucket("--all-nodes")
				}
				return a.gcBucket(cmd.Context(), bname, b, keep, dryRun)
			}
			dot, err := optionalDotArg(args)
			if err != nil {
				return err
			}
			if allNodes {
				return a.gcAllNodes(cmd, dot, keep, dryRun)
			}
			s, err := a.connect()
			if err != nil {
				return err
			}
			if dot != nil {
				*dot, _ = s.dotArg(args[0])
			}
			res, err := withProgress(a, cmd.Context(), "gc", func(ctx context.Context) (*dotmesh.GCResult, error) {
				return s.c.GC(ctx, dot, keep, dryRun)
			})
			if err != nil {
				return s.wrap(err)
			}
			return a.printGC(res)
		},
	}
	c.Flags().IntVar(&keep, "keep", 0, "keep the newest `N` commits of each branch (0: remove no commits)")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "print what would be removed and freed; change nothing")
	c.Flags().BoolVar(&allNodes, "all-nodes", false, "run on every node of the current remote's cluster and report per node")
	a.passwordFileFlag(c)
	return c
}

// errDamage makes dm exit 8 (corrupt) after verify printed its findings.
var errDamage = kinded(dotmesh.ErrCorrupt, errors.New("verify found damaged data (see above)"))

func (a *app) verifyCmd() *cobra.Command {
	var (
		readData string
		allNodes bool
	)
	c := &cobra.Command{
		Use:   "verify [DOT | BUCKET [--read-data[=PERCENT]]]",
		Short: "Re-read every stored chunk and check its hash",
		Long: `Re-read every stored chunk of the node (of DOT's backend when DOT is named;
chunks are shared by the dots of a backend) and check it against its hash.
Each damaged chunk is printed with the commits that use it; other problems
(unreadable manifests, missing chunks) are printed too. dm exits 8
(corrupt) when anything is found.

With BUCKET, a bucket remote (or --remote naming one), dm checks the
bucket itself, without a node: every object's seal, and that each commit
there has its tree and every chunk it names. --read-data also reads every
chunk and checks it against its id (as restic check --read-data);
--read-data=PERCENT reads that share of the packs (the objects that hold
the chunks), chosen at random, and every chunk in them. Each damaged or
missing object is printed with the dot and commit that need it.` + allNodesHelp,
		Example: `  dm verify
  dm verify app --json
  dm verify backup
  dm verify backup --read-data=10
  dm verify --all-nodes`,
		Args: usageArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bname, b, err := a.bucketArg(args)
			if err != nil {
				return err
			}
			if b != nil {
				if allNodes {
					return errNotForBucket("--all-nodes")
				}
				return a.verifyBucket(cmd.Context(), bname, b, readData)
			}
			if readData != "" {
				return errNoBucketFlag("--read-data")
			}
			dot, err := optionalDotArg(args)
			if err != nil {
				return err
			}
			if allNodes {
				return a.verifyAllNodes(cmd, dot)
			}
			s, err := a.connect()
			if err != nil {
				return err
			}
			if dot != nil {
				*dot, _ = s.dotArg(args[0])
			}
			res, err := withProgress(a, cmd.Context(), "verify", func(ctx context.Context) (*dotmesh.VerifyResult, error) {
				return s.c.Verify(ctx, dot)
			})
			if err != nil {
				return s.wrap(err)
			}
			if a.jsonOut {
				if err := writeJSON(a.out(), res); err != nil {
					return err
				}
			} else {
				for name, rep := range res.Backends {
					for _, d := range rep.Damaged {
						fmt.Fprintf(a.out(), "damaged chunk %s (%s) used by %d commits:\n", d.Object, printable(d.Error), len(d.Users))
						for _, u := range d.Users {
							fmt.Fprintf(a.out(), "  %s\n", u)
						}
					}
					for _, p := range rep.Problems {
						fmt.Fprintf(a.out(), "problem: %s\n", printable(p))
					}
					a.info("backend %s: %d chunks, %s checked; %d damaged, %d other problems", name, rep.Objects, HumanSize(rep.Bytes), len(rep.Damaged), len(rep.Problems))
				}
			}
			if !res.OK() {
				return errDamage
			}
			return nil
		},
	}
	c.Flags().StringVar(&readData, "read-data", "", "bucket remotes: also read and check the chunks, all or those in a `PERCENT` sample of the packs")
	c.Flags().Lookup("read-data").NoOptDefVal = "100"
	c.Flags().BoolVar(&allNodes, "all-nodes", false, "run on every node of the current remote's cluster and report per node")
	a.passwordFileFlag(c)
	return c
}
