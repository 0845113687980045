package metrics_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/dump"
	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/metrics"
)

// sharedStore is one registry several in-process nodes share; the test
// closes it.
type sharedStore struct{ dotmesh.ClusterStore }

func (sharedStore) Close() error { return nil }

// cutOff reaches no node: replication never moves a commit.
type cutOff struct{}

func (cutOff) Peer(ni dotmesh.NodeInfo) (dotmesh.Peer, error) {
	return nil, errors.New("node " + ni.ID + " is cut off")
}

// In a cluster, a node's metrics say which nodes lack commits, and for
// how long: n2 cannot reach n1, so it lacks n1's commit.
func TestReplicationLag(t *testing.T) {
	ctx := context.Background()
	st, err := bboltstore.Open(filepath.Join(t.TempDir(), "registry.db"), bboltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	start := func(id string, m *metrics.Metrics) *dotmesh.Node {
		be, err := dump.Open(filepath.Join(t.TempDir(), "dump"), dump.Options{})
		if err != nil {
			t.Fatal(err)
		}
		n, err := dotmesh.NewNode(ctx, dotmesh.Options{Store: sharedStore{st}, Backends: []dotmesh.StorageBackend{be}, Observer: m,
			Cluster: &dotmesh.ClusterOptions{NodeID: id, Address: "inproc://" + id, Peers: cutOff{}, SyncInterval: time.Hour}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		m.Watch(n)
		return n
	}
	m1 := metrics.New(metrics.Options{})
	n1 := start("n1", m1)
	start("n2", metrics.New(metrics.Options{}))
	app := dotmesh.DotName{Namespace: dotmesh.DefaultNamespace, Name: "app"}
	if _, err := n1.CreateDot(ctx, app, dotmesh.CreateDotOptions{}); err != nil {
		t.Fatal(err)
	}
	c, err := n1.Commit(ctx, app, "", dotmesh.CommitOptions{AllowEmpty: true, Message: "one"})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // some lag to see
	if v := value(t, m1, "dotmesh_replication_lacking_commits", map[string]string{"node": "n2"}); v != 1 {
		t.Errorf("n2 lacks %v commits, want 1", v)
	}
	if v := value(t, m1, "dotmesh_replication_lacking_commits", map[string]string{"node": "n1"}); v != 0 {
		t.Errorf("n1 lacks %v commits, want 0", v)
	}
	lag := value(t, m1, "dotmesh_replication_lag_seconds", map[string]string{"node": "n2"})
	if age := time.Since(c.Time).Seconds(); lag < 0.05 || lag > age {
		t.Errorf("n2's lag is %vs; the commit is %vs old", lag, age)
	}
	if v := value(t, m1, "dotmesh_replication_lag_seconds", map[string]string{"node": "n1"}); v != 0 {
		t.Errorf("n1's lag is %vs, want 0", v)
	}
}
