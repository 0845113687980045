package server_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/server"
	"github.com/dotmesh-io/dotmesh/server/servertest"
)

// TestClusterAdminKey: the first node makes the cluster's key; a node
// without it is refused; a wrong key is refused and changes nothing; the
// right key is written to the joining node's data directory.
func TestClusterAdminKey(t *testing.T) {
	ctx := context.Background()
	first, second := t.TempDir(), t.TempDir()
	node, _ := servertest.OpenNode(t, first)
	defer node.Close()

	key, created, err := server.EnsureClusterAdminKey(ctx, node, first, "")
	if err != nil || !created || len(key) != 64 {
		t.Fatalf("first node: %q %v %v", key, created, err)
	}
	if again, created, err := server.EnsureClusterAdminKey(ctx, node, first, ""); err != nil || created || again != key {
		t.Fatalf("restart of the first node: %q %v %v", again, created, err)
	}

	// The second node shares the registry, not the data directory.
	_, _, err = server.EnsureClusterAdminKey(ctx, node, second, "")
	if !errors.Is(err, dotmesh.ErrUnauthorized) || !strings.Contains(err.Error(), "--cluster-key-file") {
		t.Fatalf("a node without the key: %v", err)
	}
	if _, err := os.Stat(filepath.Join(second, server.AdminKeyFile)); !os.IsNotExist(err) {
		t.Fatalf("a refused node wrote a key file: %v", err)
	}
	_, _, err = server.EnsureClusterAdminKey(ctx, node, second, strings.Repeat("a", 64))
	if !errors.Is(err, dotmesh.ErrUnauthorized) || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("a wrong key: %v", err)
	}
	got, created, err := server.EnsureClusterAdminKey(ctx, node, second, key)
	if err != nil || created || got != key {
		t.Fatalf("joining with the key: %q %v %v", got, created, err)
	}
	if b, err := os.ReadFile(filepath.Join(second, server.AdminKeyFile)); err != nil || strings.TrimSpace(string(b)) != key {
		t.Fatalf("joined node's key file: %q %v", b, err)
	}

	// A data directory whose key is not the cluster's is refused, and the
	// cluster's key stays.
	other := t.TempDir()
	if _, _, err := server.EnsureAdminKey(ctx, node, other); err != nil { // single-node: replaces the hash
		t.Fatal(err)
	}
	if _, _, err := server.EnsureClusterAdminKey(ctx, node, first, ""); err == nil {
		t.Fatal("the first node's key was accepted after the registry's changed")
	}
	stored, _ := node.APIKeys().Get(ctx, api.AdminUser)
	if string(stored.Hash) == string(server.HashKey(key)) {
		t.Fatal("test setup: the registry's key did not change")
	}
	if _, _, err := server.EnsureClusterAdminKey(ctx, node, second, ""); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("a node whose key file is not the cluster's: %v", err)
	}
	if again, _ := node.APIKeys().Get(ctx, api.AdminUser); string(again.Hash) != string(stored.Hash) {
		t.Fatal("a refused node changed the registry's key")
	}
}

// TestClusterRoutesSingleNode: outside a cluster the cluster routes say
// so (501), replication is empty, and bad requests are 400.
func TestClusterRoutesSingleNode(t *testing.T) {
	n := servertest.Start(t)
	ok(t, n, 201, "POST", "/v1/dots", `{"name":"app"}`, nil)
	var reps []dotmesh.NodeReplication
	ok(t, n, 200, "GET", "/v1/dots/admin/app/replication", "", &reps)
	if len(reps) != 0 {
		t.Fatalf("replication on a single node: %+v", reps)
	}
	for _, c := range []struct {
		method, path, body string
		want               int
	}{
		{"GET", "/v1/cluster/nodes", "", 501},
		{"POST", "/v1/dots/admin/app/branches/master/take-over", `{}`, 501},
		{"POST", "/v1/dots/admin/app/branches/master/release", `{"to":"n2"}`, 501},
		{"POST", "/v1/dots/admin/app/branches/master/release", `{"to":"../x"}`, 400},
		{"POST", "/v1/dots/admin/app/branches/master/release", `{}`, 400},
		{"POST", "/v1/dots/admin/app/branches/master/release", `{"to":"n2","x":1}`, 400},
		{"POST", "/v1/dots/admin/app/branches/master/take-over", `{"x":1}`, 400},
		{"GET", "/v1/dots/admin/nope/replication", "", 200}, // single node: nothing to say
	} {
		status, b := call(t, n, basic(api.AdminUser, n.Key), c.method, c.path, c.body)
		if status != c.want {
			t.Errorf("%s %s %s: status %d, want %d: %s", c.method, c.path, c.body, status, c.want, b)
		}
	}
	// Only the cluster's admin key moves branches.
	const userKey = "0123456789abcdef0123456789abcdef0123456789abcdef"
	if err := n.Node.APIKeys().Put(context.Background(), dotmesh.APIKey{User: "bob", Hash: server.HashKey(userKey), Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if status, b := call(t, n, basic("bob", userKey), "POST", "/v1/dots/admin/app/branches/master/release", `{"to":"n2"}`); status != 403 {
		t.Fatalf("release by a non-admin user: %d %s", status, b)
	}
}
