package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func (a *app) commitCmd() *cobra.Command {
	var (
		dot, message string
		meta         []string
	)
	c := &cobra.Command{
		Use:   "commit -m MESSAGE [-d KEY=VALUE ...]",
		Short: "Commit the state of every subdot of the current branch",
		Long: `Record the current state of all subdots of the dot's current branch as
one atomic commit, with a message and optional key=value metadata.

Metadata keys follow the name rules (letters, digits, '_' and '-'); values
are free text. The commit id is printed.`,
		Example: `  dm commit -m "seed data"
  dm commit -m "after migration 42" -d ci=1 -d build=1234
  dm commit --dot app -m nightly -H`,
		Args: usageArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(message) == "" {
				return fmt.Errorf("%w: a commit needs a message: -m MESSAGE", dotmesh.ErrInvalidArgument)
			}
			md, err := ParseMetadata(meta)
			if err != nil {
				return err
			}
			s, name, err := a.connectDot(dot)
			if err != nil {
				return err
			}
			cm, err := s.c.Commit(cmd.Context(), name, "", message, md)
			if err != nil {
				return s.wrap(err)
			}
			switch {
			case a.jsonOut:
				return writeJSON(a.out(), commitJSON(cm))
			case a.scripting:
				_, err = fmt.Fprintln(a.out(), cm.ID)
				return err
			}
			_, err = fmt.Fprintf(a.out(), "[%s@%s %s] %s\n", name, cm.Branch, shortID(string(cm.ID)), printable(firstLine(cm.Message)))
			return err
		},
	}
	f := c.Flags()
	f.StringVarP(&message, "message", "m", "", "commit `MESSAGE` (required)")
	f.StringArrayVarP(&meta, "metadata", "d", nil, "metadata `KEY=VALUE`; repeatable")
	f.StringVar(&dot, "dot", "", "commit `DOT` instead of the current dot")
	return c
}

func (a *app) logCmd() *cobra.Command {
	var (
		dot, branch string
		limit       int
	)
	c := &cobra.Command{
		Use:   "log",
		Short: "Show the commits of the current branch, newest first",
		Long: `Show the history of the dot's current branch (or --branch), newest first:
commit id, author, date, metadata and message. Where gc removed the older
history (here, or on the node it came from), the oldest commit shown is
marked "(pruned)" (as git's "grafted"; "pruned": true with --json).

With -H, one commit per line: id, author, time (RFC 3339), message (first
line) and metadata as key=value separated by spaces.`,
		Example: `  dm log
  dm log -n 5 --dot app --branch feature
  dm log --json`,
		Args: usageArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dot != "" {
				if _, err := parseDotName(dot); err != nil {
					return err
				}
			}
			if branch != "" {
				if err := validateBranch(branch); err != nil {
					return err
				}
			}
			if limit < 0 {
				return fmt.Errorf("%w: -n must not be negative", dotmesh.ErrInvalidArgument)
			}
			s, err := a.connect()
			if err != nil {
				return err
			}
			name, err := s.currentDot(dot)
			if err != nil {
				return err
			}
			commits, err := s.c.Log(cmd.Context(), name, branch, limit)
			if err != nil {
				return s.wrap(err)
			}
			if commits == nil {
				commits = []dotmesh.Commit{}
			}
			switch {
			case a.jsonOut:
				return writeJSON(a.out(), commitsJSON(commits))
			case a.scripting:
				t := &table{scripting: true}
				for _, c := range commits {
					var md []string
					for _, k := range sortedKeys(c.Metadata) {
						md = append(md, k+"="+c.Metadata[k])
					}
					t.add(string(c.ID), c.Author, c.Time.Format(time.RFC3339), firstLine(c.Message), strings.Join(md, " "))
				}
				return t.write(a.out())
			}
			if len(commits) == 0 {
				a.info("No commits yet on this branch; `dm commit -m MESSAGE` makes the first.")
				return nil
			}
			return writeLog(a.out(), commits)
		},
	}
	f := c.Flags()
	f.StringVar(&dot, "dot", "", "show `DOT` instead of the current dot")
	f.StringVar(&branch, "branch", "", "show `BRANCH` instead of the dot's current branch")
	f.IntVarP(&limit, "max-count", "n", 0, "show at most `N` commits (0: all)")
	return c
}

// writeLog prints commits the way git log does.
func writeLog(w io.Writer, commits []dotmesh.Commit) error {
	for i, c := range commits {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if c.Pruned {
			fmt.Fprintf(w, "commit %s (pruned)\n", c.ID)
		} else {
			fmt.Fprintf(w, "commit %s\n", c.ID)
		}
		fmt.Fprintf(w, "Author: %s\n", printable(c.Author))
		fmt.Fprintf(w, "Date:   %s\n", c.Time.Local().Format("Mon Jan 2 15:04:05 2006 -0700"))
		for _, k := range sortedKeys(c.Metadata) {
			fmt.Fprintf(w, "Meta:   %s=%s\n", k, printable(c.Metadata[k]))
		}
		fmt.Fprintln(w)
		for _, l := range strings.Split(strings.TrimRight(c.Message, "\n"), "\n") {
			fmt.Fprintf(w, "    %s\n", printable(l))
		}
		if c.Pruned {
			fmt.Fprintf(w, "\nHistory pruned here: parent %s and older commits are not on this node (gc removed them, here or where this history came from).\n", c.Parent)
		}
	}
	return nil
}

func (a *app) resetCmd() *cobra.Command {
	var (
		dot     string
		hard    bool
		restart bool
	)
	c := &cobra.Command{
		Use:   "reset [--hard] [--restart] REF",
		Short: "Move the current branch back to a commit, restoring its state",
		Long: `Move the dot's current branch back to the commit REF names and restore
the working state of all its subdots to that commit, atomically.

REF is HEAD, HEAD^ (its parent), HEAD^^, HEAD~N, or a commit id or a unique
prefix of one (at least 4 hex digits), optionally followed by ^ or ~N.

Without --hard, reset refuses when the branch has uncommitted changes;
--hard discards them. Commits after REF that no other branch reaches are
deleted.

A reset cut short by a crash of the node is finished when the node starts
again: the working state is then wholly REF's, with the head there.

While containers (or pods) use the branch, reset refuses and names them,
rather than change data under them; --restart stops them, resets, and
starts them again, so they see the restored state.`,
		Example: `  dm reset --hard HEAD^
  dm reset 3f2a9c
  dm reset --hard HEAD~3 --dot app
  dm reset --hard --restart HEAD^`,
		Args: usageArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref := args[0]
			if err := validateRef(ref); err != nil {
				return err
			}
			s, name, err := a.connectDot(dot)
			if err != nil {
				return err
			}
			cm, err := s.c.ResetWith(cmd.Context(), name, api.ResetRequest{Ref: ref, Hard: hard, Restart: restart})
			if err != nil {
				return s.wrap(err)
			}
			switch {
			case a.jsonOut:
				return writeJSON(a.out(), commitJSON(cm))
			case a.scripting:
				_, err = fmt.Fprintln(a.out(), cm.ID)
				return err
			}
			_, err = fmt.Fprintf(a.out(), "HEAD of %s is now at %s %s\n", name, shortID(string(cm.ID)), printable(firstLine(cm.Message)))
			return err
		},
	}
	f := c.Flags()
	f.BoolVar(&hard, "hard", false, "discard uncommitted changes")
	f.BoolVar(&restart, "restart", false, "stop the containers using the branch, reset, and start them again")
	f.StringVar(&dot, "dot", "", "reset `DOT` instead of the current dot")
	return c
}
