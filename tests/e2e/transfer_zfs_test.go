package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/zfs/zfstest"
)

// TestTransferZFS: zfs -> zfs with native incremental streams, and
// zfs -> files and files -> zfs with the neutral stream.
func TestTransferZFS(t *testing.T) {
	zfstest.Require(t)
	p1, _ := zfstest.Pool(t) // destroyed after the nodes are killed (cleanups run last-first)
	p2, _ := zfstest.Pool(t)
	z1 := startServe(t, "z1", "127.0.0.1", "--backend", "zfs", "--zfs-pool", p1, "--pool-size", "1G")
	z2 := startServe(t, "z2", "127.0.0.2", "--backend", "zfs", "--zfs-pool", p2, "--pool-size", "1G")
	f := startServe(t, "f", "127.0.0.3")
	e := newEnv(t)
	for _, n := range []*serveNode{z1, z2, f} {
		e.addRemote(n)
	}
	e.on(z1, "init", "app")
	db := e.pathOn(z1, "app.db")
	must(t, os.WriteFile(filepath.Join(db, "big"), randomBytes(3, 4<<20), 0o644))
	e.commitOn(z1, "app", "one")
	writeFile(t, filepath.Join(db, "small"), "v1")
	e.commitOn(z1, "app", "two")

	s := e.transfer(z1, "push", "z2", "app")
	if s.Commits != 2 {
		t.Fatalf("zfs push: %+v", s)
	}
	if !sameTree(readTree(t, db), readTree(t, e.pathOn(z2, "app.db"))) {
		t.Fatal("z2's tree differs")
	}
	writeFile(t, filepath.Join(db, "small"), "v2")
	e.commitOn(z1, "app", "three")
	s = e.transfer(z1, "push", "z2", "app")
	if s.Commits != 1 || s.Bytes > 1<<20 {
		t.Fatalf("incremental zfs push: %+v; want one small commit", s)
	}
	if ids(e.logOn(z1, "app")) != ids(e.logOn(z2, "app")) {
		t.Fatal("histories differ")
	}
	if got, _ := os.ReadFile(filepath.Join(e.pathOn(z2, "app.db"), "small")); string(got) != "v2" {
		t.Fatalf("z2 has %q", got)
	}

	// zfs -> files: neutral, same commit ids.
	s = e.transfer(z1, "push", "f", "app")
	if s.Commits != 3 || ids(e.logOn(f, "app")) != ids(e.logOn(z1, "app")) {
		t.Fatalf("zfs -> files push: %+v", s)
	}
	if !sameTree(readTree(t, db), readTree(t, e.pathOn(f, "app.db"))) {
		t.Fatal("f's tree differs")
	}
	// files -> zfs: a commit made on f goes back to z1.
	writeFile(t, filepath.Join(e.pathOn(f, "app.db"), "from-files"), "hi")
	e.commitOn(f, "app", "four")
	s = e.transfer(f, "push", "z1", "app")
	if s.Commits != 1 {
		t.Fatalf("files -> zfs push: %+v", s)
	}
	if got, _ := os.ReadFile(filepath.Join(db, "from-files")); string(got) != "hi" {
		t.Fatalf("z1 has %q", got)
	}
	if ids(e.logOn(f, "app")) != ids(e.logOn(z1, "app")) {
		t.Fatal("histories differ after files -> zfs")
	}
}

// TestTransferBtrfs: btrfs -> btrfs with native incremental streams (the
// nodes loop-mount their own btrfs images, so this needs root).
func TestTransferBtrfs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("btrfs transfers need root to loop-mount the nodes' btrfs images")
	}
	b1 := startServe(t, "b1", "127.0.0.1", "--backend", "btrfs", "--pool-size", "512M")
	t.Cleanup(b1.stop) // runs before startServe's kill: unmounts the image
	b2 := startServe(t, "b2", "127.0.0.2", "--backend", "btrfs", "--pool-size", "512M")
	t.Cleanup(b2.stop)
	e := newEnv(t)
	e.addRemote(b1)
	e.addRemote(b2)
	e.on(b1, "init", "app")
	db := e.pathOn(b1, "app.db")
	must(t, os.WriteFile(filepath.Join(db, "big"), randomBytes(4, 4<<20), 0o644))
	e.commitOn(b1, "app", "one")
	if s := e.transfer(b1, "push", "b2", "app"); s.Commits != 1 {
		t.Fatalf("btrfs push: %+v", s)
	}
	writeFile(t, filepath.Join(db, "small"), "v2")
	e.commitOn(b1, "app", "two")
	s := e.transfer(b1, "push", "b2", "app")
	if s.Commits != 1 || s.Bytes > 1<<20 {
		t.Fatalf("incremental btrfs push: %+v; want one small commit", s)
	}
	if !sameTree(readTree(t, db), readTree(t, e.pathOn(b2, "app.db"))) || ids(e.logOn(b1, "app")) != ids(e.logOn(b2, "app")) {
		t.Fatal("b2 differs from b1")
	}
}
