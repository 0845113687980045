package dotmesh

import (
	"context"
	"fmt"
)

// placement is where a node's branches are written and its commits' data
// lives: all here on a single node (standalone), or spread over the nodes
// of a cluster (clustered, see cluster.go, handover.go, replicate.go).
// NewNode chooses one; the engine calls it and never tests for cluster
// mode.
type placement interface {
	// nodeID is this node's id in its cluster; "" on a single node.
	nodeID() string
	// local reports whether b's working state is on this node.
	local(b *Branch) bool
	// acquire makes this node the master of a branch before a write.
	acquire(ctx context.Context, d *Dot, branch string) error
	// checkMaster refuses a write, under the dot lock, to a branch that
	// moved away or is being handed over.
	checkMaster(d *Dot, b *Branch) error
	// prefetch fetches the commit ref names on branch before the dot lock
	// is taken (fetching takes it too).
	prefetch(ctx context.Context, d *Dot, branch, ref string) error
	// ensureHeld fetches commit id and the ancestors this node lacks;
	// ensureHeldLocked, under the dot lock, only checks it is here.
	ensureHeld(ctx context.Context, d *Dot, id CommitID) error
	ensureHeldLocked(ctx context.Context, d *Dot, id CommitID) error
	// replicaOps are the registry writes that record this node holds c.
	replicaOps(d DotID, c CommitID) []Op
	// replicaKeys lists the replica records under prefix, for removal
	// with the commits they describe (best effort: nil on error).
	replicaKeys(ctx context.Context, prefix string) []string
	sync(ctx context.Context) error
	replication(ctx context.Context, name DotName) ([]NodeReplication, error)
	release(ctx context.Context, name DotName, branch, to string) (*ReleaseResult, error)
	takeOver(ctx context.Context, name DotName, branch string) (*TakeOverResult, error)
	// stop leaves the cluster; the node is closing.
	stop()
}

// standalone is a single node: every branch is written here and every
// commit's data is here, so there is nothing to move, fetch or record.
type standalone struct{}

// clustered is a node of a cluster; its methods are in cluster.go,
// handover.go, replicate.go, branches.go (prefetch) and commits.go
// (checkMaster).
type clustered struct {
	*Node
	cl *cluster
}

var (
	_ placement = standalone{}
	_ placement = (*clustered)(nil)
)

func errNotClustered() error {
	return fmt.Errorf("%w: this node is not part of a cluster", ErrNotSupported)
}

func (standalone) nodeID() string                                                  { return "" }
func (standalone) local(*Branch) bool                                              { return true }
func (standalone) acquire(context.Context, *Dot, string) error                     { return nil }
func (standalone) checkMaster(*Dot, *Branch) error                                 { return nil }
func (standalone) prefetch(context.Context, *Dot, string, string) error            { return nil }
func (standalone) ensureHeld(context.Context, *Dot, CommitID) error                { return nil }
func (standalone) ensureHeldLocked(context.Context, *Dot, CommitID) error          { return nil }
func (standalone) replicaOps(DotID, CommitID) []Op                                 { return nil }
func (standalone) replicaKeys(context.Context, string) []string                    { return nil }
func (standalone) sync(context.Context) error                                      { return nil }
func (standalone) replication(context.Context, DotName) ([]NodeReplication, error) { return nil, nil }
func (standalone) release(context.Context, DotName, string, string) (*ReleaseResult, error) {
	return nil, errNotClustered()
}
func (standalone) takeOver(context.Context, DotName, string) (*TakeOverResult, error) {
	return nil, errNotClustered()
}
func (standalone) stop() {}

func (n *clustered) local(b *Branch) bool { return b.Master == n.cl.opts.NodeID }

func (n *clustered) replicaKeys(ctx context.Context, prefix string) []string {
	kvs, err := n.store.List(ctx, prefix)
	if err != nil {
		return nil
	}
	keys := make([]string, 0, len(kvs))
	for _, kv := range kvs {
		keys = append(keys, kv.Key)
	}
	return keys
}
