package cli

import (
	"bufio"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func (a *app) initCmd() *cobra.Command {
	var backend string
	c := &cobra.Command{
		Use:   "init DOT",
		Short: "Create a dot and make it the current one",
		Long: `Create an empty dot named DOT ([namespace/]name) on the current remote,
with one branch, master, and make it the current dot.

Names are 1 to 64 letters, digits, '_' and '-', and start with a letter
or digit. Its subdots appear when
first used (see ` + "`dm path`" + `).`,
		Example: `  dm init app
  dm init team/app --backend files`,
		Args: usageArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := parseNewDotName(args[0])
			if err != nil {
				return err
			}
			if backend != "" {
				if err := dotmesh.ValidateName("backend", backend); err != nil {
					return err
				}
			}
			s, err := a.connect()
			if err != nil {
				return err
			}
			name, _ = s.dotArg(args[0])
			d, err := s.c.CreateDot(cmd.Context(), name, backend)
			if err != nil {
				return s.wrap(err)
			}
			if err := s.setCurrentDot(name.String()); err != nil {
				return fmt.Errorf("created dot %s, but could not make it current: %w", name, err)
			}
			if a.jsonOut {
				return writeJSON(a.out(), d)
			}
			if a.scripting {
				_, err := fmt.Fprintln(a.out(), d.ID)
				return err
			}
			a.info("Created dot %s (backend %s); it is now the current dot.", name, d.Backend)
			return nil
		},
	}
	c.Flags().StringVar(&backend, "backend", "", "storage `BACKEND` of the dot: files, zfs or btrfs, one the node runs (default: the node's default)")
	return c
}

// listItem is one row of `dm list --json`.
type listItem struct {
	Name    string `json:"name"`
	Current bool   `json:"current"`
	dotmesh.DotStatus
	Head *jsonCommit `json:"head,omitempty"` // hides DotStatus.Head
}

