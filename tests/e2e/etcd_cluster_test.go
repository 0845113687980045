package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/zfs/zfstest"
	"github.com/dotmesh-io/dotmesh/cluster/etcd/etcdtest"
)

// etcdNodes is three `dm serve --store etcd` nodes on 127.0.0.1-3 sharing
// one etcd, and a client env with a remote per node (n1, n2, n3).
type etcdNodes struct {
	t     *testing.T
	etcd  *etcdtest.Cluster
	nodes []*serveNode
	e     *env
}

func startEtcdNodes(t *testing.T, etcd *etcdtest.Cluster) *etcdNodes {
	t.Helper()
	return startEtcdNodesWith(t, etcd, 3, nil)
}

// startEtcdNodesWith starts count nodes, node i with the extra flags
// extra(i) when extra is not nil.
func startEtcdNodesWith(t *testing.T, etcd *etcdtest.Cluster, count int, extra func(i int) []string) *etcdNodes {
	t.Helper()
	eps := strings.Join(etcd.Endpoints(), ",")
	c := &etcdNodes{t: t, etcd: etcd, e: newEnv(t)}
	var keyFile string
	for i, ip := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}[:count] {
		id := "n" + string(rune('1'+i))
		args := []string{"--store", "etcd", "--etcd-endpoints", eps, "--node-id", id}
		if extra != nil {
			args = append(args, extra(i)...)
		}
		if keyFile != "" {
			args = append(args, "--cluster-key-file", keyFile)
		}
		n := startServe(t, id, ip, args...)
		if i == 0 {
			keyFile = filepath.Join(n.data, "admin-api-key")
		}
		c.nodes = append(c.nodes, n)
		c.e.addRemote(n)
	}
	for _, n := range c.nodes[1:] {
		if n.key != c.nodes[0].key {
			t.Fatalf("node %s has its own admin key; all nodes must share the cluster's", n.name)
		}
	}
	return c
}

type dotShowJSON struct {
	Branch struct {
		Name   string `json:"name"`
		Master string `json:"master"`
	} `json:"branch"`
	Replication []struct {
		Node    string   `json:"node"`
		Alive   bool     `json:"alive"`
		Lacks   []string `json:"lacks"`
		Masters []string `json:"masters"`
	} `json:"replication"`
}

func (c *etcdNodes) show(n *serveNode, dot string) dotShowJSON {
	c.t.Helper()
	var s dotShowJSON
	c.e.jsonOut(&s, "--remote", n.name, "dot", "show", dot)
	return s
}

