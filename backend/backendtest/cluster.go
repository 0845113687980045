package backendtest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// RunCluster runs cluster-mode scenarios on a backend: nodes in one
// process share a bbolt store and reach each other directly, each with
// its own backend from open (node names the node, for backends that need
// distinct pools). Replication, branch moves with uncommitted changes, a
// move race, take-over from a stopped node, and deletes all go through
// the backend's own Send and Receive.
//
// nodes is how many nodes a scenario may run at once: 3, or 2 for storage
// that cannot serve two replication streams at once (zfs-fuse deadlocks
// when one node sends to two others concurrently).
func RunCluster(t *testing.T, nodes int, open func(t *testing.T, node string) dotmesh.StorageBackend) {
	if nodes < 2 || nodes > 3 {
		t.Fatalf("RunCluster: nodes must be 2 or 3, not %d", nodes)
	}
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, int, func(*testing.T, string) dotmesh.StorageBackend)
	}{
		{"ReplicatesAndMovesBranches", clusterReplicatesAndMovesBranches},
		{"MoveRace", clusterMoveRace},
		{"TakeOverFromStoppedNode", clusterTakeOverFromDeadNode},
		{"RefusesMoveWhileMounted", clusterRefusesMoveWhileMounted},
		{"ResetPrunesReplicas", clusterResetPrunesReplicas},
		{"DeleteDotEverywhere", clusterDeleteDotEverywhere},
		{"DeleteBranchEverywhere", clusterDeleteBranchEverywhere},
		{"RenamedBranchMoves", clusterRenamedBranchMoves},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, nodes, open) })
	}
}

var app = dotmesh.DotName{Namespace: dotmesh.DefaultNamespace, Name: "app"}

// sharedStore lets several in-process nodes use one store: each node
// closes its store on Close, the test closes the real one once.
type sharedStore struct{ dotmesh.ClusterStore }

func (sharedStore) Close() error { return nil }

// inProcPeers reaches nodes of the same test process directly.
type inProcPeers struct {
	mu    sync.Mutex
	nodes map[string]*dotmesh.Node
}

func (p *inProcPeers) Peer(ni dotmesh.NodeInfo) (dotmesh.Peer, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n, ok := p.nodes[ni.ID]
	if !ok {
		return nil, errors.New("no such node in this process: " + ni.ID)
	}
	return inProcPeer{dotmesh.LocalTransport(n).(dotmesh.ObjectTransport), n}, nil
}

// inProcPeer offers object have/want like the HTTP peer does, so dump
// replication is tested with it.
type inProcPeer struct {
	dotmesh.ObjectTransport
	n *dotmesh.Node
}

func (p inProcPeer) Release(ctx context.Context, dot dotmesh.DotName, branch, to string) (*dotmesh.ReleaseResult, error) {
	return p.n.Cluster().Release(ctx, dot, branch, to)
}

// clusterEnv is several in-process nodes sharing one bbolt store, each
// with a backend of its own made by open.
type clusterEnv struct {
	t     *testing.T
	open  func(t *testing.T, node string) dotmesh.StorageBackend
	store dotmesh.ClusterStore
	peers *inProcPeers
	bes   map[string]dotmesh.StorageBackend
}

