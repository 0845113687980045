package dotmesh

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Cluster mode: several nodes share one ClusterStore (etcd). The registry
// of dots, branches and commits is common to all of them; the data is not.
// Each node holds, in its own backends, the data of every commit it has
// replicated (see replicate.go), and every branch has one master node, the
// only one with a writable working state for it. A write on another node
// first moves the branch there (see handover.go).
// Its keys (nodes/, replicas/) are in keys.go.

// ClusterOptions make a Node one of several sharing its Store.
type ClusterOptions struct {
	// NodeID names this node in the cluster; stable across restarts.
	NodeID string
	// Address is the URL other nodes reach this node's API at.
	Address string
	// Peers reaches the other nodes. Required.
	Peers Peers
	// LeaseTTL bounds how long a node that died still counts as alive;
	// zero means 10s.
	LeaseTTL time.Duration
	// SyncInterval is how often replication looks for missing commits
	// besides reacting to registry changes; zero means 30s.
	SyncInterval time.Duration
	// MoveTimeout is how long a branch stays promised to a node that asked
	// for it before another may ask; zero means 2m.
	MoveTimeout time.Duration
	// FetchIdleTimeout cancels a replication fetch from a node that sent
	// nothing for that long; zero means 2m.
	FetchIdleTimeout time.Duration
	// Version is published with the node, for people.
	Version string
}

// NodeInfo is what a node publishes about itself.
type NodeInfo struct {
	ID      string    `json:"id"`
	Address string    `json:"address"`
	Started time.Time `json:"started"`
	Version string    `json:"version,omitempty"`
}

// Peers reaches the other nodes of a cluster; the daemon implements it over
// their HTTP API, authenticated with the cluster's key.
type Peers interface {
	Peer(node NodeInfo) (Peer, error)
}

// NodeProber is an optional Peers capability: Alive reports whether a
// process still answers at a node's address. A node that starts under an
// id registered by a node that does not answer (killed before its lease
// ran out) takes the id over at once; without a NodeProber it waits for
// that lease to expire.
type NodeProber interface {
	Alive(ctx context.Context, node NodeInfo) bool
}

// NodeIDInUseError refuses a node id that a live node holds: two nodes
// under one id would take each other's branches and replicas.
type NodeIDInUseError struct {
	Node NodeInfo // the live node holding the id
}

func (e *NodeIDInUseError) Error() string {
	return fmt.Sprintf("node id %s is held by a live node at %s (started %s)", e.Node.ID, e.Node.Address, e.Node.Started.Format(time.RFC3339))
}

func (e *NodeIDInUseError) Unwrap() error { return ErrInUse }

// Peer is another node as this one sees it: a Transport for commit data,
// and the branch hand-over call.
type Peer interface {
	Transport
	// Release asks the peer, a branch's master, to hand the branch to node
	// to: it commits uncommitted changes and promises the branch to to.
	Release(ctx context.Context, dot DotName, branch, to string) (*ReleaseResult, error)
}

// ReleaseResult is what the old master says when it lets a branch go.
type ReleaseResult struct {
	// Head is the branch's head, which the new master must hold.
	Head CommitID `json:"head,omitempty"`
	// AutoCommit is the commit made of uncommitted changes, if any.
	AutoCommit CommitID `json:"auto_commit,omitempty"`
}

// cluster is the state of a clustered placement.
type cluster struct {
	opts ClusterOptions
	info NodeInfo

	stop chan struct{}
	done sync.WaitGroup
	kick chan struct{} // wakes the replicator

	mu    sync.Mutex
	lease LeaseID
	// passMu makes replication passes one at a time, so that seen is
	// always the registry of the pass before.
	passMu sync.Mutex
	seen   map[BranchRef]bool // branches registered at the last replication pass
}

func (o *ClusterOptions) validate() error {
	if err := ValidateName("node id", o.NodeID); err != nil {
		return err
	}
	if o.Address == "" {
		return fmt.Errorf("%w: cluster node %s needs the address other nodes reach it at", ErrInvalidArgument, o.NodeID)
	}
	if o.Peers == nil {
		return fmt.Errorf("%w: cluster node %s needs Peers to reach the others", ErrInvalidArgument, o.NodeID)
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 10 * time.Second
	}
	if o.SyncInterval <= 0 {
		o.SyncInterval = 30 * time.Second
	}
	if o.MoveTimeout <= 0 {
		o.MoveTimeout = 2 * time.Minute
	}
	if o.FetchIdleTimeout <= 0 {
		o.FetchIdleTimeout = 2 * time.Minute
	}
	return nil
}

// nodeID is this node's name in its cluster; empty on a single node.
func (n *Node) nodeID() string { return n.place.nodeID() }

// NodeID is this node's name in its cluster; empty on a single node.
func (c *Cluster) NodeID() string { return c.n.nodeID() }

