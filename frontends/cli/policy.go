package cli

// dm policy: a schedule and a retention grid per dot or label selector,
// run by the node (see dotmesh/policy.go and schedule.go).

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

const policyHelp = `A policy makes the node commit a dot's current branch on a schedule, and
prune the commits its schedule made with a retention grid, as restic's
forget --keep-* and zrepl's pruning do. It is for one DOT, or for every
dot that --label KEY=VALUE (repeatable, all must hold; also KEY!=VALUE,
KEY, !KEY) and --namespace NS choose, now or later (a selector's policy
is the admin's). A dot's own policy wins over a selector's; of several
selectors, the oldest.

The node whose branch it is runs it (in a cluster, the branch's master):
every --every it commits the current branch with the message "scheduled
commit (every 15m)" and the metadata dotmesh-schedule=POLICY (dm log
shows it). A dot that has not changed is not committed. The last run is
kept in the registry, so schedules survive restarts, and a node that was
down over several periods runs once when it is back, not once per
period.

--keep is the grid: last=N keeps the newest N scheduled commits; hourly,
daily, weekly (ISO weeks), monthly and yearly=N keep the newest
scheduled commit of each of the N newest hours (days, ...) that have one,
in UTC; while a field has counts left, the oldest scheduled commit stays
too (restic's rule). After each scheduled commit, the branch's other
scheduled commits go. Commits made by hand are never pruned, nor a
branch's head or origin, a tagged commit, or a commit in another
branch's history; a kept commit whose parent went names the nearest kept
commit before it. The node logs what it removed and the bytes freed.
Without --keep, every scheduled commit stays.

Pruning a commit that a remote's branch head is at makes the next push
there refuse (diverged); push before the grid lets that commit go, or
pull first.`

func (a *app) policyCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "policy",
		Short: "Commit dots on a schedule and prune by a retention grid",
		Long:  policyHelp,
		Example: `  dm policy set app --every 15m --keep last=4,hourly=24,daily=7,weekly=4,monthly=12
  dm policy set --label app=shop --every 1h --keep daily=7
  dm policy show
  dm policy show app
  dm policy prune app --dry-run
  dm policy remove app`,
		Args: subcommandArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	c.AddCommand(a.policySetCmd(), a.policyShowCmd(), a.policyRemoveCmd(), a.policyPruneCmd())
	return c
}

// policyTarget is DOT or --namespace/--label of a policy command.
type policyTarget struct {
	namespace string
	labels    []string
}

func (pt *policyTarget) flags(c *cobra.Command) {
	c.Flags().StringVar(&pt.namespace, "namespace", "", "the policy of the dots of namespace `NS` (with --label: those of NS it chooses)")
	c.Flags().StringArrayVar(&pt.labels, "label", nil, "the policy of the dots labelled `KEY=VALUE` (KEY!=VALUE, KEY, !KEY); repeatable, all must hold")
}

// selector parses the target: nil for DOT (args[0]), else the selector.
func (pt *policyTarget) selector(args []string) (*dotmesh.Selector, error) {
	sel := pt.namespace != "" || len(pt.labels) > 0
	switch {
	case sel && len(args) > 0:
		return nil, kinded(errUsage, errors.New("name a DOT or choose dots with --label/--namespace, not both"))
	case !sel && len(args) == 0:
		return nil, kinded(errUsage, errors.New("name a DOT, or choose dots with --label KEY=VALUE and/or --namespace NS"))
	case !sel:
		_, err := parseDotName(args[0])
		return nil, err
	}
	s, err := dotmesh.ParseSelector(pt.namespace, pt.labels)
	if err != nil {
		return nil, err
	}
	return &s, nil
}