// waitReplicated polls `dm dot show` on n until every node in want holds
// every commit of dot.
func (c *etcdNodes) waitReplicated(n *serveNode, dot string, want ...string) {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		s := c.show(n, dot)
		missing := map[string]bool{}
		for _, w := range want {
			missing[w] = true
		}
		for _, r := range s.Replication {
			if len(r.Lacks) == 0 {
				delete(missing, r.Node)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("after 60s, dot %s is not replicated to %v: %+v", dot, want, s.Replication)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestEtcdClusterReplication: a dot made on n1 is listed on n2 and n3;
// its commits reach both, with the same history and data; `dm cluster
// nodes` lists all three.
func TestEtcdClusterReplication(t *testing.T) {
	c := startEtcdNodes(t, etcdtest.Start(t, 1))
	e, n1, n2, n3 := c.e, c.nodes[0], c.nodes[1], c.nodes[2]

	var nodes struct {
		Node  string `json:"node"`
		Nodes []struct {
			ID, Address string
		} `json:"nodes"`
	}
	e.jsonOut(&nodes, "--remote", "n2", "cluster", "nodes")
	if nodes.Node != "n2" || len(nodes.Nodes) != 3 {
		t.Fatalf("dm cluster nodes on n2: %+v", nodes)
	}
	if out := e.on(n1, "cluster", "nodes"); !strings.Contains(out, "n3") || !strings.Contains(out, "http://"+n3.addr) {
		t.Fatalf("dm cluster nodes: %q", out)
	}

	e.on(n1, "init", "app")
	for _, n := range []*serveNode{n2, n3} {
		if out := e.on(n, "list"); !strings.Contains(out, "app") {
			t.Fatalf("dm list on %s does not show the dot made on n1: %q", n.name, out)
		}
	}
	db := e.pathOn(n1, "app.db")
	writeFile(t, filepath.Join(db, "f"), "one")
	must(t, os.WriteFile(filepath.Join(db, "big"), randomBytes(7, 1<<20), 0o644))
	e.commitOn(n1, "app", "first")
	writeFile(t, filepath.Join(db, "f"), "two")
	e.commitOn(n1, "app", "second")
	start := time.Now()
	c.waitReplicated(n1, "app", "n1", "n2", "n3")
	t.Logf("2 commits replicated to n2 and n3 within %v", time.Since(start))
	l1 := e.logOn(n1, "app")
	for _, n := range []*serveNode{n2, n3} {
		if l := e.logOn(n, "app"); ids(l) != ids(l1) || len(l) != 2 {
			t.Fatalf("log on %s %v differs from n1's %v", n.name, l, l1)
		}
	}
	out := e.on(n2, "dot", "show", "app")
	for _, want := range []string{"node n1:", "node n2:", "node n3:", "has all commits", "master on n1"} {
		if !strings.Contains(out, want) {
			t.Fatalf("dm dot show has no %q:\n%s", want, out)
		}
	}
}

// TestEtcdClusterMove: writing a branch on n2 moves it from n1 with its
// uncommitted changes committed, and they arrive intact.
func TestEtcdClusterMove(t *testing.T) {
	c := startEtcdNodes(t, etcdtest.Start(t, 1))
	e, n1, n2 := c.e, c.nodes[0], c.nodes[1]
	e.on(n1, "init", "app")
	db1 := e.pathOn(n1, "app.db")
	writeFile(t, filepath.Join(db1, "f"), "committed")
	e.commitOn(n1, "app", "on n1")
	writeFile(t, filepath.Join(db1, "f"), "uncommitted on n1")
	writeFile(t, filepath.Join(db1, "new"), "new file")

	e.commitOn(n2, "app", "on n2")
	l := e.logOn(n2, "app")
	if len(l) != 3 || l[0].Message != "on n2" || l[1].Message != "Automatic commit while moving from n1 to n2" || l[2].Message != "on n1" {
		t.Fatalf("log after the move: %+v", l)
	}
	db2 := e.pathOn(n2, "app.db")
	if got := readFile(t, filepath.Join(db2, "f")); got != "uncommitted on n1" {
		t.Fatalf("f on n2 after the move: %q", got)
	}
	if got := readFile(t, filepath.Join(db2, "new")); got != "new file" {
		t.Fatalf("new on n2 after the move: %q", got)
	}
	if s := c.show(n1, "app"); s.Branch.Master != "n2" {
		t.Fatalf("master after the move: %+v", s)
	}
	// n1 no longer writes it; using it there moves it back.
	writeFile(t, filepath.Join(db2, "f"), "changed on n2")
	if got := readFile(t, filepath.Join(e.pathOn(n1, "app.db"), "f")); got != "changed on n2" {
		t.Fatalf("f back on n1: %q", got)
	}
}

// TestEtcdClusterMoveRace: n2 and n3 write the branch at once: exactly
// one gets it, the other is told which node has it.
func TestEtcdClusterMoveRace(t *testing.T) {
	c := startEtcdNodes(t, etcdtest.Start(t, 1))
	e, n1, n2, n3 := c.e, c.nodes[0], c.nodes[1], c.nodes[2]
	e.on(n1, "init", "app")
	db1 := e.pathOn(n1, "app.db")
	writeFile(t, filepath.Join(db1, "f"), "base")
	e.commitOn(n1, "app", "base")
	// Uncommitted data makes the hand-over take a while.
	must(t, os.WriteFile(filepath.Join(db1, "big"), randomBytes(3, 8<<20), 0o644))

	var wg sync.WaitGroup
	res := make([]result, 2)
	for i, n := range []*serveNode{n2, n3} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = e.dm("--remote", n.name, "commit", "--dot", "app", "-m", "by "+n.name)
		}()
	}
	wg.Wait()
	if (res[0].code == 0) == (res[1].code == 0) {
		t.Fatalf("want exactly one winner: n2 %v; n3 %v", res[0], res[1])
	}
	winner, loser := "n2", res[1]
	if res[1].code == 0 {
		winner, loser = "n3", res[0]
	}
	if !strings.HasPrefix(loser.err, "dm: ") || !strings.Contains(loser.err, "node "+winner) || strings.Count(loser.err, "\n") != 1 {
		t.Fatalf("the loser's error does not name the winner %s: %q", winner, loser.err)
	}
	if s := c.show(n1, "app"); s.Branch.Master != winner {
		t.Fatalf("master is %q; want %s", s.Branch.Master, winner)
	}
	l := e.logOn(n1, "app")
	if len(l) != 3 || l[0].Message != "by "+winner {
		t.Fatalf("log after the race: %+v", l)
	}
}

// TestEtcdClusterNodeKilled: n3, master of the branch, dies (SIGKILL):
// n1 and n2 still serve every commit, and n2 takes the branch over.
func TestEtcdClusterNodeKilled(t *testing.T) {
	c := startEtcdNodes(t, etcdtest.Start(t, 1))
	e, n1, n2, n3 := c.e, c.nodes[0], c.nodes[1], c.nodes[2]
	e.on(n1, "init", "app")
	var commits []string
	for i, n := range []*serveNode{n1, n1, n3} {
		writeFile(t, filepath.Join(e.pathOn(n, "app.db"), "f"), "v"+string(rune('1'+i)))
		e.commitOn(n, "app", "v"+string(rune('1'+i)))
		commits = append(commits, e.logOn(n, "app")[0].ID)
	}
	c.waitReplicated(n1, "app", "n1", "n2", "n3")
	writeFile(t, filepath.Join(e.pathOn(n3, "app.db"), "f"), "lost with n3")

	n3.kill()
	// Every commit, on both survivors, as a new branch made from it.
	for _, n := range []*serveNode{n1, n2} {
		for i, id := range commits {
			b := n.name + "-v" + string(rune('1'+i))
			e.on(n, "branch", "--dot", "app", b, id)
			if got := readFile(t, filepath.Join(e.pathOn(n, "app@"+b+".db"), "f")); got != "v"+string(rune('1'+i)) {
				t.Fatalf("commit %d on %s: f is %q", i+1, n.name, got)
			}
		}
	}
	// master is on n3: writing it elsewhere says to take it over.
	r := e.dm("--remote", "n2", "commit", "--dot", "app", "-m", "x")
	if r.code == 0 || !strings.Contains(r.err, "n3") {
		t.Fatalf("commit on n2 of a branch of the dead n3: %v", r)
	}
	// Once n3 is known gone, dm says how to take the branch over.
	if strings.Contains(r.err, "which is not running") && !strings.Contains(r.err, "; `dm dot take-over app master` moves it here, losing that node's uncommitted changes") {
		t.Fatalf("commit on n2 of a branch of the dead n3 gives no advice: %v", r)
	}
	deadline := time.Now().Add(40 * time.Second)
	for {
		r = e.dm("--remote", "n2", "dot", "take-over", "app", "master")
		if r.code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("take-over never worked: %v", r)
		}
		time.Sleep(500 * time.Millisecond) // until n3's registration expires
	}
	if !strings.Contains(r.err, "uncommitted changes") || !strings.Contains(r.err, "lost") || !strings.Contains(r.out, "n3") {
		t.Fatalf("take-over output: %v", r)
	}
	if got := readFile(t, filepath.Join(e.pathOn(n2, "app.db"), "f")); got != "v3" {
		t.Fatalf("f on n2 after take-over: %q", got)
	}
	e.on(n2, "reset", "--hard", "--dot", "app", "HEAD^")
	if got := readFile(t, filepath.Join(e.pathOn(n2, "app.db"), "f")); got != "v2" {
		t.Fatalf("f on n2 after reset: %q", got)
	}
	e.on(n1, "reset", "--hard", "--dot", "app", "HEAD^")
	if got := readFile(t, filepath.Join(e.pathOn(n1, "app.db"), "f")); got != "v1" {
		t.Fatalf("f on n1 after reset: %q", got)
	}
	s := c.show(n1, "app")
	for _, r := range s.Replication {
		if r.Node == "n3" && r.Alive {
			t.Fatalf("dm dot show says the dead n3 is alive: %+v", s.Replication)
		}
	}
}