// startCluster registers node, brings its replica records in line with
// what its backends hold, and starts the background loops.
func startCluster(ctx context.Context, node *Node, opts ClusterOptions) (*clustered, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	n := &clustered{Node: node, cl: &cluster{
		opts: opts,
		info: NodeInfo{ID: opts.NodeID, Address: opts.Address, Started: node.now().UTC(), Version: opts.Version},
		stop: make(chan struct{}),
		kick: make(chan struct{}, 1),
	}}
	if err := n.register(ctx); err != nil {
		return nil, err
	}
	if err := n.reconcileReplicas(ctx); err != nil {
		return nil, fmt.Errorf("reconciling replica records: %w", err)
	}
	n.cl.done.Add(2)
	go n.heartbeat()
	go n.replicator()
	return n, nil
}

func (n *clustered) nodeID() string { return n.cl.opts.NodeID }

// stop leaves the cluster.
func (n *clustered) stop() {
	close(n.cl.stop)
	n.cl.done.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n.cl.mu.Lock()
	lease := n.cl.lease
	n.cl.mu.Unlock()
	if lease != 0 {
		_ = n.store.Revoke(ctx, lease) // others see us gone at once
	}
}

// register publishes the node under a fresh lease, unless a live node
// holds its id (NodeIDInUseError).
func (n *clustered) register(ctx context.Context) error {
	c := n.cl
	cond, err := n.claimNodeID(ctx)
	if err != nil {
		return err
	}
	lease, err := n.store.Grant(ctx, c.opts.LeaseTTL)
	if err != nil {
		return fmt.Errorf("registering node %s: %w", c.opts.NodeID, err)
	}
	if _, err := n.store.Txn(ctx, []Condition{cond}, []Op{{Key: nodeKey(c.opts.NodeID), Value: encode(c.info), Lease: lease}}); err != nil {
		_ = n.store.Revoke(ctx, lease)
		if errors.Is(err, ErrConflict) {
			return fmt.Errorf("%w: another node registered as %s at the same moment", ErrInUse, c.opts.NodeID)
		}
		return fmt.Errorf("registering node %s: %w", c.opts.NodeID, err)
	}
	c.mu.Lock()
	c.lease = lease
	c.mu.Unlock()
	return nil
}

// claimNodeID returns the condition to register this node's id under:
// absent, or still the registration of a node that no longer answers.
func (n *clustered) claimNodeID(ctx context.Context) (Condition, error) {
	key := nodeKey(n.cl.opts.NodeID)
	prober, _ := n.cl.opts.Peers.(NodeProber)
	deadline := time.Now().Add(n.cl.opts.LeaseTTL + time.Second)
	for {
		kv, err := n.store.Get(ctx, key)
		if errors.Is(err, ErrNotFound) {
			return IfAbsent(key), nil
		}
		if err != nil {
			return Condition{}, fmt.Errorf("registering node %s: %w", n.cl.opts.NodeID, err)
		}
		other, err := decode[NodeInfo](kv)
		if err != nil {
			return Condition{}, err
		}
		if prober != nil {
			if prober.Alive(ctx, *other) {
				return Condition{}, &NodeIDInUseError{Node: *other}
			}
			n.log.WarnContext(ctx, "taking over the registration of a node that does not answer", "node", other.ID, "address", other.Address)
			return IfRevision(key, kv.Revision), nil
		}
		if time.Now().After(deadline) {
			return Condition{}, &NodeIDInUseError{Node: *other}
		}
		select {
		case <-ctx.Done():
			return Condition{}, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// heartbeat keeps the node's lease alive, and registers again when it
// expired (the store was unreachable for longer than the TTL).
func (n *clustered) heartbeat() {
	defer n.cl.done.Done()
	t := time.NewTicker(n.cl.opts.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-n.cl.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), n.cl.opts.LeaseTTL/3)
		n.cl.mu.Lock()
		lease := n.cl.lease
		n.cl.mu.Unlock()
		err := n.store.KeepAlive(ctx, lease)
		if errors.Is(err, ErrNotFound) {
			n.log.Warn("the node's lease expired; registering again", "node", n.cl.opts.NodeID)
			err = n.register(ctx)
			n.kickReplicator()
		}
		if err != nil {
			n.log.Warn("keeping the node registered", "err", err)
		}
		cancel()
	}
}

// nodes is Cluster.Nodes.
func (n *Node) nodes(ctx context.Context) ([]NodeInfo, error) {
	kvs, err := n.store.List(ctx, nodesPrefix)
	if err != nil {
		return nil, err
	}
	out := make([]NodeInfo, 0, len(kvs))
	for _, kv := range kvs {
		ni, err := decode[NodeInfo](kv)
		if err != nil {
			return nil, err
		}
		out = append(out, *ni)
	}
	return out, nil
}

// node returns a live node's info, or ErrUnavailable naming it.
func (n *Node) node(ctx context.Context, id string) (*NodeInfo, error) {
	kv, err := n.store.Get(ctx, nodeKey(id))
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: node %s is not running (its registration expired)", ErrUnavailable, id)
	} else if err != nil {
		return nil, err
	}
	return decode[NodeInfo](kv)
}