func (a *app) policySetCmd() *cobra.Command {
	var (
		target      policyTarget
		every, keep string
		dryRun      bool
	)
	c := &cobra.Command{
		Use:   "set DOT|--label KEY=VALUE... [--namespace NS] --every PERIOD [--keep GRID] [--dry-run]",
		Short: "Set the schedule and retention grid of a dot or selector",
		Long: `Set the policy of DOT, or of the dots --label and --namespace choose
(replacing the one it had). PERIOD is a duration: 30s, 15m, 1h30m, 1d,
1w (1s to 366d). GRID is FIELD=N,... with fields last, hourly, daily,
weekly, monthly, yearly; without it every scheduled commit stays.

A new policy's first run is at once (the node's next pass); then one
PERIOD after the last. --dry-run stores nothing and prints which commits
GRID would remove now from each chosen dot (id, branch, time, message).

` + policyHelp,
		Example: `  dm policy set app --every 15m --keep last=4,hourly=24,daily=7,weekly=4,monthly=12
  dm policy set app --every 15m --keep last=2 --dry-run
  dm policy set --label app=shop --namespace team --every 1h --keep daily=7,weekly=4`,
		Args: usageArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sel, err := target.selector(args)
			if err != nil {
				return err
			}
			if every == "" {
				return kinded(errUsage, fmt.Errorf("usage: %s (--every is required)", cmd.UseLine()))
			}
			period, err := dotmesh.ParseEvery(every)
			if err != nil {
				return err
			}
			var grid dotmesh.KeepGrid
			if cmd.Flags().Changed("keep") {
				if grid, err = dotmesh.ParseKeepGrid(keep); err != nil {
					return err
				}
			}
			if dryRun && grid.IsZero() {
				return kinded(errUsage, errors.New("--dry-run shows what --keep GRID would remove; give --keep"))
			}
			s, err := a.connect()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if dryRun {
				return a.policyDryRun(ctx, s, args, sel, grid)
			}
			req := api.PolicyRequest{Every: period.String(), Keep: grid.String()}
			var p *dotmesh.Policy
			if sel != nil {
				req.Namespace, req.Labels = target.namespace, target.labels
				p, err = s.c.SetSelectorPolicy(ctx, req)
			} else {
				name, _ := s.dotArg(args[0])
				p, err = s.c.SetPolicy(ctx, name, req)
			}
			if err != nil {
				return s.wrap(err)
			}
			if a.jsonOut {
				return writeJSON(a.out(), p)
			}
			a.info("Policy %s: every %s, %s", p.ID(), p.Every, keepText(p.Keep))
			return nil
		},
	}
	target.flags(c)
	c.Flags().StringVar(&every, "every", "", "commit every `PERIOD` (30s, 15m, 1h, 1d, 1w)")
	c.Flags().StringVar(&keep, "keep", "", "prune scheduled commits by `GRID` (last=N,hourly=N,daily=N,weekly=N,monthly=N,yearly=N)")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "store nothing; print what GRID would remove now")
	return c
}

// policyDryRun prints what grid would remove now from DOT, or from each
// dot sel chooses.
func (a *app) policyDryRun(ctx context.Context, s *session, args []string, sel *dotmesh.Selector, grid dotmesh.KeepGrid) error {
	var names []dotmesh.DotName
	if sel != nil {
		dots, err := selectDots(ctx, s, *sel)
		if err != nil {
			return err
		}
		for _, st := range dots {
			names = append(names, st.Dot.DotName())
		}
	} else {
		name, _ := s.dotArg(args[0])
		names = []dotmesh.DotName{name}
	}
	all := &dotmesh.GCResult{DryRun: true, Removed: []dotmesh.RemovedCommit{}, Expired: []dotmesh.IncomingTransfer{}}
	for _, name := range names {
		res, err := s.c.PrunePolicy(ctx, name, api.PolicyPruneRequest{Keep: grid.String(), DryRun: true})
		if err != nil {
			return s.wrap(err)
		}
		all.Removed = append(all.Removed, res.Removed...)
		all.Stats.ObjectsRemoved += res.Stats.ObjectsRemoved
		all.Stats.BytesRemoved += res.Stats.BytesRemoved
	}
	return a.printGC(all)
}