// TestEtcdClusterMemberKilled: one etcd member of three dies; the nodes
// keep working.
func TestEtcdClusterMemberKilled(t *testing.T) {
	etcd := etcdtest.Start(t, 3)
	c := startEtcdNodes(t, etcd)
	e, n1, n2 := c.e, c.nodes[0], c.nodes[1]
	e.on(n1, "init", "app")
	writeFile(t, filepath.Join(e.pathOn(n1, "app.db"), "f"), "before")
	e.commitOn(n1, "app", "before")
	etcd.Kill(etcd.Leader())
	writeFile(t, filepath.Join(e.pathOn(n1, "app.db"), "f"), "after")
	e.commitOn(n1, "app", "after")
	e.on(n2, "init", "other")
	c.waitReplicated(n2, "app", "n1", "n2", "n3")
	if got := readFile(t, filepath.Join(e.pathOn(n2, "app.db"), "f")); got != "after" {
		t.Fatalf("f on n2: %q", got)
	}
	if out := e.on(n1, "list"); !strings.Contains(out, "other") {
		t.Fatalf("n1 does not list the dot made on n2 after the member died: %q", out)
	}
}

// TestEtcdClusterEtcdDown: with etcd stopped, calls fail within seconds
// naming etcd and write nothing; once etcd is back the nodes recover by
// themselves.
func TestEtcdClusterEtcdDown(t *testing.T) {
	etcd := etcdtest.Start(t, 1)
	c := startEtcdNodes(t, etcd)
	e, n1, n2 := c.e, c.nodes[0], c.nodes[1]
	e.on(n1, "init", "app")
	db := e.pathOn(n1, "app.db")
	writeFile(t, filepath.Join(db, "f"), "one")
	e.commitOn(n1, "app", "one")
	c.waitReplicated(n1, "app", "n1", "n2", "n3")

	etcd.Stop(0)
	writeFile(t, filepath.Join(db, "f"), "two")
	for _, args := range [][]string{{"--remote", "n1", "list"}, {"--remote", "n1", "commit", "--dot", "app", "-m", "while down"}, {"--remote", "n2", "dot", "show", "app"}} {
		start := time.Now()
		r := e.dm(args...)
		took := time.Since(start)
		if r.code == 0 || !strings.Contains(r.err, "etcd") || strings.Count(r.err, "\n") != 1 {
			t.Fatalf("dm %v with etcd down: %v", args, r)
		}
		if took > 15*time.Second {
			t.Fatalf("dm %v took %v to fail with etcd down", args, took)
		}
		t.Logf("dm %v failed in %v: %s", args, took.Round(time.Millisecond), strings.TrimSpace(r.err))
	}

	etcd.Restart(0)
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := e.dm("--remote", "n1", "commit", "--dot", "app", "-m", "two")
		if r.code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("n1 did not recover within 60s of etcd's restart: %v", r)
		}
		time.Sleep(500 * time.Millisecond)
	}
	// Every node recovers by itself, without a restart.
	for _, n := range []string{"n2", "n3"} {
		for r := e.dm("--remote", n, "list"); r.code != 0; r = e.dm("--remote", n, "list") {
			if time.Now().After(deadline) {
				t.Fatalf("%s did not recover within 60s of etcd's restart: %v", n, r)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	l := e.logOn(n1, "app")
	if len(l) != 2 || l[0].Message != "two" || l[1].Message != "one" {
		t.Fatalf("log after etcd came back (the failed commit must not be in it): %+v", l)
	}
	c.waitReplicated(n2, "app", "n1", "n2", "n3")
	if got := readFile(t, filepath.Join(e.pathOn(n2, "app.db"), "f")); got != "two" {
		t.Fatalf("f on n2 after recovery: %q", got)
	}
}

var _ = json.Marshal
var _ = syscall.SIGKILL

// TestEtcdClusterInitJoin: `dm cluster init --store etcd` starts the first
// node and says how to join; `dm cluster join` with its key file joins; a
// node without the cluster's key is refused with a message saying so.
func TestEtcdClusterInitJoin(t *testing.T) {
	etcd := etcdtest.Start(t, 1)
	eps := strings.Join(etcd.Endpoints(), ",")
	e1, e2, e3 := newEnv(t), newEnv(t), newEnv(t)
	e1.port = freePort(t)
	out := e1.ok("cluster", "init", "--data-dir", e1.data, "--port", strconv.Itoa(e1.port), "--store", "etcd", "--etcd-endpoints", eps, "--node-id", "first")
	keyFile := filepath.Join(e1.data, "admin-api-key")
	if !strings.Contains(out, "dm cluster join") || !strings.Contains(out, keyFile) {
		t.Fatalf("cluster init does not say how to join: %q", out)
	}
	e1.ok("init", "app")

	port2 := freePort(t)
	e2.ok("cluster", "join", "--data-dir", e2.data, "--listen", "127.0.0.2:"+strconv.Itoa(port2), "--etcd-endpoints", eps, "--cluster-key-file", keyFile, "--node-id", "second")
	if out := e2.ok("list"); !strings.Contains(out, "app") {
		t.Fatalf("the joined node does not list the dot: %q", out)
	}
	if out := e2.ok("cluster", "nodes"); !strings.Contains(out, "first") || !strings.Contains(out, "* ") {
		t.Fatalf("dm cluster nodes on the joined node: %q", out)
	}
	// Restart without flags: cluster.json remembers them.
	e2.ok("cluster", "stop")
	e2.ok("cluster", "init", "--data-dir", e2.data, "--listen", "127.0.0.2:"+strconv.Itoa(port2))
	if out := e2.ok("cluster", "nodes"); !strings.Contains(out, "second") {
		t.Fatalf("the restarted node is not in the cluster: %q", out)
	}

	r := e3.fails("cluster-key-file", "cluster", "init", "--data-dir", e3.data, "--listen", "127.0.0.3:"+strconv.Itoa(freePort(t)), "--store", "etcd", "--etcd-endpoints", eps, "--node-id", "third")
	if _, running := nodePid(e3.data); running {
		t.Fatalf("a node without the cluster key kept running: %v", r)
	}
	bad := filepath.Join(t.TempDir(), "key")
	writeFile(t, bad, strings.Repeat("x", 64))
	e3.fails("does not match", "cluster", "join", "--data-dir", e3.data, "--listen", "127.0.0.3:"+strconv.Itoa(freePort(t)), "--etcd-endpoints", eps, "--cluster-key-file", bad, "--node-id", "third")
}

// TestEtcdClusterZFS: two nodes on ZFS, a pool each: commits replicate
// with zfs send/receive, and a branch moves with its uncommitted changes.
func TestEtcdClusterZFS(t *testing.T) {
	zfstest.Require(t)
	etcd := etcdtest.Start(t, 1)
	// Pools are destroyed after the nodes are killed: cleanups run last-first.
	pools := []string{}
	for range 2 {
		p, _ := zfstest.Pool(t)
		pools = append(pools, p)
	}
	c := startEtcdNodesWith(t, etcd, 2, func(i int) []string {
		return []string{"--backend", "zfs", "--zfs-pool", pools[i], "--pool-size", "1G"}
	})
	e, n1, n2 := c.e, c.nodes[0], c.nodes[1]
	e.on(n1, "init", "app")
	db1 := e.pathOn(n1, "app.db")
	writeFile(t, filepath.Join(db1, "f"), "one")
	e.commitOn(n1, "app", "one")
	writeFile(t, filepath.Join(db1, "f"), "two")
	e.commitOn(n1, "app", "two")
	c.waitReplicated(n1, "app", "n1", "n2")
	writeFile(t, filepath.Join(db1, "f"), "uncommitted")

	e.commitOn(n2, "app", "on n2")
	l := e.logOn(n2, "app")
	if len(l) != 4 || l[1].Message != "Automatic commit while moving from n1 to n2" {
		t.Fatalf("log after the move: %+v", l)
	}
	if got := readFile(t, filepath.Join(e.pathOn(n2, "app.db"), "f")); got != "uncommitted" {
		t.Fatalf("f on n2 after the move: %q", got)
	}
	c.waitReplicated(n2, "app", "n1", "n2")
	// Back on n1, reset to the first commit: its working state is the
	// replicated history, not what it had before.
	e.on(n1, "reset", "--dot", "app", "--hard", "HEAD~3")
	if got := readFile(t, filepath.Join(e.pathOn(n1, "app.db"), "f")); got != "one" {
		t.Fatalf("f on n1 after reset: %q", got)
	}
}

// TestEtcdClusterTLS: etcd demands client certificates, and the nodes
// serve HTTPS and call each other with a pinned CA. Commits replicate and
// a branch moves, all over TLS.
func TestEtcdClusterTLS(t *testing.T) {
	etcd := etcdtest.StartTLS(t, 1)
	f := etcd.TLS()
	dir := t.TempDir()
	caPEM, cert, key := makeCA(t, dir, "127.0.0.1", "127.0.0.2")
	caFile := filepath.Join(dir, "ca.pem")
	must(t, os.WriteFile(caFile, caPEM, 0o644))
	common := []string{"--store", "etcd", "--etcd-endpoints", strings.Join(etcd.Endpoints(), ","),
		"--etcd-ca", f.CA, "--etcd-cert", f.ClientCert, "--etcd-key", f.ClientKey, "--peer-ca", caFile}
	n1 := startServeTLS(t, "n1", "127.0.0.1", caPEM, cert, key, append(common, "--node-id", "n1")...)
	n2 := startServeTLS(t, "n2", "127.0.0.2", caPEM, cert, key,
		append(common, "--node-id", "n2", "--cluster-key-file", filepath.Join(n1.data, "admin-api-key"))...)
	c := &etcdNodes{t: t, etcd: etcd, nodes: []*serveNode{n1, n2}, e: newEnv(t)}
	e := c.e
	e.addRemote(n1, "--ca-cert", caFile)
	e.addRemote(n2, "--ca-cert", caFile)

	e.on(n1, "init", "app")
	db1 := e.pathOn(n1, "app.db")
	writeFile(t, filepath.Join(db1, "f"), "committed over TLS")
	e.commitOn(n1, "app", "one")
	c.waitReplicated(n2, "app", "n1", "n2")
	writeFile(t, filepath.Join(db1, "f"), "moved over TLS")
	e.commitOn(n2, "app", "on n2")
	if got := readFile(t, filepath.Join(e.pathOn(n2, "app.db"), "f")); got != "moved over TLS" {
		t.Fatalf("f on n2 after the move: %q", got)
	}
	if l := e.logOn(n2, "app"); len(l) != 3 || l[1].Message != "Automatic commit while moving from n1 to n2" {
		t.Fatalf("log after the move: %+v", l)
	}
}
