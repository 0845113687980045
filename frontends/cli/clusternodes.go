package cli

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func (a *app) clusterNodesCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "nodes",
		Short: "List the nodes of the current remote's cluster",
		Long: `List the running nodes of the cluster the current remote belongs to
(` + "`dm serve --store etcd`" + `): id, whether it is alive, the address the other
nodes reach it at, its version and when it started. The node dm talks to
is marked with *. A node that stopped or died drops off the list once its
registration expires (10s); ` + "`dm dot show`" + ` still names it for the commits and
branches it holds.`,
		Example: `  dm cluster nodes
  dm cluster nodes --json`,
		Args: usageArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := a.connect()
			if err != nil {
				return err
			}
			res, err := s.c.Nodes(cmd.Context())
			if err != nil {
				return s.wrap(err)
			}
			if a.jsonOut {
				return writeJSON(a.out(), res)
			}
			t := &table{scripting: a.scripting, header: []string{"", "NODE", "ALIVE", "ADDRESS", "VERSION", "STARTED"}}
			sort.Slice(res.Nodes, func(i, j int) bool { return res.Nodes[i].ID < res.Nodes[j].ID })
			for _, n := range res.Nodes {
				mark := ""
				if n.ID == res.Node {
					mark = "*"
				}
				t.add(mark, n.ID, "yes", n.Address, n.Version, n.Started.Local().Format(time.DateTime))
			}
			return t.write(a.out())
		},
	}
}

func (a *app) dotTakeOverCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "take-over DOT BRANCH",
		Short: "Move a branch to this node from a node that is not running",
		Long: `Make the node dm talks to the master of BRANCH of DOT (the node with the
branch's working state) when its master is not running any more. The
branch's working state here becomes its last commit: the uncommitted
changes on the dead node are lost. Every commit is kept (the other nodes
hold copies).

When the master is running, just use the branch on this node (commit,
` + "`dm path`" + `, mount it): it moves here with its uncommitted changes.`,
		Example: `  dm dot take-over app master`,
		Args:    usageArgs(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := parseDotName(args[0])
			if err != nil {
				return err
			}
			if err := dotmesh.ValidateName("branch", args[1]); err != nil {
				return err
			}
			s, err := a.connect()
			if err != nil {
				return err
			}
			res, err := s.c.TakeOver(cmd.Context(), name, args[1])
			if err != nil {
				if errors.Is(err, dotmesh.ErrNotSupported) {
					return fmt.Errorf("remote %s is not a cluster node (dm serve --store etcd): %w", s.remoteName, err)
				}
				return s.wrap(err)
			}
			if a.jsonOut {
				return writeJSON(a.out(), res)
			}
			head := "(no commits)"
			if res.Head != "" {
				head = shortID(string(res.Head))
			}
			if res.From == "" {
				a.info("Branch %s of %s now has its working state here, at %s.", args[1], name, head)
				return nil
			}
			fmt.Fprintf(a.io.Stderr, "Warning: the uncommitted changes of %s@%s on node %s are lost.\n", name, args[1], res.From)
			a.info("Took over branch %s of %s from node %s; its working state here is commit %s.", args[1], name, res.From, head)
			return nil
		},
	}
}

// replicationRows describes, per node, what it holds of a dot, and which
// branches it is the master of, for `dm dot show`.
func replicationRows(reps []dotmesh.NodeReplication) (nodes [][2]string, masters string) {
	var ms []string
	for _, r := range reps {
		var parts []string
		if len(r.Lacks) == 0 {
			parts = append(parts, "has all commits")
		} else {
			ids := make([]string, 0, len(r.Lacks))
			for i, id := range r.Lacks {
				if i == 8 {
					ids = append(ids, fmt.Sprintf("... (%d more)", len(r.Lacks)-i))
					break
				}
				ids = append(ids, shortID(string(id)))
			}
			word := "commits"
			if len(r.Lacks) == 1 {
				word = "commit"
			}
			parts = append(parts, fmt.Sprintf("lacks %d %s: %s", len(r.Lacks), word, strings.Join(ids, ", ")))
		}
		if len(r.Masters) > 0 {
			parts = append(parts, "master of "+strings.Join(r.Masters, ", "))
		}
		if !r.Alive {
			parts = append(parts, "not running")
		}
		nodes = append(nodes, [2]string{"node " + r.Node + ":", strings.Join(parts, "; ")})
		for _, b := range r.Masters {
			ms = append(ms, b+" on "+r.Node)
		}
	}
	sort.Strings(ms)
	return nodes, strings.Join(ms, ", ")
}