func keepText(g dotmesh.KeepGrid) string {
	if g.IsZero() {
		return "keep every commit"
	}
	return "keep " + g.String()
}

func (a *app) policyShowCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "show [DOT]",
		Short: "Show the policies, or the one that applies to DOT and its last run",
		Long: `Without DOT, list every policy: those of the dots you may read and those
of selectors. With DOT, show the policy that applies to it (its own or a
selector's), the branch it commits, its last run (when, what it did,
what the grid removed) and when the next is due.`,
		Example: `  dm policy show
  dm policy show app
  dm policy show app --json`,
		Args: usageArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if _, err := parseDotName(args[0]); err != nil {
					return err
				}
			}
			s, err := a.connect()
			if err != nil {
				return err
			}
			if len(args) == 0 {
				ps, err := s.c.Policies(cmd.Context())
				if err != nil {
					return s.wrap(err)
				}
				return a.printPolicies(ps)
			}
			name, _ := s.dotArg(args[0])
			st, err := s.c.PolicyStatus(cmd.Context(), name)
			if err != nil {
				return s.wrap(err)
			}
			return a.printPolicyStatus(st)
		},
	}
	return c
}

func (a *app) printPolicies(ps []dotmesh.Policy) error {
	if a.jsonOut {
		return writeJSON(a.out(), nonNilPolicies(ps))
	}
	if a.scripting {
		for _, p := range ps {
			fmt.Fprintf(a.out(), "%s\t%s\t%s\t%s\t%s\n", p.ID(), p.Every, orDash(p.Keep.String()), orDash(p.By), a.when(p.Created))
		}
		return nil
	}
	if len(ps) == 0 {
		a.info("No policies; `dm policy set DOT --every 15m --keep last=4` sets one.")
		return nil
	}
	tw := tabwriter.NewWriter(a.out(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POLICY\tEVERY\tKEEP\tSET BY\tSET")
	for _, p := range ps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", printable(p.ID()), p.Every, orDash(p.Keep.String()), orDash(p.By), a.when(p.Created))
	}
	return tw.Flush()
}

func nonNilPolicies(ps []dotmesh.Policy) []dotmesh.Policy {
	if ps == nil {
		return []dotmesh.Policy{}
	}
	return ps
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (a *app) printPolicyStatus(st *dotmesh.PolicyStatus) error {
	if a.jsonOut {
		return writeJSON(a.out(), st)
	}
	var rows [][2]string
	add := func(k, v string) { rows = append(rows, [2]string{k, v}) }
	add("dot", st.Dot.String())
	add("branch", st.Branch)
	if st.Policy == nil {
		add("policy", "-")
	} else {
		add("policy", st.Policy.ID())
		add("every", st.Policy.Every.String())
		add("keep", orDash(st.Policy.Keep.String()))
		add("set by", orDash(st.Policy.By))
	}
	if l := st.Last; l != nil {
		what := l.Result
		if l.Commit != "" {
			what += " " + shortID(string(l.Commit))
		}
		if l.Removed > 0 {
			what += fmt.Sprintf(", pruned %d %s, freed %s", l.Removed, plural(l.Removed, "commit", "commits"), HumanSize(l.BytesFreed))
		}
		if l.Error != "" {
			what += ": " + oneLine(l.Error)
		}
		add("last run", a.when(l.Time)+" "+printable(what))
	} else {
		add("last run", "-")
	}
	if !st.Next.IsZero() {
		add("next run", a.when(st.Next))
	}
	if a.scripting {
		for _, r := range rows {
			fmt.Fprintf(a.out(), "%s\t%s\n", r[0], r[1])
		}
		return nil
	}
	for _, r := range rows {
		fmt.Fprintf(a.out(), "%-10s%s\n", r[0]+":", r[1])
	}
	return nil
}

func (a *app) policyRemoveCmd() *cobra.Command {
	var target policyTarget
	c := &cobra.Command{
		Use:     "remove DOT|--label KEY=VALUE... [--namespace NS]",
		Aliases: []string{"rm"},
		Short:   "Remove the policy of a dot or selector",
		Long: `Remove DOT's own policy (a selector's that chooses DOT stays), or the
policy of the selector --label and --namespace give, written as when it
was set. The commits the schedule made stay.`,
		Example: `  dm policy remove app
  dm policy remove --label app=shop --namespace team`,
		Args: usageArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sel, err := target.selector(args)
			if err != nil {
				return err
			}
			s, err := a.connect()
			if err != nil {
				return err
			}
			what := ""
			if sel != nil {
				err = s.c.RemoveSelectorPolicy(cmd.Context(), api.PolicyRemoveRequest{Namespace: target.namespace, Labels: target.labels})
				what = "selector:" + sel.String()
			} else {
				name, _ := s.dotArg(args[0])
				err = s.c.RemovePolicy(cmd.Context(), name)
				what = "dot:" + name.String()
			}
			if err != nil {
				return s.wrap(err)
			}
			a.info("Removed the policy %s.", what)
			return nil
		},
	}
	target.flags(c)
	return c
}

func (a *app) policyPruneCmd() *cobra.Command {
	var (
		keep   string
		dryRun bool
	)
	c := &cobra.Command{
		Use:   "prune DOT [--keep GRID] [--dry-run]",
		Short: "Apply a dot's retention grid now",
		Long: `Prune the scheduled commits of every branch of DOT by its policy's grid
(or --keep GRID's) now, as the node does after each scheduled commit,
then free the storage nothing uses any more. --dry-run prints which
commits would go (id, branch, time, message) and changes nothing.`,
		Example: `  dm policy prune app --dry-run
  dm policy prune app --keep last=10,daily=30 --dry-run
  dm policy prune app`,
		Args: usageArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := parseDotName(args[0]); err != nil {
				return err
			}
			req := api.PolicyPruneRequest{DryRun: dryRun}
			if cmd.Flags().Changed("keep") {
				g, err := dotmesh.ParseKeepGrid(keep)
				if err != nil {
					return err
				}
				req.Keep = g.String()
			}
			s, name, err := a.connectDot(args[0])
			if err != nil {
				return err
			}
			res, err := withProgress(a, cmd.Context(), "prune", func(ctx context.Context) (*dotmesh.GCResult, error) {
				return s.c.PrunePolicy(ctx, name, req)
			})
			if err != nil {
				return s.wrap(err)
			}
			return a.printGC(res)
		},
	}
	c.Flags().StringVar(&keep, "keep", "", "prune by `GRID` instead of the policy's")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "print what would be removed; change nothing")
	return c
}

