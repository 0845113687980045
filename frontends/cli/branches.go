package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// branchItem is one row of `dm branch --json`.
type branchItem struct {
	Name    string `json:"name"`
	Current bool   `json:"current"`
	Head    string `json:"head,omitempty"`
}

func (a *app) branchCmd() *cobra.Command {
	var (
		dot, del string
		move     bool
	)
	c := &cobra.Command{
		Use:   "branch [NAME [FROM]] [-d NAME] [-m [OLD] NEW]",
		Short: "List, create, rename or delete branches",
		Long: `Without arguments, list the dot's branches; the current one is marked
with *. With NAME, create a branch from FROM (any ref: HEAD^, another
branch, a tag, a commit; default HEAD of the current branch) without
switching to it. With -d NAME, delete a branch that is not the current
one, with the commits only it reaches. With -m OLD NEW, rename branch OLD
to NEW (-m NEW: the current branch): its commits, working state and
mounts stay as they are, and it stays current if it was. A branch cannot
take a tag's name.

Every branch has its own working state: switching branches never discards
anything.

With -H: one branch per line, its head commit, and whether it is current
(yes/no).`,
		Example: `  dm branch
  dm branch hotfix HEAD^
  dm branch -m hotfix fix-1234
  dm branch -d fix-1234`,
		Args: usageArgs(0, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if del != "" && len(args) > 0 {
				return kinded(errUsage, fmt.Errorf("usage: dm branch -d NAME (no other arguments)"))
			}
			if move {
				return a.renameBranch(cmd, dot, del, args)
			}
			if del != "" {
				if err := validateBranch(del); err != nil {
					return err
				}
			}
			if len(args) > 0 {
				if err := validateNewBranch(args[0]); err != nil {
					return err
				}
			}
			if len(args) == 2 {
				if err := validateRef(args[1]); err != nil {
					return err
				}
			}
			s, name, err := a.connectDot(dot)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			switch {
			case del != "":
				if err := s.c.DeleteBranch(ctx, name, del); err != nil {
					return s.wrap(err)
				}
				a.info("Deleted branch %s of %s.", del, name)
				return nil
			case len(args) > 0:
				from := ""
				if len(args) == 2 {
					from = args[1]
				}
				b, err := s.c.CreateBranch(ctx, name, args[0], from)
				if err != nil {
					return s.wrap(err)
				}
				if a.jsonOut {
					return writeJSON(a.out(), b)
				}
				a.info("Created branch %s of %s at %s.", b.Name, name, shortID(string(b.Head)))
				return nil
			}
			st, err := s.c.Status(ctx, name)
			if err != nil {
				return s.wrap(err)
			}
			branches, err := s.c.Branches(ctx, name)
			if err != nil {
				return s.wrap(err)
			}
			current := ""
			if st.Branch != nil {
				current = st.Branch.Name
			}
			items := make([]branchItem, 0, len(branches))
			for _, b := range branches {
				items = append(items, branchItem{Name: b.Name, Current: b.Name == current, Head: string(b.Head)})
			}
			if a.jsonOut {
				return writeJSON(a.out(), items)
			}
			t := &table{scripting: a.scripting}
			for _, it := range items {
				if a.scripting {
					t.add(it.Name, it.Head, yesNo(it.Current))
					continue
				}
				mark := "  "
				if it.Current {
					mark = "* "
				}
				t.add(mark + it.Name)
			}
			return t.write(a.out())
		},
	}
	f := c.Flags()
	f.StringVarP(&del, "delete", "d", "", "delete branch `NAME`")
	f.BoolVarP(&move, "move", "m", false, "rename branch OLD (default: the current one) to NEW")
	f.StringVar(&dot, "dot", "", "act on `DOT` instead of the current dot")
	return c
}

// renameBranch is dm branch -m [OLD] NEW.
func (a *app) renameBranch(cmd *cobra.Command, dot, del string, args []string) error {
	if del != "" || len(args) == 0 {
		return kinded(errUsage, fmt.Errorf("usage: dm branch -m [OLD] NEW"))
	}
	oldName, newName := "", args[len(args)-1]
	if len(args) == 2 {
		oldName = args[0]
		if err := validateBranch(oldName); err != nil {
			return err
		}
	}
	if err := validateNewBranch(newName); err != nil {
		return err
	}
	s, name, err := a.connectDot(dot)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	if oldName == "" {
		st, err := s.c.Status(ctx, name)
		if err != nil {
			return s.wrap(err)
		}
		oldName = st.Dot.Current
	}
	b, err := s.c.RenameBranch(ctx, name, oldName, newName)
	if err != nil {
		return s.wrap(err)
	}
	if a.jsonOut {
		return writeJSON(a.out(), b)
	}
	a.info("Renamed branch %s of %s to %s.", oldName, name, b.Name)
	return nil
}

