package zfs_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/zfs"
	"github.com/dotmesh-io/dotmesh/backend/zfs/zfstest"
	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// TestNodeKeepsBranches drives the backend through a real Node: reset
// and branch deletion never take another branch's data or history, also
// across a restart (pool exported and imported again, registry reopened,
// reconcile run).
func TestNodeKeepsBranches(t *testing.T) {
	ctx := context.Background()
	pool, dir := zfstest.Pool(t)
	opts := zfs.Options{Pool: pool, DataDir: dir, PoolSize: testPoolSize, Logger: logger()}
	dbPath := filepath.Join(t.TempDir(), "registry.db")
	openNode := func() *dotmesh.Node {
		t.Helper()
		be, err := zfs.Open(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		store, err := bboltstore.Open(dbPath, bboltstore.Options{Logger: logger()})
		if err != nil {
			t.Fatal(err)
		}
		n, err := dotmesh.NewNode(ctx, dotmesh.Options{Store: store, Backends: []dotmesh.StorageBackend{be}, Logger: logger()})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	name := dotmesh.DotName{Namespace: dotmesh.DefaultNamespace, Name: "app"}
	file := func(n *dotmesh.Node, branch string) string {
		t.Helper()
		p, err := n.SubdotPath(ctx, dotmesh.VolumeName{Dot: name, Branch: branch})
		must(err)
		return filepath.Join(p, "data.txt")
	}
	write := func(n *dotmesh.Node, branch, s string) {
		t.Helper()
		must(os.WriteFile(file(n, branch), []byte(s), 0o644))
	}
	check := func(n *dotmesh.Node, branch, want string) {
		t.Helper()
		got, err := os.ReadFile(file(n, branch))
		if err != nil || string(got) != want {
			t.Errorf("%s: data.txt = %q, %v; want %q", branch, got, err, want)
		}
	}
	commit := func(n *dotmesh.Node, branch string) *dotmesh.Commit {
		t.Helper()
		c, err := n.Commit(ctx, name, branch, dotmesh.CommitOptions{Message: "m", Author: "test"})
		must(err)
		return c
	}
	history := func(n *dotmesh.Node, branch string, want ...*dotmesh.Commit) {
		t.Helper()
		log, err := n.Log(ctx, name, branch, 0)
		must(err)
		if len(log) != len(want) {
			t.Fatalf("log of %s has %d commits, want %d", branch, len(log), len(want))
		}
		for i := range want {
			if log[i].ID != want[i].ID {
				t.Errorf("log of %s[%d] = %s, want %s", branch, i, log[i].ID, want[i].ID)
			}
		}
	}

	n := openNode()
	_, err := n.CreateDot(ctx, name, dotmesh.CreateDotOptions{})
	must(err)
	write(n, "master", "1")
	c1 := commit(n, "master")
	write(n, "master", "2")
	c2 := commit(n, "master")
	_, err = n.Checkout(ctx, name, "feature", dotmesh.CheckoutOptions{Create: true})
	must(err)
	write(n, "feature", "feature")
	c3 := commit(n, "feature")

	write(n, "master", "dirty")
	_, err = n.Reset(ctx, name, "master", "HEAD^", dotmesh.ResetOptions{})
	if !errors.Is(err, dotmesh.ErrDirty) {
		t.Fatalf("reset without --hard of a dirty branch: %v, want ErrDirty", err)
	}
	_, err = n.Reset(ctx, name, "master", "HEAD^", dotmesh.ResetOptions{Hard: true})
	must(err)
	check(n, "master", "1")
	check(n, "feature", "feature")
	history(n, "master", c1)
	history(n, "feature", c3, c2, c1)

	// feature is current, and was made from master's commits: the Node
	// keeps master until feature goes.
	if err := n.DeleteBranch(ctx, name, "master"); !errors.Is(err, dotmesh.ErrInUse) {
		t.Fatalf("deleting the origin branch: %v, want ErrInUse", err)
	}
	check(n, "feature", "feature")
	history(n, "feature", c3, c2, c1)
	must(n.Close())

	zfstest.Export(t, pool)
	n = openNode()
	defer n.Close()
	check(n, "feature", "feature")
	history(n, "feature", c3, c2, c1)
	_, err = n.Reset(ctx, name, "feature", string(c2.ID), dotmesh.ResetOptions{Hard: true})
	must(err)
	check(n, "feature", "2")
	_, err = n.Reset(ctx, name, "feature", string(c1.ID), dotmesh.ResetOptions{})
	must(err)
	check(n, "feature", "1")
	history(n, "feature", c1)
}
