package client

import (
	"context"
	"fmt"
	"sync"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// A Client is also a dotmesh.Peer: the Transport of transfer.go plus the
// branch hand-over.
var _ dotmesh.Peer = (*Client)(nil)

// Release implements dotmesh.Peer: it asks the node, the master of the
// branch, to hand it over to node to. Only the admin key may.
func (c *Client) Release(ctx context.Context, dot dotmesh.DotName, branch, to string) (*dotmesh.ReleaseResult, error) {
	p, err := c.dotPath(dot, "branches", branch, "release")
	if err != nil {
		return nil, err
	}
	var res dotmesh.ReleaseResult
	if err := c.do(ctx, methodPost, p, nil, api.ReleaseRequest{To: to}, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// TakeOver makes the node the master of a branch whose master is not
// running; that node's uncommitted changes are lost.
func (c *Client) TakeOver(ctx context.Context, dot dotmesh.DotName, branch string) (*dotmesh.TakeOverResult, error) {
	p, err := c.dotPath(dot, "branches", branch, "take-over")
	if err != nil {
		return nil, err
	}
	var res dotmesh.TakeOverResult
	if err := c.do(ctx, methodPost, p, nil, api.TakeOverRequest{}, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// Nodes lists the running nodes of the node's cluster.
func (c *Client) Nodes(ctx context.Context) (*api.NodesResponse, error) {
	var res api.NodesResponse
	if err := c.do(ctx, methodGet, "/v1/cluster/nodes", nil, nil, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// Replication says, per node, which commits of a dot it lacks and which
// branches it is the master of; empty outside a cluster.
func (c *Client) Replication(ctx context.Context, dot dotmesh.DotName) ([]dotmesh.NodeReplication, error) {
	p, err := c.dotPath(dot, "replication")
	if err != nil {
		return nil, err
	}
	var out []dotmesh.NodeReplication
	if err := c.do(ctx, methodGet, p, nil, nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Peers implements dotmesh.Peers over the nodes' HTTP API, authenticated
// with the cluster's admin key (every node of a cluster shares it).
type Peers struct {
	key  string
	opts []Option

	mu      sync.Mutex
	clients map[string]*Client // by address
}

var _ dotmesh.Peers = (*Peers)(nil)

// NewPeers returns the peers of a node whose cluster key is key. opts
// apply to every peer's client: WithCACert for nodes that serve HTTPS
// with certificates of a private CA.
func NewPeers(key string, opts ...Option) (*Peers, error) {
	if key == "" {
		return nil, fmt.Errorf("%w: no cluster key to reach the other nodes with", dotmesh.ErrUnauthorized)
	}
	return &Peers{key: key, opts: opts, clients: make(map[string]*Client)}, nil
}

// Peer implements dotmesh.Peers: a client of node's address, reused for
// later calls (its connections stay open).
func (p *Peers) Peer(node dotmesh.NodeInfo) (dotmesh.Peer, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[node.Address]; ok {
		return c, nil
	}
	c, err := New(node.Address, api.AdminUser, p.key, p.opts...)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", node.ID, err)
	}
	p.clients[node.Address] = c
	return c, nil
}
