package dotmesh_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/backend/dump"
	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// inprocPeers reaches in-process nodes sharing one registry.
type inprocPeers struct {
	mu    sync.Mutex
	nodes map[string]*dotmesh.Node
}

type inprocPeer struct {
	dotmesh.Transport
	n *dotmesh.Node
}

func (p *inprocPeers) Peer(ni dotmesh.NodeInfo) (dotmesh.Peer, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n, ok := p.nodes[ni.ID]
	if !ok {
		return nil, dotmesh.ErrUnavailable
	}
	return inprocPeer{dotmesh.LocalTransport(n), n}, nil
}

func (p inprocPeer) Release(ctx context.Context, dot dotmesh.DotName, branch, to string) (*dotmesh.ReleaseResult, error) {
	return p.n.Cluster().Release(ctx, dot, branch, to)
}

func masterOf(t *testing.T, n *dotmesh.Node, name dotmesh.DotName, branch string) string {
	t.Helper()
	bs, err := n.Branches(context.Background(), name)
	require.NoError(t, err)
	for _, b := range bs {
		if b.Name == branch {
			return b.Master
		}
	}
	t.Fatalf("no branch %s in %s", branch, name)
	return ""
}

// MoveHere moves a branch to the calling node with its committed and
// uncommitted data, refuses while a consumer on the master uses it, and
// is refused on a single node.
func TestClusterMoveHere(t *testing.T) {
	ctx := context.Background()
	st, err := bboltstore.Open(filepath.Join(t.TempDir(), "registry.db"), bboltstore.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	peers := &inprocPeers{nodes: map[string]*dotmesh.Node{}}
	start := func(id string) *dotmesh.Node {
		be, err := dump.Open(filepath.Join(t.TempDir(), "dump"), dump.Options{})
		require.NoError(t, err)
		n, err := dotmesh.NewNode(ctx, dotmesh.Options{Store: noClose{st}, Backends: []dotmesh.StorageBackend{be},
			Cluster: &dotmesh.ClusterOptions{NodeID: id, Address: "inproc://" + id, Peers: peers, SyncInterval: time.Hour}})
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
	vol := dotmesh.VolumeName{Dot: app, Branch: "master"}
	dir1, err := n1.SubdotPath(ctx, vol)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir1, "committed"), []byte("one"), 0o600))
	_, err = n1.Commit(ctx, app, "master", dotmesh.CommitOptions{Message: "one"})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir1, "uncommitted"), []byte("two"), 0o600))

	from, err := n1.Cluster().MoveHere(ctx, app, "master")
	require.NoError(t, err)
	require.Empty(t, from, "n1 masters the branch already")

	// A consumer on n1 keeps the branch there.
	_, err = n1.Mounts().Mount(ctx, vol, "test", "/pod/one", "pod one")
	require.NoError(t, err)
	_, err = n2.Cluster().MoveHere(ctx, app, "master")
	require.ErrorIs(t, err, dotmesh.ErrInUse)
	require.Equal(t, "n1", masterOf(t, n2, app, "master"))
	require.NoError(t, n1.Mounts().Unmount(ctx, app, "test", "/pod/one"))

	from, err = n2.Cluster().MoveHere(ctx, app, "")
	require.NoError(t, err)
	require.Equal(t, "n1", from)
	require.Equal(t, "n2", masterOf(t, n1, app, "master"), "n1 still masters the branch after the move")
	dir2, err := n2.SubdotPath(ctx, vol)
	require.NoError(t, err)
	for name, want := range map[string]string{"committed": "one", "uncommitted": "two"} {
		got, err := os.ReadFile(filepath.Join(dir2, name))
		require.NoError(t, err, "n2 lacks %s after the move", name)
		require.Equal(t, want, string(got))
	}
	log, err := n2.Log(ctx, app, "master", 0)
	require.NoError(t, err)
	require.Contains(t, log[0].Message, "Automatic commit while moving from n1 to n2")

	_, err = n2.Cluster().MoveHere(ctx, dotmesh.DotName{Namespace: "admin", Name: "nope"}, "")
	require.ErrorIs(t, err, dotmesh.ErrNotFound)

	solo := newEnv(t).node
	_, err = solo.Cluster().MoveHere(ctx, app, "")
	require.ErrorIs(t, err, dotmesh.ErrNotSupported)
}