func (a *app) listCmd() *cobra.Command {
	var (
		showLabels bool
		sel        selection
	)
	c := &cobra.Command{
		Use:     "list [REMOTE]",
		Aliases: []string{"ls"},
		Short:   "List the dots on the remote, or in a bucket",
		Long: `List the dots on the current remote, with their current branch, size,
number of commits on that branch, whether they have uncommitted
changes, and, once any dot is in use, who uses them (USED BY: containers
by name where Docker tells, else consumer:mount-id). The current dot is
marked with *. Below the table, a line per unfinished incoming transfer
(see ` + "`dm transfers`" + `).

With -H the fields are tab-separated, sizes are in bytes, and a last field
says whether the dot is the current one (yes/no); who uses a dot is in
` + "`dm dot show -H`" + ` and in --json (mounts).

With REMOTE (or --remote) naming a bucket remote, list what the bucket
holds, read by dm itself: a line per branch of each dot, with its head
commit, the number of commits in its history, the size of the head's
files and the head's time. With REMOTE naming a node, list that node's
dots.

--show-labels adds the dots' labels (a last field with -H); --namespace NS
and --label KEY=VALUE (repeatable; also KEY!=VALUE, KEY, !KEY) list only
the dots they choose, as --all of commit, push, pull, reset and tag would.`,
		Example: `  dm list
  dm list --show-labels --label app=shop
  dm list -H | cut -f1
  dm --remote prod list --json
  dm list backup`,
		Args: usageArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if err := dotmesh.ValidateName("remote", args[0]); err != nil {
					return err
				}
			}
			bname, b, err := a.bucketArg(args)
			if err != nil {
				return err
			}
			if b != nil {
				return a.listBucket(cmd.Context(), bname, b)
			}
			chosen, err := dotmesh.ParseSelector(sel.namespace, sel.labels)
			if err != nil {
				return err
			}
			if len(args) == 1 {
				a.remoteFlag = args[0] // a node remote: its dots
			}
			s, err := a.connect()
			if err != nil {
				return err
			}
			fewerGCs()
			var dots []dotmesh.DotStatus
			var incoming []dotmesh.IncomingTransfer
			switch {
			case a.jsonOut:
				dots, err = s.c.ListDots(cmd.Context())
			case a.scripting: // a table shows no head nor branch names
				dots, err = s.c.ListDotsTable(cmd.Context())
			default: // and for people, the transfers cut off, in one request
				dots, incoming, err = s.c.ListDotsTableIncoming(cmd.Context())
			}
			if err != nil {
				return s.wrap(err)
			}
			current := ""
			if cur, err := dotmesh.ParseDotName(s.remote.CurrentDot); err == nil {
				current = cur.String()
			}
			items := make([]listItem, 0, len(dots))
			for _, st := range dots {
				if st.Dot == nil || !chosen.Matches(st.Dot) {
					continue
				}
				n := st.Dot.DotName().String()
				items = append(items, listItem{Name: n, Current: n == current, DotStatus: st, Head: headJSON(st.Head)})
			}
			if a.jsonOut {
				return writeJSON(a.out(), items)
			}
			t := &table{scripting: a.scripting, header: []string{"  DOT", "BRANCH", "SIZE", "COMMITS", "DIRTY"}}
			// Who uses the dots, once any is used (by a container, a pod).
			used := false
			for _, it := range items {
				used = used || len(it.Mounts) > 0
			}
			if used {
				t.header = append(t.header, "USED BY")
			}
			if showLabels {
				t.header = append(t.header, "LABELS")
			}
			for _, it := range items {
				branch, size, dirty := "", "?", "?"
				if it.Branch != nil {
					branch = it.Branch.Name
				}
				if it.Error == "" {
					size, dirty = a.size(it.Usage.Size), yesNo(it.Usage.Dirty)
				}
				commits := strconv.Itoa(it.Commits)
				var row []string
				if a.scripting {
					row = []string{it.Name, branch, size, commits, dirty, yesNo(it.Current)}
				} else {
					mark := "  "
					if it.Current {
						mark = "* "
					}
					row = []string{mark + it.Name, branch, size, commits, dirty}
					if used {
						row = append(row, usedBy(it.Mounts))
					}
				}
				if showLabels {
					row = append(row, labelList(it.Dot.Labels))
				}
				t.add(row...)
			}
			if err := t.write(a.out()); err != nil || a.scripting {
				return err
			}
			// Transfers cut off hold storage too: say so (not in -H).
			printIncoming(a.out(), incoming)
			return nil
		},
	}
	a.passwordFileFlag(c)
	c.Flags().BoolVar(&showLabels, "show-labels", false, "add a LABELS column: each dot's labels")
	c.Flags().StringVar(&sel.namespace, "namespace", "", "list only the dots of namespace `NS`")
	c.Flags().StringArrayVar(&sel.labels, "label", nil, "list only dots labelled `KEY=VALUE` (KEY!=VALUE, KEY, !KEY); repeatable, all must hold")
	return c
}

func (a *app) switchCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "switch DOT",
		Short: "Make DOT the current dot",
		Long: `Make DOT the current dot of the current remote: the dot that commit, log,
branch, checkout and reset act on when no --dot is given. The dot must
exist. The choice is stored in the client config.`,
		Example: `  dm switch app`,
		Args:    usageArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := parseDotName(args[0])
			if err != nil {
				return err
			}
			s, err := a.connect()
			if err != nil {
				return err
			}
			name, _ = s.dotArg(args[0])
			if _, err := s.c.Status(cmd.Context(), name); err != nil {
				return s.wrap(err)
			}
			if err := s.setCurrentDot(name.String()); err != nil {
				return err
			}
			a.info("Switched to dot %s.", name)
			return nil
		},
	}
}

func (a *app) dotCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "dot",
		Short: "Show, delete, label or share a dot, or take over its branch",
		Long: `Commands that act on a whole dot: show, delete, label, take over a branch's
working state, and share it with other users of a hub (share, unshare,
visibility, sharing).`,
		Args: usageArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	c.AddCommand(a.dotShowCmd(), a.dotDeleteCmd(), a.dotTakeOverCmd(), a.dotLabelCmd(),
		a.dotShareCmd(), a.dotUnshareCmd(), a.dotVisibilityCmd(), a.dotSharingCmd())
	return c
}

