package cli

// --all-nodes: gc and verify on every node of the current remote's
// cluster. dm asks the node it talks to for the cluster's nodes (as
// `dm cluster nodes`) and calls each at the address it registered, with
// the remote's user, key and CA (a cluster's nodes share users and keys),
// one after another, reporting per node.

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/spf13/cobra"

	"github.com/dotmesh-io/dotmesh/client"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// allNodesHelp is the paragraph gc and verify add to their --help.
const allNodesHelp = `

With --all-nodes, run on every node of the current remote's cluster
(` + "`dm cluster nodes`" + ` lists them), one after another, at the address each
registered, and report per node (--json: an array). A node that cannot be
reached is reported as unreachable; dm then exits with the status of the
first failure's kind (7 for an unreachable node).`

// forEachNode runs do with a client for each node of the cluster.
func (a *app) forEachNode(cmd *cobra.Command, do func(ctx context.Context, c *client.Client, r *itemResult) error) error {
	s, err := a.connect()
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	res, err := s.c.Nodes(ctx)
	if err != nil {
		return s.wrap(err)
	}
	if res.Node == "" {
		return kinded(dotmesh.ErrNotSupported, fmt.Errorf("remote %s is not a cluster node (dm serve --store etcd); --all-nodes needs one, or leave it out", s.remoteName))
	}
	sort.Slice(res.Nodes, func(i, j int) bool { return res.Nodes[i].ID < res.Nodes[j].ID })
	for _, n := range res.Nodes {
		if n.ID != res.Node && needsTLS(n.Address, s.remote.CACert) {
			return a.tlsClient() // before any node is acted on
		}
	}
	rp := &report{a: a, noun: "node"}
	for _, n := range res.Nodes {
		r := itemResult{Node: n.ID, Address: n.Address, Status: statusDone}
		c, err := s.c, error(nil)
		if n.ID != res.Node { // the node dm talks to: through the remote's own address
			c, err = newNodeClient(n.Address, s.remote, a.timeouts.options())
		}
		if err == nil {
			err = do(ctx, c, &r)
		}
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return errInterrupted
			}
			r.fail(wrapRemoteErr(err, "node "+n.ID, n.Address))
		}
		rp.add(r)
	}
	return rp.finish()
}

// newNodeClient is a client for a node's registered address (a URL) with
// the credentials and CA of the remote r.
func newNodeClient(url string, r *Remote, opts []client.Option) (*client.Client, error) {
	if r.CACert != "" {
		opts = append(opts, client.WithCACert([]byte(r.CACert)))
	}
	return client.New(url, r.User, r.APIKey, opts...)
}

// gcAllNodes is `dm gc [DOT] --all-nodes`.
func (a *app) gcAllNodes(cmd *cobra.Command, dot *dotmesh.DotName, keep int, dryRun bool) error {
	return a.forEachNode(cmd, func(ctx context.Context, c *client.Client, r *itemResult) error {
		res, err := c.GC(ctx, dot, keep, dryRun)
		if err != nil {
			return err
		}
		verb, freed := "removed", "freed"
		if res.DryRun {
			verb, freed = "would remove", "would free"
		}
		r.Result = res
		r.Detail = fmt.Sprintf("%s %d commits and %d chunks; %s %s", verb, len(res.Removed), res.Stats.ObjectsRemoved, freed, HumanSize(res.Stats.BytesRemoved))
		return nil
	})
}

// verifyAllNodes is `dm verify [DOT] --all-nodes`; damage on a node is
// that node's failure, of kind corrupt.
func (a *app) verifyAllNodes(cmd *cobra.Command, dot *dotmesh.DotName) error {
	return a.forEachNode(cmd, func(ctx context.Context, c *client.Client, r *itemResult) error {
		res, err := c.Verify(ctx, dot)
		if err != nil {
			return err
		}
		r.Result = res
		var chunks, bytes int64
		var damaged, problems int
		for _, rep := range res.Backends {
			chunks += rep.Objects
			bytes += rep.Bytes
			damaged += len(rep.Damaged)
			problems += len(rep.Problems)
		}
		r.Detail = fmt.Sprintf("%d chunks, %s checked; %d damaged, %d other problems", chunks, HumanSize(bytes), damaged, problems)
		if !res.OK() {
			return kinded(dotmesh.ErrCorrupt, fmt.Errorf("%s (`dm --remote REMOTE verify` on that node lists them)", r.Detail))
		}
		return nil
	})
}

// errNotForBucket refuses a node flag given with a bucket remote.
func errNotForBucket(flag string) error {
	return kinded(dotmesh.ErrInvalidArgument, errors.New(flag+" is for a cluster's nodes; a bucket remote has none"))
}
