package dotmesh_test

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/backend/backendtest"
	"github.com/dotmesh-io/dotmesh/backend/dump"
	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Cluster mode on the files backend; backend/zfs and backend/btrfs run the
// same scenarios on their storage.
func TestCluster(t *testing.T) {
	backendtest.RunCluster(t, 3, func(t *testing.T, _ string) dotmesh.StorageBackend {
		be, err := dump.Open(filepath.Join(t.TempDir(), "dump"), dump.Options{})
		require.NoError(t, err)
		return be
	})
}

type noClose struct{ dotmesh.ClusterStore }

func (noClose) Close() error { return nil }

// stallPeers reaches in-process nodes; the first commit stream it hands
// out sends nothing until its context ends.
type stallPeers struct {
	mu      sync.Mutex
	nodes   map[string]*dotmesh.Node
	stalled atomic.Int32
	freed   chan time.Duration
}

type stallPeer struct {
	dotmesh.Transport
	n *dotmesh.Node
	p *stallPeers
}

func (p *stallPeers) Peer(ni dotmesh.NodeInfo) (dotmesh.Peer, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n, ok := p.nodes[ni.ID]
	if !ok {
		return nil, errors.New("unknown node " + ni.ID)
	}
	return stallPeer{dotmesh.LocalTransport(n), n, p}, nil
}

func (s stallPeer) Release(ctx context.Context, dot dotmesh.DotName, branch, to string) (*dotmesh.ReleaseResult, error) {
	return s.n.Cluster().Release(ctx, dot, branch, to)
}

func (s stallPeer) FetchCommit(ctx context.Context, dot dotmesh.DotName, id dotmesh.CommitID, base *dotmesh.CommitID, format string) (io.ReadCloser, error) {
	if s.p.stalled.Add(1) == 1 {
		start := time.Now()
		return io.NopCloser(readerFunc(func([]byte) (int, error) {
			<-ctx.Done()
			s.p.freed <- time.Since(start)
			return 0, ctx.Err()
		})), nil
	}
	return s.Transport.FetchCommit(ctx, dot, id, base, format)
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// A node that stops sending mid-stream does not stall replication: the
// fetch is cancelled after FetchIdleTimeout and retried.
func TestClusterFetchStallIsCancelled(t *testing.T) {
	ctx := context.Background()
	st, err := bboltstore.Open(filepath.Join(t.TempDir(), "registry.db"), bboltstore.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	peers := &stallPeers{nodes: map[string]*dotmesh.Node{}, freed: make(chan time.Duration, 1)}
	start := func(id string) *dotmesh.Node {
		be, err := dump.Open(filepath.Join(t.TempDir(), "dump"), dump.Options{})
		require.NoError(t, err)
		n, err := dotmesh.NewNode(ctx, dotmesh.Options{Store: noClose{st}, Backends: []dotmesh.StorageBackend{be},
			Cluster: &dotmesh.ClusterOptions{NodeID: id, Address: "inproc://" + id, Peers: peers,
				SyncInterval: time.Hour, FetchIdleTimeout: 300 * time.Millisecond}})
		require.NoError(t, err)
		peers.mu.Lock()
		peers.nodes[id] = n
		peers.mu.Unlock()
		t.Cleanup(func() { n.Close() })
		return n
	}
	n1, n2 := start("n1"), start("n2")
	_, err = n1.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	c, err := n1.Commit(ctx, app, "", dotmesh.CommitOptions{AllowEmpty: true, Message: "one"})
	require.NoError(t, err)

	select {
	case took := <-peers.freed:
		require.Less(t, took, 5*time.Second, "the stalled fetch was cancelled late")
	case <-time.After(10 * time.Second):
		t.Fatal("the stalled fetch was never cancelled")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		reps, err := n2.Cluster().Replication(ctx, app)
		require.NoError(t, err)
		done := false
		for _, r := range reps {
			if r.Node == "n2" && len(r.Lacks) == 0 {
				done = true
			}
		}
		if done {
			break
		}
		require.True(t, time.Now().Before(deadline), "n2 never got commit %s after the stall: %+v", c.ID, reps)
		time.Sleep(50 * time.Millisecond)
	}
}