func (a *app) checkoutCmd() *cobra.Command {
	var (
		dot     string
		create  bool
		restart bool
	)
	c := &cobra.Command{
		Use:   "checkout [-b] [--restart] BRANCH",
		Short: "Switch the dot to another branch",
		Long: `Make BRANCH the dot's current branch: from now on, ` + "`dm path`" + ` and the
services using the dot see that branch's working state. With -b, create
the branch first from the current branch's HEAD.

Each branch keeps its own working state, so uncommitted changes stay on
the branch they were made on. The path ` + "`dm path DOT.SUBDOT`" + ` prints is a
stable one: it shows the checked-out branch, so a shell or program that
enters it again after the checkout is on the new branch. One that is
already inside it (a shell that ran cd "$(dm path app.db)" before) stays
in the old branch's directory, as with any directory switched under a
running process: checkout warns, naming such processes of the node's
machine (their working directory or open files), and does not refuse.

Containers (or pods) using the dot without a pinned @branch would see the
switch only when they mount again, so checkout refuses while any run and
names them; --restart stops them, switches, and starts them again on the
new branch.`,
		Example: `  dm checkout -b feature
  dm checkout master`,
		Args: usageArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			branch := args[0]
			check := validateBranch
			if create {
				check = validateNewBranch
			}
			if err := check(branch); err != nil {
				return err
			}
			s, name, err := a.connectDot(dot)
			if err != nil {
				return err
			}
			r, err := withProgress(a, cmd.Context(), "checkout", func(ctx context.Context) (*dotmesh.CheckoutReport, error) {
				return s.c.CheckoutReport(ctx, name, api.CheckoutRequest{Branch: branch, Create: create, Restart: restart})
			})
			if err != nil {
				return s.wrap(checkoutHint(err, branch, create))
			}
			if a.jsonOut {
				return writeJSON(a.out(), r) // holders included
			}
			if create {
				a.info("Switched %s to a new branch %s.", name, branch)
			} else {
				a.info("Switched %s to branch %s.", name, branch)
			}
			if r.Holders = others(r.Holders); len(r.Holders) > 0 {
				fmt.Fprintln(a.io.Stderr, holdersWarning(name, r))
			}
			return nil
		},
	}
	f := c.Flags()
	f.BoolVarP(&create, "create", "b", false, "create the branch first")
	f.BoolVar(&restart, "restart", false, "stop the containers using the dot, switch, and start them again")
	f.StringVar(&dot, "dot", "", "act on `DOT` instead of the current dot")
	return c
}

// others drops this dm process from holders: run from a shell inside the
// tree, it has the shell's working directory.
func others(hs []dotmesh.Holder) []dotmesh.Holder {
	return slices.DeleteFunc(hs, func(h dotmesh.Holder) bool { return h.PID == os.Getpid() })
}

// holdersSubject words up to three holders: "process 12 (sh) has its" or
// "processes 12 (sh), 13 (vi) have their", and "it sees" or "they see".
func holdersSubject(hs []dotmesh.Holder) (subject, sees string) {
	var who []string
	for i, h := range hs {
		if i == 3 {
			who = append(who, fmt.Sprintf("and %d more", len(hs)-i))
			break
		}
		who = append(who, fmt.Sprintf("%d (%s)", h.PID, h.Command))
	}
	if len(hs) == 1 {
		return "process " + who[0] + " has its", "it still sees"
	}
	return "processes " + strings.Join(who, ", ") + " have their", "they still see"
}

// holdersWarning tells that processes still see the previous branch, and
// where to go to see the new one.
func holdersWarning(name dotmesh.DotName, r *dotmesh.CheckoutReport) string {
	where := fmt.Sprintf(`"$(dm path %s)"`, name)
	if sub := r.Holders[0].Subdot; sub != dotmesh.RootSubdot {
		where = fmt.Sprintf(`"$(dm path %s.%s)"`, name, sub)
		if r.Path != "" {
			where = filepath.Join(r.Path, sub)
		}
	} else if r.Path != "" {
		where = r.Path
	}
	subject, sees := holdersSubject(r.Holders)
	return fmt.Sprintf("Warning: %s working directory or open files in the tree of %s@%s, so %s branch %s; cd to %s again (or reopen the files) to see %s.",
		subject, name, r.Previous, sees, r.Previous, where, r.Current)
}

// resetWarning tells that processes were left in a directory the reset
// replaced (zfs, btrfs).
func resetWarning(name dotmesh.DotName, r *dotmesh.ResetReport) string {
	subject, sees := holdersSubject(r.Holders)
	return fmt.Sprintf("Warning: %s working directory in a working tree of %s that the reset replaced, so %s the state before it; cd to the same path again to see %s.",
		subject, name, sees, shortID(string(r.ID)))
}
