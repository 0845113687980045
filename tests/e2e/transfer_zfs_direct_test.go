package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/zfs/zfstest"
)

// directReceives counts the commits n received on the bare connection
// (its log's "received commit" lines with direct true).
func directReceives(t *testing.T, n *serveNode) int {
	t.Helper()
	b, err := os.ReadFile(n.log)
	must(t, err)
	return len(regexp.MustCompile(`received commit.*direct["=:]+true`).FindAll(b, -1))
}

// TestTransferZFSDirect: an incremental zfs push between plain-HTTP nodes
// carries the native stream on the bare connection; the first (complete)
// commit and every commit to a TLS node go framed; all arrive whole.
func TestTransferZFSDirect(t *testing.T) {
	zfstest.Require(t)
	p1, _ := zfstest.Pool(t)
	p2, _ := zfstest.Pool(t)
	p3, _ := zfstest.Pool(t)
	dir := t.TempDir()
	caPEM, certFile, keyFile := makeCA(t, dir, "127.0.0.3")
	z1 := startServe(t, "z1", "127.0.0.1", "--backend", "zfs", "--zfs-pool", p1, "--pool-size", "1G")
	z2 := startServe(t, "z2", "127.0.0.2", "--backend", "zfs", "--zfs-pool", p2, "--pool-size", "1G")
	z3 := startServeTLS(t, "z3", "127.0.0.3", caPEM, certFile, keyFile, "--backend", "zfs", "--zfs-pool", p3, "--pool-size", "1G")
	e := newEnv(t)
	e.addRemote(z1)
	e.addRemote(z2)
	must(t, os.WriteFile(filepath.Join(dir, "ca.pem"), caPEM, 0o644))
	e.addRemote(z3, "--ca-cert", filepath.Join(dir, "ca.pem"))

	e.on(z1, "init", "app")
	db := e.pathOn(z1, "app.db")
	must(t, os.WriteFile(filepath.Join(db, "big"), randomBytes(3, 4<<20), 0o644))
	e.commitOn(z1, "app", "one")
	if s := e.transfer(z1, "push", "z2", "app"); s.Commits != 1 {
		t.Fatalf("first push: %+v", s)
	}
	if n := directReceives(t, z2); n != 0 {
		t.Fatalf("the complete first commit went direct (%d)", n)
	}
	for i, v := range []string{"v2", "v3"} {
		must(t, os.WriteFile(filepath.Join(db, "big"), randomBytes(uint64(4+i), 4<<20), 0o644))
		writeFile(t, filepath.Join(db, "small"), v)
		e.commitOn(z1, "app", v)
		s := e.transfer(z1, "push", "z2", "app")
		if s.Commits != 1 || s.Bytes < 4<<20 || s.Bytes > 5<<20 {
			t.Fatalf("incremental push %s: %+v; want one commit of about 4 MiB", v, s)
		}
		if n := directReceives(t, z2); n != i+1 {
			t.Fatalf("after push %s z2 received %d commit(s) directly; want %d", v, n, i+1)
		}
		if !sameTree(readTree(t, db), readTree(t, e.pathOn(z2, "app.db"))) {
			t.Fatalf("z2's tree differs after push %s", v)
		}
		if ids(e.logOn(z1, "app")) != ids(e.logOn(z2, "app")) {
			t.Fatalf("histories differ after push %s", v)
		}
	}

	// Over TLS: framed, increments too.
	if s := e.transfer(z1, "push", "z3", "app"); s.Commits != 3 {
		t.Fatalf("push to the TLS node: %+v", s)
	}
	writeFile(t, filepath.Join(db, "small"), "v4")
	e.commitOn(z1, "app", "v4")
	if s := e.transfer(z1, "push", "z3", "app"); s.Commits != 1 {
		t.Fatalf("incremental push to the TLS node: %+v", s)
	}
	if n := directReceives(t, z3); n != 0 {
		t.Fatalf("the TLS node received %d commit(s) directly", n)
	}
	if !sameTree(readTree(t, db), readTree(t, e.pathOn(z3, "app.db"))) {
		t.Fatal("z3's tree differs")
	}
	if ids(e.logOn(z1, "app")) != ids(e.logOn(z3, "app")) {
		t.Fatal("histories differ on z3")
	}
}
