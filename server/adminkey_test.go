package server_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/server"
	"github.com/dotmesh-io/dotmesh/server/servertest"
)

func TestAdminKeyFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, server.AdminKeyFile)

	node, _ := servertest.OpenNode(t, dir)
	key, created, err := server.EnsureAdminKey(ctx, node, dir)
	if err != nil || !created {
		t.Fatalf("first EnsureAdminKey: created %v, %v", created, err)
	}
	if len(key) != 64 {
		t.Errorf("key has %d characters, want 64 (256 bits in hex)", len(key))
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %04o, want 0600", fi.Mode().Perm())
	}
	stored, err := node.APIKeys().Get(ctx, api.AdminUser)
	if err != nil || string(stored.Hash) != string(server.HashKey(key)) {
		t.Fatalf("registry holds %v, %v; want the key's hash", stored, err)
	}
	if err := node.Close(); err != nil {
		t.Fatal(err)
	}

	// A restart on the same data directory keeps the key.
	node, _ = servertest.OpenNode(t, dir)
	defer node.Close()
	again, created, err := server.EnsureAdminKey(ctx, node, dir)
	if err != nil || created || again != key {
		t.Fatalf("after restart: key changed %v, created %v, err %v", again != key, created, err)
	}

	// A registry that lost the key (a new registry, say) gets it back.
	if err := node.APIKeys().Put(ctx, dotmesh.APIKey{User: api.AdminUser, Hash: server.HashKey("other")}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := server.EnsureAdminKey(ctx, node, dir); err != nil {
		t.Fatal(err)
	}
	if stored, _ := node.APIKeys().Get(ctx, api.AdminUser); string(stored.Hash) != string(server.HashKey(key)) {
		t.Errorf("EnsureAdminKey did not restore the file's key in the registry")
	}

	// A key file others can read is refused, and nothing is rewritten.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = server.EnsureAdminKey(ctx, node, dir)
	if !errors.Is(err, dotmesh.ErrInvalidArgument) || !strings.Contains(err.Error(), "0644") || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable key file: err = %v", err)
	}
	if data, _ := os.ReadFile(path); strings.TrimSpace(string(data)) != key {
		t.Errorf("the refused key file was changed")
	}
	os.Chmod(path, 0o400) // tighter than 0600 is fine
	if got, _, err := server.EnsureAdminKey(ctx, node, dir); err != nil || got != key {
		t.Errorf("mode 0400: %v", err)
	}

	// Garbage and symlinks are refused with a message saying what to do.
	os.Chmod(path, 0o600)
	os.WriteFile(path, []byte("short\n"), 0o600)
	if _, _, err := server.EnsureAdminKey(ctx, node, dir); err == nil || !strings.Contains(err.Error(), "remove it") {
		t.Errorf("short key: err = %v", err)
	}
	os.Remove(path)
	os.Symlink("/etc/hostname", path)
	if _, _, err := server.EnsureAdminKey(ctx, node, dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("symlink: err = %v", err)
	}
}

func TestHashKey(t *testing.T) {
	if len(server.HashKey("k")) != 32 || string(server.HashKey("a")) == string(server.HashKey("b")) {
		t.Fatal("HashKey is not SHA-256")
	}
}
