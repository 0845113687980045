package etcdstore_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/dump"
	etcdstore "github.com/dotmesh-io/dotmesh/cluster/etcd"
	"github.com/dotmesh-io/dotmesh/cluster/etcd/etcdtest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// testClock is the clock both nodes of the test share, moved by it.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// clockNode is clusterNode on clock.
func clockNode(t *testing.T, ctx context.Context, c *etcdtest.Cluster, prefix, id string, clock *testClock) *dotmesh.Node {
	t.Helper()
	st := open(t, etcdstore.Options{Endpoints: c.Endpoints(), Prefix: prefix})
	be, err := dump.Open(filepath.Join(t.TempDir(), "dump"), dump.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := dotmesh.NewNode(ctx, dotmesh.Options{Store: st, Backends: []dotmesh.StorageBackend{be}, Now: clock.now,
		Cluster: &dotmesh.ClusterOptions{NodeID: id, Address: "inproc://" + id, Peers: noPeers{}, SyncInterval: time.Hour}})
	if err != nil {
		t.Fatalf("NewNode %s: %v", id, err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// Policies and schedule state live in etcd: a policy set on one node is
// run by the branch's master only, the other node sees how it ran, and
// its grid prunes on etcd as on bbolt.
func TestPolicyRunsOnMasterOnly(t *testing.T) {
	t.Parallel()
	c := etcdtest.Start(t, 1)
	ctx := ctxTimeout(t, time.Minute)
	clock := &testClock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	n1 := clockNode(t, ctx, c, "/test/policy/", "n1", clock)
	n2 := clockNode(t, ctx, c, "/test/policy/", "n2", clock)
	app := dotmesh.DotName{Namespace: "admin", Name: "app"}
	if _, err := n1.CreateDot(ctx, app, dotmesh.CreateDotOptions{}); err != nil {
		t.Fatal(err)
	}
	every, _ := dotmesh.ParseEvery("10m")
	// Set on n2, for a dot whose master is n1.
	if _, err := n2.Policies().Set(ctx, dotmesh.Policy{Dot: &app, Every: every, Keep: dotmesh.KeepGrid{Last: 2}}); err != nil {
		t.Fatal(err)
	}
	p, err := n1.SubdotPath(ctx, dotmesh.VolumeName{Dot: app})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		if err := os.WriteFile(filepath.Join(p, "f"), []byte{byte(i)}, 0o644); err != nil {
			t.Fatal(err)
		}
		if runs, err := n2.Policies().RunDue(ctx); err != nil || len(runs) != 0 {
			t.Fatalf("n2, not the master, ran %+v, %v", runs, err)
		}
		runs, err := n1.Policies().RunDue(ctx)
		if err != nil || len(runs) != 1 || runs[0].Result != dotmesh.ScheduleCommitted {
			t.Fatalf("run %d on n1, the master: %+v, %v", i, runs, err)
		}
		clock.add(10 * time.Minute)
	}
	st, err := n2.Policies().Status(ctx, app)
	if err != nil || st.Policy == nil || st.Last == nil || st.Last.Result != dotmesh.ScheduleCommitted || st.Last.Removed != 1 {
		t.Fatalf("n2 reads the last run as %+v, %v", st, err)
	}
	log, err := n2.Log(ctx, app, "", 0)
	if err != nil || len(log) != 2 {
		t.Fatalf("after 4 scheduled commits with last=2, n2 reads %d commits, %v", len(log), err)
	}
	if ps, err := n1.Policies().List(ctx); err != nil || len(ps) != 1 || ps[0].ID() != "dot:app" {
		t.Fatalf("n1 lists %+v, %v", ps, err)
	}
	if err := n1.Policies().RemoveDot(ctx, app); err != nil {
		t.Fatal(err)
	}
	if ps, err := n2.Policies().List(ctx); err != nil || len(ps) != 0 {
		t.Fatalf("n2 lists %+v after n1 removed it, %v", ps, err)
	}
}