func newClusterEnv(t *testing.T, open func(t *testing.T, node string) dotmesh.StorageBackend) *clusterEnv {
	st, err := bboltstore.Open(filepath.Join(t.TempDir(), "registry.db"), bboltstore.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	return &clusterEnv{t: t, open: open, store: st, peers: &inProcPeers{nodes: map[string]*dotmesh.Node{}}, bes: map[string]dotmesh.StorageBackend{}}
}

// start starts node id, again on the same backend after a stop.
func (c *clusterEnv) start(id string) *dotmesh.Node {
	t := c.t
	be := c.bes[id]
	if be == nil {
		be = c.open(t, id)
		c.bes[id] = be
		t.Cleanup(func() { be.Close() })
	}
	n, err := dotmesh.NewNode(context.Background(), dotmesh.Options{
		Store: sharedStore{c.store}, Backends: []dotmesh.StorageBackend{reopened{be}},
		Cluster: &dotmesh.ClusterOptions{NodeID: id, Address: "inproc://" + id, Peers: c.peers,
			LeaseTTL: 3 * time.Second, SyncInterval: 200 * time.Millisecond, MoveTimeout: 5 * time.Second},
	})
	require.NoError(t, err)
	c.peers.mu.Lock()
	c.peers.nodes[id] = n
	c.peers.mu.Unlock()
	t.Cleanup(func() { n.Close() })
	return n
}

// reopened keeps a node's Close from closing its backend, so a stopped
// node can start again on the same storage; the test closes it at the end.
type reopened struct{ dotmesh.StorageBackend }

func (reopened) Close() error { return nil }

func writeFile(t *testing.T, n *dotmesh.Node, vol, file, content string) {
	v, err := dotmesh.ParseVolumeName(vol)
	require.NoError(t, err)
	dir, err := n.SubdotPath(context.Background(), v)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, file), []byte(content), 0o644))
}

func readFile(t *testing.T, n *dotmesh.Node, vol, file string) string {
	v, err := dotmesh.ParseVolumeName(vol)
	require.NoError(t, err)
	dir, err := n.SubdotPath(context.Background(), v)
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(dir, file))
	require.NoError(t, err)
	return string(b)
}

// seedDot creates app on n with one commit of file f, and waits until
// every node holds it.
func seedDot(t *testing.T, n *dotmesh.Node, content string) *dotmesh.Commit {
	ctx := context.Background()
	_, err := n.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	writeFile(t, n, "app", "f", content)
	c, err := n.Commit(ctx, app, "", dotmesh.CommitOptions{AllowEmpty: true, Message: "one"})
	require.NoError(t, err)
	waitReplicated(t, n, app)
	return c
}

