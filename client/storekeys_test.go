package client_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/dump"
	"github.com/dotmesh-io/dotmesh/client"
	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/internal/seal"
	"github.com/dotmesh-io/dotmesh/server"
	"github.com/dotmesh-io/dotmesh/server/servertest"
)

// A running node's encrypted store gets and loses passwords through the
// API: its admin adds one, which opens the store after a restart; the
// key the node opened it with goes only with force; a user who is not
// the admin is refused and changes nothing; a plain store has no keys.
func TestStoreKeysOfARunningNode(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cheap := seal.KDFParams{Name: seal.KDFArgon2id, Time: 1, Memory: 1024, Threads: 1}
	open := func(password string, create bool) (*dotmesh.Node, *httptest.Server, string) {
		t.Helper()
		store, err := bboltstore.Open(filepath.Join(dir, "registry.db"), bboltstore.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		be, err := dump.Open(filepath.Join(dir, "dump"), dump.Options{Logger: servertest.Logger(t), Encrypt: create, Password: []byte(password), KDF: cheap})
		if err != nil {
			store.Close()
			t.Fatalf("opening the store with %q: %v", password, err)
		}
		node, err := dotmesh.NewNode(ctx, dotmesh.Options{Store: store, Backends: []dotmesh.StorageBackend{be}, Logger: servertest.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		key, _, err := server.EnsureAdminKey(ctx, node, dir)
		if err != nil {
			t.Fatal(err)
		}
		return node, httptest.NewServer(server.New(node, server.Options{Logger: servertest.Logger(t), Version: "test"})), key
	}
	node, srv, key := open("first", true)
	admin, err := client.New(srv.URL, "", key, client.WithTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := admin.StoreKeys(ctx)
	if err != nil || len(keys) != 1 || !keys[0].InUse || keys[0].KDF != "argon2id" {
		t.Fatalf("StoreKeys of a new encrypted store: %+v, %v", keys, err)
	}
	first := keys[0].ID

	// Someone who is not the admin: refused, nothing changed.
	_, _, secret, err := node.Users().Add(ctx, "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	alice, err := client.New(srv.URL, "alice", secret, client.WithTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.AddStoreKey(ctx, []byte("mine")); !errors.Is(err, dotmesh.ErrPermissionDenied) {
		t.Fatalf("AddStoreKey as alice: %v, want a refusal", err)
	}
	if err := alice.RemoveStoreKey(ctx, first, true); !errors.Is(err, dotmesh.ErrPermissionDenied) {
		t.Fatalf("RemoveStoreKey as alice: %v, want a refusal", err)
	}
	if _, err := alice.StoreKeys(ctx); !errors.Is(err, dotmesh.ErrPermissionDenied) {
		t.Fatalf("StoreKeys as alice: %v, want a refusal", err)
	}
	if _, err := admin.AddStoreKey(ctx, nil); !errors.Is(err, dotmesh.ErrInvalidArgument) {
		t.Fatalf("AddStoreKey with no password: %v", err)
	}
	if keys, _ := admin.StoreKeys(ctx); len(keys) != 1 {
		t.Fatalf("refused calls changed the keys: %+v", keys)
	}

	second, err := admin.AddStoreKey(ctx, []byte("second"))
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.RemoveStoreKey(ctx, first, false); !errors.Is(err, dotmesh.ErrInUse) {
		t.Fatalf("removing the key the node opened the store with, without force: %v", err)
	}
	if err := admin.RemoveStoreKey(ctx, "0123456789abcdef", false); !errors.Is(err, dotmesh.ErrNotFound) {
		t.Fatalf("removing an unknown key: %v", err)
	}
	if err := admin.RemoveStoreKey(ctx, first, true); err != nil {
		t.Fatal(err)
	}
	if err := admin.RemoveStoreKey(ctx, second, true); !errors.Is(err, dotmesh.ErrInUse) {
		t.Fatalf("removing the last key: %v", err)
	}
	// The running node still reads its store; after a restart only the
	// second password opens it.
	if _, err := node.CreateDot(ctx, dotmesh.DotName{Namespace: "admin", Name: "app"}, dotmesh.CreateDotOptions{}); err != nil {
		t.Fatalf("the node after its key went: %v", err)
	}
	srv.Close()
	node.Close()
	if _, err := dump.Open(filepath.Join(dir, "dump"), dump.Options{Password: []byte("first")}); !errors.Is(err, dump.ErrWrongPassword) {
		t.Fatalf("the removed password: %v", err)
	}
	node, srv, key = open("second", false)
	defer func() { srv.Close(); node.Close() }()
	admin, _ = client.New(srv.URL, "", key, client.WithTimeout(time.Minute))
	if keys, err := admin.StoreKeys(ctx); err != nil || len(keys) != 1 || keys[0].ID != second || !keys[0].InUse {
		t.Fatalf("keys after the restart: %+v, %v", keys, err)
	}

	// A plain store has none.
	plain := servertest.Start(t)
	if _, err := newClient(t, plain).StoreKeys(ctx); !errors.Is(err, dotmesh.ErrNotSupported) {
		t.Fatalf("StoreKeys of a plain node: %v", err)
	}
}
