package dotmesh

import "context"

// The handles below group what a Node does besides dots, branches,
// commits and transfers, so that Node's own methods stay the verbs most
// programs need. Each is a view of its Node: it holds no state of its
// own, is safe for concurrent use and valid as long as the Node is open.

// Cluster is the node as a member of a cluster: which nodes are alive,
// where each dot's commits are, and moving a branch's master between
// nodes. On a node started without Options.Cluster, Sync and Replication
// have nothing to do and Release and TakeOver return ErrNotSupported.
type Cluster struct{ n *Node }

// Cluster returns the cluster side of the node.
func (n *Node) Cluster() *Cluster { return &Cluster{n: n} }

// Nodes lists the nodes of the cluster that are alive, by id.
func (c *Cluster) Nodes(ctx context.Context) ([]NodeInfo, error) { return c.n.nodes(ctx) }

// Mounts records which consumers (Docker, CSI, flex and other frontends)
// use which subdots on this node, so that a checkout or reset can stop
// and restart them through their MountController and a branch in use
// here is not released to another node.
type Mounts struct{ n *Node }

// Mounts returns the node's mount records.
func (n *Node) Mounts() *Mounts { return &Mounts{n: n} }

// RegisterController adds a controller; one per consumer kind.
func (m *Mounts) RegisterController(c MountController) { m.n.registerMountController(c) }

// Mount resolves a volume name to a subdot path and records that consumer
// uses it under id. Mounting the same consumer and id again returns the
// recorded mount unchanged: a consumer keeps what it first got.
func (m *Mounts) Mount(ctx context.Context, v VolumeName, consumer, id, name string) (*Mount, error) {
	return m.n.mount(ctx, v, consumer, id, name)
}

// Unmount forgets a mount. Forgetting an unknown mount is not an error, so
// consumers can retry.
func (m *Mounts) Unmount(ctx context.Context, dot DotName, consumer, id string) error {
	return m.n.unmount(ctx, dot, consumer, id)
}

// List lists the mounts of a dot, oldest first.
func (m *Mounts) List(ctx context.Context, dot DotName) ([]Mount, error) {
	return m.n.listMounts(ctx, dot)
}

// Sources binds subdots to databases whose backend (a SourceManager) dumps
// them at each commit and restores them at checkout and reset.
type Sources struct{ n *Node }

// Sources returns the node's database sources.
func (n *Node) Sources() *Sources { return &Sources{n: n} }

// Add binds subdot v (on v.Branch, or the current branch) to a database.
// The next commit dumps it.
func (s *Sources) Add(ctx context.Context, v VolumeName, spec SourceSpec) error {
	return s.n.addSource(ctx, v, spec)
}

// Remove unbinds subdot v; the database and its dumps stay.
func (s *Sources) Remove(ctx context.Context, v VolumeName) error { return s.n.removeSource(ctx, v) }

// List lists a branch's sources (the current branch when empty).
func (s *Sources) List(ctx context.Context, name DotName, branch string) ([]Source, error) {
	return s.n.listSources(ctx, name, branch)
}

// Lifecycle runs one of SourceActivate, SourceDeactivate and
// SourceCollectGarbage on subdot v's source.
func (s *Sources) Lifecycle(ctx context.Context, v VolumeName, action string) error {
	return s.n.sourceLifecycle(ctx, v, action)
}

// Incoming lists the unfinished incoming transfers of this node, sorted
// by dot and branch.
func (p *TransferPeer) Incoming(ctx context.Context) ([]IncomingTransfer, error) {
	return p.n.incomingTransfers(ctx)
}

// Abort ends the unfinished incoming transfers into dot name (only the
// one into branch, when branch is not empty): a receive running here is
// canceled, and what arrived is removed as for an expired transfer. Then
// backends that collect garbage sweep, so the storage is freed now.
// ErrNotFound when there is no such transfer.
func (p *TransferPeer) Abort(ctx context.Context, name DotName, branch string) (*AbortResult, error) {
	return p.n.abortIncoming(ctx, name, branch)
}