// waitReplicated waits until every live node holds every commit of dot.
func waitReplicated(t *testing.T, n *dotmesh.Node, dot dotmesh.DotName) []dotmesh.NodeReplication {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		reps, err := n.Cluster().Replication(context.Background(), dot)
		require.NoError(t, err)
		done := true
		for _, r := range reps {
			if r.Alive && len(r.Lacks) > 0 {
				done = false
			}
		}
		if done {
			return reps
		}
		if time.Now().After(deadline) {
			t.Fatalf("commits of %s did not reach every node: %+v", dot, reps)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func clusterReplicatesAndMovesBranches(t *testing.T, nodes int, open func(t *testing.T, node string) dotmesh.StorageBackend) {
	ctx := context.Background()
	c := newClusterEnv(t, open)
	n1, n2 := c.start("n1"), c.start("n2")
	n3 := n1 // the third node, where there is one
	if nodes == 3 {
		n3 = c.start("n3")
	}

	_, err := n1.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	for _, n := range []*dotmesh.Node{n2, n3} {
		_, err := n.Dot(ctx, app)
		require.NoError(t, err, "a dot created on n1 is known everywhere")
	}
	writeFile(t, n1, "app", "f", "v1")
	c1, err := n1.Commit(ctx, app, "", dotmesh.CommitOptions{AllowEmpty: true, Message: "one"})
	require.NoError(t, err)
	reps := waitReplicated(t, n1, app)
	require.Len(t, reps, nodes)
	for _, r := range reps {
		if r.Node == "n1" {
			require.Equal(t, []string{dotmesh.DefaultBranch}, r.Masters)
		}
	}

	// Uncommitted changes on n1 move with the branch to n2.
	writeFile(t, n1, "app", "f", "v2 uncommitted")
	require.Equal(t, "v2 uncommitted", readFile(t, n2, "app", "f"))
	log, err := n2.Log(ctx, app, "", 0)
	require.NoError(t, err)
	require.Len(t, log, 2)
	require.Equal(t, "Automatic commit while moving from n1 to n2", log[0].Message)
	require.Equal(t, c1.ID, log[1].ID)
	b, err := n2.Branches(ctx, app)
	require.NoError(t, err)
	require.Equal(t, "n2", b[0].Master)

	// n1 can no longer write without taking the branch back.
	c2, err := n2.Commit(ctx, app, "", dotmesh.CommitOptions{AllowEmpty: true, Message: "two on n2"})
	require.NoError(t, err)
	waitReplicated(t, n2, app)
	got, err := n3.ResolveRef(ctx, app, "", "HEAD")
	require.NoError(t, err)
	require.Equal(t, c2.ID, got.ID)

	// Back to n1: the working state there is the head, not its old files.
	require.Equal(t, "v2 uncommitted", readFile(t, n1, "app", "f"))
}

func clusterMoveRace(t *testing.T, nodes int, open func(t *testing.T, node string) dotmesh.StorageBackend) {
	ctx := context.Background()
	c := newClusterEnv(t, open)
	n1, n2 := c.start("n1"), c.start("n2")
	// Two nodes move the branch away from n1 at once; with two nodes, n2
	// moves it while n1 itself writes.
	racers, names := []*dotmesh.Node{n1, n2}, []string{"n1", "n2"}
	if nodes == 3 {
		racers, names = []*dotmesh.Node{n2, c.start("n3")}, []string{"n2", "n3"}
	}
	seedDot(t, n1, "v1")
	var err error

	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, n := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = n.Commit(ctx, app, "", dotmesh.CommitOptions{AllowEmpty: true, Message: "race"})
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		if err == nil {
			won++
		} else {
			require.ErrorIs(t, err, dotmesh.ErrConflict)
			require.Contains(t, err.Error(), "moved to node")
		}
	}
	// Both may win one after the other (the loser's acquire can come after
	// the winner finished); never both at once, and never neither.
	require.GreaterOrEqual(t, won, 1)
	bs, err := n1.Branches(ctx, app)
	require.NoError(t, err)
	require.Contains(t, names, bs[0].Master)
	require.Empty(t, bs[0].Moving)
}

func clusterTakeOverFromDeadNode(t *testing.T, nodes int, open func(t *testing.T, node string) dotmesh.StorageBackend) {
	ctx := context.Background()
	c := newClusterEnv(t, open)
	n1, n2 := c.start("n1"), c.start("n2")
	c1 := seedDot(t, n1, "committed")
	var err error
	writeFile(t, n1, "app", "f", "lost")
	require.NoError(t, n1.Close()) // n1 leaves; its lease is revoked

	_, err = n2.Commit(ctx, app, "", dotmesh.CommitOptions{AllowEmpty: true, Message: "x"})
	require.ErrorIs(t, err, dotmesh.ErrUnavailable)
	require.Contains(t, err.Error(), "take-over")
	var md *dotmesh.MasterDownError
	require.ErrorAs(t, err, &md)
	require.Equal(t, dotmesh.MasterDownError{Dot: app, Branch: "master", Node: "n1"}, *md)

	res, err := n2.Cluster().TakeOver(ctx, app, "")
	require.NoError(t, err)
	require.Equal(t, "n1", res.From)
	require.Equal(t, c1.ID, res.Head)
	require.Equal(t, "committed", readFile(t, n2, "app", "f"))
	_, err = n2.Commit(ctx, app, "", dotmesh.CommitOptions{AllowEmpty: true, Message: "after take-over"})
	require.NoError(t, err)

	// n1 comes back and catches up.
	n1 = c.start("n1")
	waitReplicated(t, n2, app)
	require.Equal(t, "committed", readFile(t, n1, "app", "f"))
}

func clusterRefusesMoveWhileMounted(t *testing.T, nodes int, open func(t *testing.T, node string) dotmesh.StorageBackend) {
	ctx := context.Background()
	c := newClusterEnv(t, open)
	n1, n2 := c.start("n1"), c.start("n2")
	_, err := n1.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	v, err := dotmesh.ParseVolumeName("app")
	require.NoError(t, err)
	_, err = n1.Mounts().Mount(ctx, v, "docker", "m1", "web")
	require.NoError(t, err)
	_, err = n2.Commit(ctx, app, "", dotmesh.CommitOptions{AllowEmpty: true, Message: "x"})
	require.ErrorIs(t, err, dotmesh.ErrInUse)
	require.Contains(t, err.Error(), "docker web")
	bs, err := n1.Branches(ctx, app)
	require.NoError(t, err)
	require.Equal(t, "n1", bs[0].Master)
	require.Empty(t, bs[0].Moving)
}

func clusterResetPrunesReplicas(t *testing.T, nodes int, open func(t *testing.T, node string) dotmesh.StorageBackend) {
	ctx := context.Background()
	c := newClusterEnv(t, open)
	n1, n2 := c.start("n1"), c.start("n2")
	_, err := n1.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	writeFile(t, n1, "app", "f", "1")
	c1, err := n1.Commit(ctx, app, "", dotmesh.CommitOptions{AllowEmpty: true, Message: "one"})
	require.NoError(t, err)
	writeFile(t, n1, "app", "f", "2")
	_, err = n1.Commit(ctx, app, "", dotmesh.CommitOptions{AllowEmpty: true, Message: "two"})
	require.NoError(t, err)
	waitReplicated(t, n1, app)
	_, err = n1.Reset(ctx, app, "", string(c1.ID), dotmesh.ResetOptions{Hard: true})
	require.NoError(t, err)
	deadline := time.Now().Add(10 * time.Second)
	for {
		reps, err := n1.Cluster().Replication(ctx, app)
		require.NoError(t, err)
		if len(reps) == 2 && len(reps[0].Lacks) == 0 && len(reps[1].Lacks) == 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "replicas: %+v", reps)
		time.Sleep(50 * time.Millisecond)
	}
	require.NoError(t, n2.Cluster().Sync(ctx))
	// n2 holds exactly the one commit left.
	st, err := n2.Status(ctx, app)
	require.NoError(t, err)
	require.Equal(t, 1, st.Commits)
	require.True(t, strings.HasPrefix(string(st.Head.ID), string(c1.ID)))
}