// printGC prints what a collection removed (or, dry, would remove): each
// commit with its branch, time and message, then the totals.
func (a *app) printGC(res *dotmesh.GCResult) error {
	switch {
	case a.jsonOut:
		return writeJSON(a.out(), res)
	case a.scripting:
		_, err := fmt.Fprintf(a.out(), "%d\t%d\t%d\n", len(res.Removed), res.Stats.ObjectsRemoved, res.Stats.BytesRemoved)
		return err
	}
	verb, freed := "removed", "freed"
	if res.DryRun {
		verb, freed = "would remove", "would free"
	}
	w := a.out()
	for _, t := range res.Expired {
		fmt.Fprintf(w, "%s the expired incoming transfer of %s@%s (%d commits)\n", verb, t.DotName(), t.Branch, t.Commits)
	}
	for _, r := range res.Removed {
		msg, _, _ := strings.Cut(r.Message, "\n")
		fmt.Fprintf(w, "%s commit %s of %s@%s (%s) %s\n", verb, shortID(string(r.ID)), r.Dot, r.Branch, a.when(r.Time), printable(msg))
	}
	_, err := fmt.Fprintf(w, "%s %d commits and %d chunks; %s %s\n", verb, len(res.Removed), res.Stats.ObjectsRemoved, freed, HumanSize(res.Stats.BytesRemoved))
	return err
}