func (n *clustered) peer(ctx context.Context, id string) (Peer, error) {
	ni, err := n.node(ctx, id)
	if err != nil {
		return nil, err
	}
	return n.cl.opts.Peers.Peer(*ni)
}

// replicaOps records that this node holds commit c.
func (n *clustered) replicaOps(d DotID, c CommitID) []Op {
	return []Op{PutOp(replicaKey(d, c, n.cl.opts.NodeID), nil)}
}

// holders returns the nodes that hold commit c's data, per the registry.
func (n *Node) holders(ctx context.Context, d DotID, c CommitID) ([]string, error) {
	prefix := replicaCommitPrefix(d, c)
	kvs, err := n.store.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(kvs))
	for _, kv := range kvs {
		out = append(out, strings.TrimPrefix(kv.Key, prefix))
	}
	return out, nil
}

// replicas maps each commit of a dot to the set of nodes holding it.
func (n *Node) replicas(ctx context.Context, d DotID) (map[CommitID]map[string]bool, error) {
	kvs, err := n.store.List(ctx, replicaPrefix(d))
	if err != nil {
		return nil, err
	}
	out := make(map[CommitID]map[string]bool)
	for _, kv := range kvs {
		c, node, ok := strings.Cut(strings.TrimPrefix(kv.Key, replicaPrefix(d)), "/")
		if !ok {
			continue
		}
		if out[CommitID(c)] == nil {
			out[CommitID(c)] = make(map[string]bool)
		}
		out[CommitID(c)][node] = true
	}
	return out, nil
}

// NodeReplication says what one node holds of a dot.
type NodeReplication struct {
	Node  string `json:"node"`
	Alive bool   `json:"alive"`
	// Lacks lists the dot's commits the node does not hold yet, oldest
	// first.
	Lacks []CommitID `json:"lacks,omitempty"`
	// Masters lists the branches whose writable state lives on the node.
	Masters []string `json:"masters,omitempty"`
}

// Replication reports, per node, which commits of a dot it still lacks:
// every node that is alive or holds any commit of the dot.
func (c *Cluster) Replication(ctx context.Context, name DotName) ([]NodeReplication, error) {
	return c.n.place.replication(ctx, name)
}

func (n *clustered) replication(ctx context.Context, name DotName) ([]NodeReplication, error) {
	d, err := n.Dot(ctx, name)
	if err != nil {
		return nil, err
	}
	commits, reps, err := n.replicaState(ctx, d.ID)
	if err != nil {
		return nil, err
	}
	live, err := n.nodes(ctx)
	if err != nil {
		return nil, err
	}
	branches, err := n.reg.branches(ctx, d.ID)
	if err != nil {
		return nil, err
	}
	byNode := make(map[string]*NodeReplication)
	get := func(id string) *NodeReplication {
		if byNode[id] == nil {
			byNode[id] = &NodeReplication{Node: id}
		}
		return byNode[id]
	}
	for _, ni := range live {
		get(ni.ID).Alive = true
	}
	for _, holders := range reps {
		for id := range holders {
			get(id)
		}
	}
	for _, b := range branches {
		if b.Master != "" {
			get(b.Master).Masters = append(get(b.Master).Masters, b.Name)
		}
	}
	ordered := oldestFirst(commits)
	out := make([]NodeReplication, 0, len(byNode))
	for id, r := range byNode {
		for _, c := range ordered {
			if !reps[c.ID][id] {
				r.Lacks = append(r.Lacks, c.ID)
			}
		}
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out, nil
}

// oldestFirst orders commits so that every parent comes before its
// children (by time, then id, which parents never exceed in practice;
// the replicator relies on parents first, so it is checked).
func oldestFirst(commits map[CommitID]*Commit) []*Commit {
	out := make([]*Commit, 0, len(commits))
	for _, c := range commits {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.Before(out[j].Time)
		}
		return out[i].ID < out[j].ID
	})
	// Clock skew between nodes can put a child first: a stable pass that
	// moves each commit after its parent fixes that.
	placed := make(map[CommitID]bool, len(out))
	res := make([]*Commit, 0, len(out))
	var place func(c *Commit)
	place = func(c *Commit) {
		if placed[c.ID] {
			return
		}
		placed[c.ID] = true
		if p, ok := commits[c.Parent]; ok {
			place(p)
		}
		res = append(res, c)
	}
	for _, c := range out {
		place(c)
	}
	return res
}
