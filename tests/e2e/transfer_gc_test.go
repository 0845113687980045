package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/zfs/zfstest"
)

// prunedOn returns the ids of the commits `dm log --json` on n marks as
// where a pruned history starts.
func (e *env) prunedOn(n *serveNode, dot string) []string {
	e.t.Helper()
	var log []struct {
		ID     string `json:"id"`
		Pruned bool   `json:"pruned"`
	}
	e.jsonOut(&log, "--remote", n.name, "log", "--dot", dot)
	var out []string
	for _, c := range log {
		if c.Pruned {
			out = append(out, c.ID)
		}
	}
	return out
}

// checkShallow checks that dot on n has the history and tree of app on
// a, starting where a's history was pruned, at start.
func (e *env) checkShallow(a, n *serveNode, dot, start string) {
	e.t.Helper()
	if got, want := ids(e.logOn(n, dot)), ids(e.logOn(a, "app")); got != want {
		e.t.Fatalf("%s's history of %s is %s; want %s", n.name, dot, got, want)
	}
	if got := e.prunedOn(n, dot); len(got) != 1 || got[0] != start {
		e.t.Fatalf("%s marks %v as where the history of %s starts; want %s", n.name, got, dot, start)
	}
	if !sameTree(readTree(e.t, e.pathOn(a, "app.db")), readTree(e.t, e.pathOn(n, dot+".db"))) {
		e.t.Fatalf("%s's tree of %s differs from a's", n.name, dot)
	}
}

// gcHistory makes four commits of app on a (an older one already pushed
// to each of holders), keeps the newest two with dm gc and returns the
// id of the oldest kept one.
func (e *env) gcHistory(a *serveNode, holders ...*serveNode) string {
	t := e.t
	t.Helper()
	e.on(a, "init", "app")
	db := e.pathOn(a, "app.db")
	for i, m := range []string{"one", "two", "three", "four"} {
		must(t, os.WriteFile(filepath.Join(db, "data-"+m), randomBytes(uint64(10+i), 256<<10), 0o644))
		writeFile(t, filepath.Join(db, "version"), m)
		e.commitOn(a, "app", m)
		if m == "two" {
			for _, h := range holders {
				e.transfer(a, "push", h.name, "app")
			}
		}
	}
	if out := e.on(a, "gc", "app", "--keep", "2"); !strings.Contains(out, "removed 2 commits") {
		t.Fatalf("dm gc: %q", out)
	}
	log := e.logOn(a, "app")
	if got := e.prunedOn(a, "app"); len(log) != 2 || len(got) != 1 || got[0] != log[1].ID {
		t.Fatalf("after gc --keep 2 a's log is %+v, marked pruned %v", log, got)
	}
	if txt := e.on(a, "log", "--dot", "app"); !strings.Contains(txt, "commit "+log[1].ID+" (pruned)") {
		t.Fatalf("dm log does not show where history was pruned:\n%s", txt)
	}
	return log[1].ID
}

// TestTransferAfterGC: after dm gc --keep, the dot still travels, as a
// shallow history: push, --neutral push, clone, on to a third node, after
// a restart; to a peer that holds older history the push is incremental;
// pulls run both ways; a shallow node stays shallow.
func TestTransferAfterGC(t *testing.T) {
	a := startServe(t, "a", "127.0.0.1")
	b := startServe(t, "b", "127.0.0.2") // holds "one" and "two"
	c := startServe(t, "c", "127.0.0.3")
	d := startServe(t, "d", "127.0.0.4")
	e := newEnv(t)
	for _, n := range []*serveNode{a, b, c, d} {
		e.addRemote(n)
	}
	start := e.gcHistory(a, b)

	if s := e.transfer(a, "push", "c", "app"); s.Commits != 2 {
		t.Fatalf("push after gc: %+v", s)
	}
	e.checkShallow(a, c, "app", start)
	if s := e.transfer(a, "push", "d", "app", "--neutral"); s.Commits != 2 {
		t.Fatalf("--neutral push after gc: %+v", s)
	}
	e.checkShallow(a, d, "app", start)
	e.on(d, "clone", "a", "app", "--local-name", "cloned")
	e.checkShallow(a, d, "cloned", start)
	// On from a shallow node to a third one, after a restart.
	c.stop()
	c.start()
	e.checkShallow(a, c, "app", start)
	e.on(c, "clone", "d", "app", "--local-name", "again")
	e.checkShallow(a, c, "again", start)

	// b holds "two", the parent of the oldest kept commit: its history
	// becomes whole again.
	if s := e.transfer(a, "push", "b", "app"); s.Commits != 2 {
		t.Fatalf("push after gc to a node with older history: %+v", s)
	}
	if lb := e.logOn(b, "app"); len(lb) != 4 || lb[0].ID != e.logOn(a, "app")[0].ID || len(e.prunedOn(b, "app")) != 0 {
		t.Fatalf("b after the push: %+v, pruned %v", lb, e.prunedOn(b, "app"))
	}

	// Pulls both ways: into the pruned a from the shallow c, into the
	// whole b from c; then a push, incremental, to the shallow c.
	writeFile(t, filepath.Join(e.pathOn(c, "app.db"), "version"), "five")
	e.commitOn(c, "app", "five")
	if s := e.transfer(a, "pull", "c", "app"); s.Commits != 1 {
		t.Fatalf("pull into the pruned node: %+v", s)
	}
	if s := e.transfer(b, "pull", "c", "app"); s.Commits != 1 {
		t.Fatalf("pull into the whole node: %+v", s)
	}
	if len(e.logOn(b, "app")) != 5 || len(e.prunedOn(b, "app")) != 0 {
		t.Fatalf("b after the pull: %+v", e.logOn(b, "app"))
	}
	writeFile(t, filepath.Join(e.pathOn(b, "app.db"), "version"), "six")
	e.commitOn(b, "app", "six")
	if s := e.transfer(b, "push", "c", "app"); s.Commits != 1 {
		t.Fatalf("push from the whole node to the shallow one: %+v; want only the new commit", s)
	}
	e.transfer(a, "pull", "c", "app")
	e.checkShallow(a, c, "app", start)
	e.on(c, "verify")
}

