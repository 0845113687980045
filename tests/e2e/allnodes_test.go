package e2e

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/cluster/etcd/etcdtest"
)

type nodeItem struct {
	Node, Address, Status, Detail, Error, Kind string
}

// TestAllNodesGCVerify: gc and verify --all-nodes run on both nodes of an
// etcd cluster and report per node; a node that was killed (still
// registered) is reported unreachable, with exit status 7.
func TestAllNodesGCVerify(t *testing.T) {
	c := startEtcdNodesWith(t, etcdtest.Start(t, 1), 2, nil)
	e, n1, n2 := c.e, c.nodes[0], c.nodes[1]
	e.on(n1, "init", "app")
	for i := 1; i <= 3; i++ {
		writeFile(t, filepath.Join(e.pathOn(n1, "app.db"), "f"), strings.Repeat("v", i*1000))
		e.commitOn(n1, "app", "v")
	}
	c.waitReplicated(n1, "app", "n1", "n2")

	var items []nodeItem
	e.jsonOut(&items, "--remote", "n2", "gc", "--all-nodes")
	if len(items) != 2 || items[0].Node != "n1" || items[1].Node != "n2" || items[0].Status != "done" || items[1].Status != "done" ||
		items[0].Address != "http://"+n1.addr || !strings.HasPrefix(items[1].Detail, "removed 0 commits and ") {
		t.Fatalf("gc --all-nodes: %+v", items)
	}
	out := e.on(n1, "verify", "--all-nodes")
	for _, want := range []string{"node n1: ", "node n2: ", " checked; 0 damaged, 0 other problems\n", "2 nodes: 2 done."} {
		if !strings.Contains(out, want) {
			t.Fatalf("verify --all-nodes lacks %q:\n%s", want, out)
		}
	}

	n2.kill()
	r := e.dm("--remote", "n1", "gc", "--all-nodes", "--json")
	if r.code != 7 || json.Unmarshal([]byte(r.out), &items) != nil || len(items) != 2 {
		t.Fatalf("gc --all-nodes with n2 killed: %+v", r)
	}
	if items[0].Status != "done" || items[1].Node != "n2" || items[1].Status != "unreachable" || items[1].Kind != "unavailable" || !strings.Contains(items[1].Error, n2.addr) {
		t.Fatalf("gc --all-nodes with n2 killed: %+v", items)
	}
	r = e.dm("--remote", "n1", "verify", "--all-nodes")
	if r.code != 7 || !strings.Contains(r.out, "node n2: unreachable: ") || !strings.Contains(r.out, "2 nodes: 1 done, 1 unreachable.") ||
		!strings.HasPrefix(r.err, "dm: 1 of 2 nodes failed (the first, node n2: ") {
		t.Fatalf("verify --all-nodes with n2 killed: %+v", r)
	}
}
