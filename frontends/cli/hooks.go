package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func (a *app) hookCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "hook",
		Short: "Run commands, HTTP calls or database quiesce around a dot's commits",
		Long: `A dot's hooks run on its node around every commit of it (by dm commit,
--all, a schedule), as Velero's pre and post hooks run around a backup:

  pre-commit   a command or HTTP call before the commit; if it fails (or
               times out) the commit is not made and dm exits with 11
  quiesce      a built-in that brings a database to a clean point just
               across the snapshot (zfs and btrfs dots):
                 postgresql  CHECKPOINT first, so that PostgreSQL started on
                             a reset replays little WAL
                 mysql       FLUSH TABLES WITH READ LOCK, held on one
                             connection only until the snapshot is taken
                 fsfreeze    fsfreeze -f/-u of a subdot that is a file
                             system of its own; always thawed, also on
                             failure and timeout
               a commit it held across records itself as
               application-consistent (dm log, dm show)
  post-commit  a command or HTTP call after the commit, also after a
               failed one; it is told the outcome, and its own failure is
               only logged

A command runs on the node, in the branch's working tree, in a process
group of its own that is killed when --timeout (default 30s) passes, with
PATH, HOME, LANG and DM_HOOK, DM_DOT, DM_BRANCH, DM_DOT_PATH, DM_SUBDOTS,
DM_SUBDOT_<NAME> (a subdot's directory); a post-commit hook also gets
DM_COMMIT_OUTCOME (committed, nothing-to-commit, failed), DM_COMMIT and
DM_COMMIT_ERROR. Its output goes to the node's log. An HTTP hook is a POST
of the same facts as JSON; any 2xx answer is success.

A hook runs a command as the node's user, so only the node's admin may
set, list or remove hooks; every change is audited. Each stage holds one
hook; setting one replaces the stage's hook. Hooks stay on the node (a
cluster's nodes share them); push, pull and clone do not carry them.`,
		Args: usageArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	c.AddCommand(a.hookSetCmd(), a.hookListCmd(), a.hookRemoveCmd())
	return c
}

