package etcdstore_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/dump"
	etcdstore "github.com/dotmesh-io/dotmesh/cluster/etcd"
	"github.com/dotmesh-io/dotmesh/cluster/etcd/etcdtest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// noPeers: these nodes share no data, only the registry.
type noPeers struct{}

func (noPeers) Peer(ni dotmesh.NodeInfo) (dotmesh.Peer, error) {
	return nil, errors.New("this test moves no data between nodes")
}

// clusterNode starts a cluster node on the files backend with its
// registry under prefix in c, closed when t ends.
func clusterNode(t *testing.T, ctx context.Context, c *etcdtest.Cluster, prefix, id string) *dotmesh.Node {
	t.Helper()
	st := open(t, etcdstore.Options{Endpoints: c.Endpoints(), Prefix: prefix})
	be, err := dump.Open(filepath.Join(t.TempDir(), "dump"), dump.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := dotmesh.NewNode(ctx, dotmesh.Options{Store: st, Backends: []dotmesh.StorageBackend{be},
		Cluster: &dotmesh.ClusterOptions{NodeID: id, Address: "inproc://" + id, Peers: noPeers{}, SyncInterval: time.Hour}})
	if err != nil {
		t.Fatalf("NewNode %s: %v", id, err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// Users, keys, grants and the audit live in etcd: what one node of a
// cluster records, another enforces.
func TestAccessSharedByClusterNodes(t *testing.T) {
	t.Parallel()
	c := etcdtest.Start(t, 1)
	ctx := ctxTimeout(t, time.Minute)
	n1, n2 := clusterNode(t, ctx, c, "/test/access/", "n1"), clusterNode(t, ctx, c, "/test/access/", "n2")
	app := dotmesh.DotName{Namespace: "admin", Name: "app"}
	_, _, secret, err := n1.Users().Add(ctx, "wendy", "laptop")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n1.CreateDot(ctx, app, dotmesh.CreateDotOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := n1.Access().Share(ctx, app, "wendy", dotmesh.RoleWrite, "admin"); err != nil {
		t.Fatal(err)
	}
	if err := n1.Audit().Append(ctx, dotmesh.AuditRecord{User: "admin", Action: "share", Dot: "admin/app"}); err != nil {
		t.Fatal(err)
	}

	p, err := n2.APIKeys().Authenticate(ctx, "", secret)
	if err != nil || p.User != "wendy" {
		t.Fatalf("n2 authenticates n1's key as %+v, %v; want wendy", p, err)
	}
	if r, err := n2.Access().RoleOf(ctx, p, app); err != nil || r != dotmesh.RoleWrite {
		t.Fatalf("wendy's role on n2: %v, %v; want write", r, err)
	}
	recs, _, err := n2.Audit().List(ctx, dotmesh.AuditQuery{Dot: &app})
	if err != nil || len(recs) != 1 || recs[0].Node != "n1" {
		t.Fatalf("n2's audit: %+v, %v; want n1's one record", recs, err)
	}
	if err := n2.Users().Remove(ctx, "wendy"); err != nil {
		t.Fatal(err)
	}
	if _, err := n1.APIKeys().Authenticate(ctx, "wendy", secret); !errors.Is(err, dotmesh.ErrUnauthorized) {
		t.Fatalf("n1 after n2 removed wendy: %v; want ErrUnauthorized", err)
	}
	if s, err := n1.Access().Sharing(ctx, app); err != nil || len(s.Grants) != 0 {
		t.Fatalf("n1's sharing after the remove: %+v, %v; want no grants", s, err)
	}
}