func clusterDeleteDotEverywhere(t *testing.T, nodes int, open func(t *testing.T, node string) dotmesh.StorageBackend) {
	ctx := context.Background()
	c := newClusterEnv(t, open)
	n1, n2 := c.start("n1"), c.start("n2")
	seedDot(t, n1, "1")
	var err error
	require.NoError(t, n2.Cluster().Sync(ctx)) // n2 has seen the dot registered
	refs, err := c.bes["n2"].Branches(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, refs)

	require.NoError(t, n1.DeleteDot(ctx, app))
	require.NoError(t, n2.Cluster().Sync(ctx))
	refs, err = c.bes["n2"].Branches(ctx)
	require.NoError(t, err)
	require.Empty(t, refs)
	kvs, err := c.store.List(ctx, "replicas/")
	require.NoError(t, err)
	require.Empty(t, kvs)
}

// A branch deleted on a node that is not its master leaves no storage on
// the master (its working state) once the master has synced.
func clusterDeleteBranchEverywhere(t *testing.T, nodes int, open func(t *testing.T, node string) dotmesh.StorageBackend) {
	ctx := context.Background()
	c := newClusterEnv(t, open)
	n1, n2 := c.start("n1"), c.start("n2")
	seedDot(t, n1, "1")
	_, err := n1.CreateBranch(ctx, app, "feature", "")
	require.NoError(t, err)
	writeFile(t, n2, "app@feature", "f", "2") // the branch moves to n2
	_, err = n2.Commit(ctx, app, "feature", dotmesh.CommitOptions{AllowEmpty: true, Message: "two"})
	require.NoError(t, err)
	waitReplicated(t, n2, app)
	require.NoError(t, n2.Cluster().Sync(ctx)) // n2 has seen the branch registered
	holds := func(node string) bool {
		refs, err := c.bes[node].Branches(ctx)
		require.NoError(t, err)
		for _, r := range refs {
			if r.Branch == "feature" {
				return true
			}
		}
		return false
	}
	require.True(t, holds("n2"))

	require.NoError(t, n1.DeleteBranch(ctx, app, "feature"))
	require.False(t, holds("n1"))
	require.NoError(t, n2.Cluster().Sync(ctx))
	require.False(t, holds("n2"), "the master keeps the storage of a branch deleted on another node")
	require.Equal(t, "1", readFile(t, n1, "app", "f"))
}