func (a *app) hookSetCmd() *cobra.Command {
	var hookURL, subdot, timeout, httpURL string
	c := &cobra.Command{
		Use:   "set DOT pre-commit|post-commit [--timeout D] (-- CMD ARGS... | --http URL) | set DOT quiesce postgresql|mysql|fsfreeze (--url URL | --subdot S)",
		Short: "Set a dot's hook of a stage",
		Example: `  dm hook set app pre-commit -- /usr/local/bin/app-ready --strict
  dm hook set app post-commit --timeout 1m -- /usr/local/bin/notify
  dm hook set app pre-commit --http http://127.0.0.1:8080/ready
  dm hook set app quiesce postgresql --url 'postgres://postgres@/postgres?host=/run/postgresql'
  dm hook set app quiesce mysql --url 'mysql://root@unix(/run/mysqld/mysqld.sock)/mysql'
  dm hook set app quiesce fsfreeze --subdot data`,
		Args: usageArgs(2, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := parseDotName(args[0]); err != nil {
				return err
			}
			stage, words := args[1], args[2:]
			if at := cmd.ArgsLenAtDash(); (at >= 0 && at != 2) || (at < 0 && len(words) > 0 && stage != dotmesh.HookQuiesce) {
				return kinded(errUsage, fmt.Errorf("usage: dm hook set DOT %s -- CMD ARGS... (the command goes after --)", stage))
			}
			u := hookURL
			if httpURL != "" {
				if u != "" {
					return kinded(errUsage, fmt.Errorf("usage: give --http or --url, not both"))
				}
				u = httpURL
			}
			h, err := dotmesh.ParseHook(stage, words, u, subdot, timeout)
			if err != nil {
				return err
			}
			s, name, err := a.connectDot(args[0])
			if err != nil {
				return err
			}
			dh, err := s.c.SetHook(cmd.Context(), name, h)
			if err != nil {
				return s.wrap(err)
			}
			if a.jsonOut {
				return writeJSON(a.out(), dh)
			}
			a.info("Set the %s hook of %s: %s", h.Stage, name, describeHook(h))
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&httpURL, "http", "", "pre-commit, post-commit: POST to `URL` instead of running a command")
	f.StringVar(&hookURL, "url", "", "quiesce postgresql or mysql: the database's `URL` (as for dm source add)")
	f.StringVar(&subdot, "subdot", "", "quiesce fsfreeze: the `SUBDOT` whose file system is frozen")
	f.StringVar(&timeout, "timeout", "", "how long the hook may take (`DURATION`, default 30s, at most 1h)")
	return c
}

func (a *app) hookListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list [DOT]",
		Short: "Show the hooks of a dot, or of every dot that has any",
		Example: `  dm hook list app
  dm hook list --json`,
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
			var all []dotmesh.DotHooks
			if len(args) == 1 {
				name, err := s.dotArg(args[0])
				if err != nil {
					return err
				}
				dh, err := s.c.Hooks(cmd.Context(), name)
				if err != nil {
					return s.wrap(err)
				}
				all = []dotmesh.DotHooks{*dh}
			} else if all, err = s.c.AllHooks(cmd.Context()); err != nil {
				return s.wrap(err)
			}
			if a.jsonOut {
				if len(args) == 1 {
					return writeJSON(a.out(), all[0])
				}
				if all == nil {
					all = []dotmesh.DotHooks{}
				}
				return writeJSON(a.out(), all)
			}
			t := &table{scripting: a.scripting, header: []string{"DOT", "STAGE", "HOOK", "TIMEOUT"}}
			for _, dh := range all {
				for _, h := range dh.Hooks {
					t.add(dh.Dot.String(), h.Stage, describeHook(h), h.TimeoutOrDefault().String())
				}
			}
			if len(t.rows) == 0 && !a.scripting {
				a.info("No hooks.")
				return nil
			}
			return t.write(a.out())
		},
	}
}

func (a *app) hookRemoveCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "remove DOT pre-commit|quiesce|post-commit",
		Aliases: []string{"rm"},
		Short:   "Remove a dot's hook of a stage",
		Example: `  dm hook remove app pre-commit`,
		Args:    usageArgs(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, name, err := a.connectDot(args[0])
			if err != nil {
				return err
			}
			dh, err := s.c.RemoveHook(cmd.Context(), name, args[1])
			if err != nil {
				return s.wrap(err)
			}
			if a.jsonOut {
				return writeJSON(a.out(), dh)
			}
			a.info("Removed the %s hook of %s.", args[1], name)
			return nil
		},
	}
}

// describeHook says what a hook runs, in one line, without a password.
func describeHook(h dotmesh.Hook) string {
	h = h.Redacted()
	switch h.Kind {
	case dotmesh.HookCommand:
		return printable(strings.Join(h.Command, " "))
	case dotmesh.HookFSFreeze:
		return "fsfreeze " + h.Subdot
	}
	return h.Kind + " " + printable(h.URL)
}

// consistencyWords is a commit's recorded consistency for the long log
// and dm show: the word, and the hook or instant behind it; "" for a
// commit made before consistency was recorded.
func consistencyWords(c *dotmesh.Commit) string {
	s := c.Info[dotmesh.InfoConsistency]
	switch s {
	case "":
		return ""
	case dotmesh.ConsistencyApplication:
		s += " (" + c.Info[dotmesh.InfoConsistencyHook] + ")"
	case dotmesh.ConsistencyLogical:
		if t := c.Info[dotmesh.InfoConsistencyInstant]; t != "" {
			s += " at " + t
			if ms := c.Info[dotmesh.InfoConsistencySpread]; ms != "" {
				s += " (sources within " + ms + " ms)"
			}
		}
	}
	return printable(s)
}