// TestTransferAfterGCZFS: a zfs dot whose old snapshots gc destroyed
// still pushes natively to zfs and neutrally to files, and a zfs node
// holding older history takes it incrementally.
func TestTransferAfterGCZFS(t *testing.T) {
	zfstest.Require(t)
	p1, _ := zfstest.Pool(t)
	p2, _ := zfstest.Pool(t)
	p3, _ := zfstest.Pool(t)
	z1 := startServe(t, "z1", "127.0.0.1", "--backend", "zfs", "--zfs-pool", p1, "--pool-size", "1G")
	z2 := startServe(t, "z2", "127.0.0.2", "--backend", "zfs", "--zfs-pool", p2, "--pool-size", "1G")
	z3 := startServe(t, "z3", "127.0.0.3", "--backend", "zfs", "--zfs-pool", p3, "--pool-size", "1G")
	f := startServe(t, "f", "127.0.0.4")
	e := newEnv(t)
	for _, n := range []*serveNode{z1, z2, z3, f} {
		e.addRemote(n)
	}
	start := e.gcHistory(z1, z3)
	if s := e.transfer(z1, "push", "z2", "app"); s.Commits != 2 {
		t.Fatalf("zfs push after gc: %+v", s)
	}
	e.checkShallow(z1, z2, "app", start)
	if s := e.transfer(z2, "push", "f", "app"); s.Commits != 2 {
		t.Fatalf("zfs -> files push of a shallow history: %+v", s)
	}
	e.checkShallow(z1, f, "app", start)
	if s := e.transfer(z1, "push", "z3", "app"); s.Commits != 2 || len(e.logOn(z3, "app")) != 4 {
		t.Fatalf("zfs push after gc to a node with older history: %+v", s)
	}
	writeFile(t, filepath.Join(e.pathOn(z1, "app.db"), "version"), "five")
	e.commitOn(z1, "app", "five")
	if s := e.transfer(z1, "push", "z2", "app"); s.Commits != 1 || s.Bytes > 1<<20 {
		t.Fatalf("incremental zfs push onto a shallow history: %+v", s)
	}
	e.checkShallow(z1, z2, "app", start)
}

// TestTransferAfterGCBtrfs: the same on btrfs, whose gc deletes the
// commits' read-only snapshots.
func TestTransferAfterGCBtrfs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("btrfs transfers need root to loop-mount the nodes' btrfs images")
	}
	b1 := startServe(t, "b1", "127.0.0.1", "--backend", "btrfs", "--pool-size", "512M")
	t.Cleanup(b1.stop)
	b2 := startServe(t, "b2", "127.0.0.2", "--backend", "btrfs", "--pool-size", "512M")
	t.Cleanup(b2.stop)
	e := newEnv(t)
	e.addRemote(b1)
	e.addRemote(b2)
	start := e.gcHistory(b1)
	if s := e.transfer(b1, "push", "b2", "app"); s.Commits != 2 {
		t.Fatalf("btrfs push after gc: %+v", s)
	}
	e.checkShallow(b1, b2, "app", start)
	writeFile(t, filepath.Join(e.pathOn(b1, "app.db"), "version"), "five")
	e.commitOn(b1, "app", "five")
	if s := e.transfer(b1, "push", "b2", "app"); s.Commits != 1 || s.Bytes > 1<<20 {
		t.Fatalf("incremental btrfs push onto a shallow history: %+v", s)
	}
	e.checkShallow(b1, b2, "app", start)
}