// dotShow is `dm dot show --json`.
type dotShow struct {
	dotmesh.DotStatus
	Subdots []string `json:"subdots"`
	// Replication is, in a cluster, what each node holds of the dot.
	Replication []dotmesh.NodeReplication `json:"replication,omitempty"`
	Head        *jsonCommit               `json:"head,omitempty"` // hides DotStatus.Head
}

func (a *app) dotShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show [DOT]",
		Short: "Show the details of a dot",
		Long: `Show a dot's id, backend, current branch, branches, head commit, size,
uncommitted changes and subdots. Without DOT, the current dot.

In a cluster (` + "`dm serve --store etcd`" + `) it also shows, per node, whether the
node has all the dot's commits or which it still lacks (they are copied in
the background), the branches it is the master of (holds the working
state of), and whether it is running; and the master of each branch.`,
		Example: `  dm dot show
  dm dot show app --json`,
		Args: usageArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			explicit := ""
			if len(args) == 1 {
				explicit = args[0]
				if _, err := parseDotName(explicit); err != nil {
					return err
				}
			}
			s, err := a.connect()
			if err != nil {
				return err
			}
			name, err := s.currentDot(explicit)
			if err != nil {
				return err
			}
			st, err := s.c.Status(cmd.Context(), name)
			if err != nil {
				return s.wrap(err)
			}
			branch := ""
			if st.Branch != nil {
				branch = st.Branch.Name
			}
			reps, err := s.c.Replication(cmd.Context(), name)
			if err != nil {
				return s.wrap(err)
			}
			// In a cluster, the working state (size, changes, subdots)
			// is on the branch's master node only.
			elsewhere := ""
			if len(reps) > 0 && st.Branch != nil && st.Branch.Master != "" {
				if ns, err := s.c.Nodes(cmd.Context()); err == nil && ns.Node != st.Branch.Master {
					elsewhere = "(on node " + st.Branch.Master + ")"
				}
			}
			var subdots []string
			if elsewhere == "" {
				if subdots, err = s.c.Subdots(cmd.Context(), name, branch); err != nil {
					return s.wrap(err)
				}
			}
			if a.jsonOut {
				return writeJSON(a.out(), dotShow{DotStatus: *st, Subdots: subdots, Replication: reps, Head: headJSON(st.Head)})
			}
			head := "(no commits)"
			if st.Head != nil {
				head = string(st.Head.ID)
				if !a.scripting {
					head += " " + firstLine(st.Head.Message)
				}
			}
			size, dirty := "?", "?"
			switch {
			case elsewhere != "":
				size, dirty = elsewhere, elsewhere
			case st.Error == "":
				size = a.size(st.Usage.Size)
				dirty = yesNo(st.Usage.Dirty)
				if st.Usage.Dirty && !a.scripting {
					dirty += fmt.Sprintf(" (%s changed)", HumanSize(st.Usage.DirtyBytes))
				}
			}
			t := &table{scripting: a.scripting}
			t.add("Dot:", name.String())
			t.add("ID:", string(st.Dot.ID))
			t.add("Backend:", st.Dot.Backend)
			t.add("Branch:", branch)
			t.add("Branches:", strings.Join(st.Branches, ", "))
			t.add("Head:", head)
			t.add("Commits:", fmt.Sprint(st.Commits))
			t.add("Size:", size)
			t.add("Dirty:", dirty)
			if elsewhere != "" {
				t.add("Subdots:", elsewhere)
			} else {
				t.add("Subdots:", strings.Join(subdots, ", "))
			}
			t.add("Used by:", usedBy(st.Mounts))
			if st.Error != "" {
				t.add("Error:", st.Error)
			}
			if len(reps) > 0 {
				nodes, masters := replicationRows(reps)
				t.add("Masters:", masters)
				for _, n := range nodes {
					t.add(n[0], n[1])
				}
			}
			if a.scripting {
				for _, r := range t.rows {
					r[0] = strings.ToLower(strings.TrimSuffix(r[0], ":"))
				}
			}
			return t.write(a.out())
		},
	}
}

