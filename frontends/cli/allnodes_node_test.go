package cli

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/dump"
	etcdstore "github.com/dotmesh-io/dotmesh/cluster/etcd"
	"github.com/dotmesh-io/dotmesh/cluster/etcd/etcdtest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/server"
	"github.com/dotmesh-io/dotmesh/server/servertest"
)

// noPeers: gc and verify move no data between nodes.
type noPeers struct{}

func (noPeers) Peer(dotmesh.NodeInfo) (dotmesh.Peer, error) {
	return nil, errors.New("this test moves no data between nodes")
}

// TestAllNodesInProcess: two real nodes sharing a real etcd, each behind
// the API server; gc and verify --all-nodes report per node, and a node
// still registered whose server is gone is reported unreachable (exit 7).
// tests/e2e runs the same with the dm binary.
func TestAllNodesInProcess(t *testing.T) {
	etcd := etcdtest.Start(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	keyDir := t.TempDir() // one admin key file: the cluster's nodes share it
	var key string
	start := func(id string) *httptest.Server {
		srv := httptest.NewUnstartedServer(nil)
		st, err := etcdstore.Open(ctx, etcdstore.Options{Endpoints: etcd.Endpoints(), Prefix: "/allnodes/"})
		if err != nil {
			t.Fatal(err)
		}
		be, err := dump.Open(filepath.Join(t.TempDir(), "dump"), dump.Options{})
		if err != nil {
			t.Fatal(err)
		}
		n, err := dotmesh.NewNode(ctx, dotmesh.Options{Store: st, Backends: []dotmesh.StorageBackend{be},
			Cluster: &dotmesh.ClusterOptions{NodeID: id, Address: "http://" + srv.Listener.Addr().String(), Peers: noPeers{}, SyncInterval: time.Hour}})
		if err != nil {
			t.Fatalf("NewNode %s: %v", id, err)
		}
		t.Cleanup(func() { n.Close() })
		if key, _, err = server.EnsureAdminKey(ctx, n, keyDir); err != nil {
			t.Fatal(err)
		}
		srv.Config.Handler = server.New(n, server.Options{Logger: servertest.Logger(t), Version: "test"})
		srv.Start()
		t.Cleanup(srv.Close)
		return srv
	}
	s1, s2 := start("n1"), start("n2")
	e, path := testEnv(t)
	writeConfig(t, path, &Config{CurrentRemote: "c", Remotes: map[string]*Remote{
		"c": {User: "admin", Address: strings.TrimPrefix(s1.URL, "http://"), APIKey: key},
	}})
	mustRun(t, e, "init", "app")
	writeIn(t, e, "app", "f", "one")
	mustRun(t, e, "commit", "-m", "one")

	got := mustRun(t, e, "gc", "--all-nodes", "--dry-run")
	if !regexp.MustCompile(`^node n1: would remove 0 commits and \d+ chunks; would free .*\nnode n2: would remove 0 commits and \d+ chunks; would free .*\n2 nodes: 2 done.\n$`).MatchString(got) {
		t.Fatalf("gc --all-nodes --dry-run:\n%s", got)
	}
	r := runDM(t, e, "verify", "--all-nodes", "--json")
	items := allJSON(t, r)
	if r.code != 0 || len(items) != 2 || items[1].Node != "n2" || items[1].Status != "done" || !strings.Contains(items[1].Detail, "0 damaged, 0 other problems") {
		t.Fatalf("verify --all-nodes --json: %+v %+v", r, items)
	}

	s2.Close() // n2 stays registered: its server is gone
	r = runDM(t, e, "verify", "--all-nodes")
	if r.code != exitUnavailable || !strings.HasPrefix(r.out, "node n1: ") || !strings.Contains(r.out, "\nnode n2: unreachable: ") ||
		!strings.Contains(r.out, strings.TrimPrefix(s2.URL, "http://")) || !strings.HasSuffix(r.out, "2 nodes: 1 done, 1 unreachable.\n") {
		t.Fatalf("verify --all-nodes with n2's server gone: %+v", r)
	}
	if !strings.HasPrefix(r.err, "dm: 1 of 2 nodes failed (the first, node n2: ") {
		t.Fatalf("verify --all-nodes error: %q", r.err)
	}
	r = runDM(t, e, "gc", "--all-nodes", "-H")
	if r.code != exitUnavailable || !regexp.MustCompile(`^n1\tdone\tremoved 0 commits and \d+ chunks; freed .*\nn2\tunreachable\t.*\n$`).MatchString(r.out) {
		t.Fatalf("gc --all-nodes -H with n2's server gone: %+v", r)
	}
}