func (a *app) dotDeleteCmd() *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   "delete [-f] DOT",
		Short: "Delete a dot with all its branches and commits",
		Long: `Delete DOT with all its branches, commits and working state. This cannot
be undone.

On a terminal, dm asks you to type the dot's name to confirm. Without a
terminal (in scripts) -f is required.`,
		Example: `  dm dot delete app
  dm dot delete -f app`,
		Args: usageArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := parseDotName(args[0])
			if err != nil {
				return err
			}
			s, err := a.connect()
			if err != nil {
				return err
			}
			name, _ = s.dotArg(args[0])
			// Check it exists first, so nobody confirms the deletion of a
			// typo.
			if _, err := s.c.Status(cmd.Context(), name); err != nil {
				return s.wrap(err)
			}
			if !force {
				if err := a.confirm(name.String()); err != nil {
					return err
				}
			}
			if err := s.c.DeleteDot(cmd.Context(), name); err != nil {
				return s.wrap(err)
			}
			if cur, err := dotmesh.ParseDotName(s.remote.CurrentDot); err == nil && cur == name {
				if err := s.setCurrentDot(""); err != nil {
					return fmt.Errorf("deleted dot %s, but could not clear the current dot: %w", name, err)
				}
			}
			a.info("Deleted dot %s.", name)
			return nil
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "delete without asking")
	return c
}

// confirm asks on the terminal for the dot's name.
func (a *app) confirm(name string) error {
	if _, ok := terminalFd(a.io.Stdin); !ok {
		return kinded(errUsage, fmt.Errorf("refusing to delete dot %s without confirmation: stdin is not a terminal; pass -f to delete it", name))
	}
	fmt.Fprintf(a.io.Stderr, "This deletes dot %s with all its branches and commits. Type its name to confirm: ", name)
	line, err := bufio.NewReader(a.io.Stdin).ReadString('\n')
	if err != nil && line == "" {
		return errors.New("not deleted: no confirmation given")
	}
	if strings.TrimSpace(line) != name {
		return fmt.Errorf("not deleted: %q does not match %s", strings.TrimSpace(line), name)
	}
	return nil
}

func (a *app) pathCmd() *cobra.Command {
	var branch string
	c := &cobra.Command{
		Use:   "path DOT[@BRANCH][.SUBDOT]",
		Short: "Print the host path of a subdot's working directory",
		Long: `Print the host path of the working directory of a subdot, creating the
subdot if it does not exist yet. Services keep their state there.

Without @BRANCH (or --branch) the path is a stable one, DATADIR/dots/
NAMESPACE/DOT/SUBDOT: DATADIR/dots/NAMESPACE/DOT is a symlink to the
working tree of the dot's current branch, which dm checkout switches
atomically. A program that opens or enters the path after a checkout is
on the new branch; one already inside it keeps the directory it entered,
the old branch's (dm checkout warns about such processes), so cd to the
path again. With @BRANCH or --branch, the path is that branch's own
directory, which never changes branch.

Without .SUBDOT, the default subdot (__default__). __root__ is the
branch's whole working tree. Other subdot names starting with '_' are
reserved.`,
		Example: `  cd "$(dm path app.db)"               # follows dm checkout when entered again
  cp -r ./pgdata/. "$(dm path app@feature.db)"
  dm path app.db --branch feature       # the same as app@feature.db`,
		Args: usageArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := parseVolumeName(args[0])
			if err != nil {
				return err
			}
			if branch != "" {
				if err := validateBranch(branch); err != nil {
					return err
				}
				if v.Branch != "" && v.Branch != branch {
					return kinded(errUsage, fmt.Errorf("%s names branch %s and --branch says %s; give the branch once", args[0], v.Branch, branch))
				}
				v.Branch = branch
			}
			s, err := a.connect()
			if err != nil {
				return err
			}
			p, err := s.c.Path(cmd.Context(), v.String())
			if err != nil {
				return s.wrap(err)
			}
			if a.jsonOut {
				return writeJSON(a.out(), map[string]string{"volume": v.String(), "path": p})
			}
			_, err = fmt.Fprintln(a.out(), p)
			return err
		},
	}
	c.Flags().StringVar(&branch, "branch", "", "print `BRANCH`'s own directory, not the stable path")
	return c
}
