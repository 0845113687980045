// Package servertest starts real dotmesh nodes for tests: a bbolt registry
// and the dump backend in a temporary directory, behind the API server on
// an httptest listener. No part is a mock.
package servertest

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/dump"
	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/hooks"
	"github.com/dotmesh-io/dotmesh/server"
)

// Node is a running node and what tests need to reach it.
type Node struct {
	Node    *dotmesh.Node
	Store   dotmesh.ClusterStore // the node's registry, for tests that inspect it
	DataDir string
	Key     string // the admin API key
	Server  *httptest.Server
	URL     string
}

// Logger returns a logger that writes to the test log at debug level when
// the test runs with -v, and nowhere otherwise.
func Logger(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p[:len(p)-min(1, len(p))]))
	return len(p), nil
}

// OpenNode opens a node on dataDir (registry.db and dump/ in it), as the
// daemon lays it out. The caller closes it.
func OpenNode(t testing.TB, dataDir string) (*dotmesh.Node, dotmesh.ClusterStore) {
	t.Helper()
	return OpenNodeWith(t, dataDir, Logger(t), nil)
}

// OpenNodeWith is OpenNode logging to log, telling obs (may be nil) of
// what the node does.
func OpenNodeWith(t testing.TB, dataDir string, log *slog.Logger, obs dotmesh.Observer) (*dotmesh.Node, dotmesh.ClusterStore) {
	t.Helper()
	store, err := bboltstore.Open(filepath.Join(dataDir, "registry.db"), bboltstore.Options{Logger: log, NoSync: true})
	if err != nil {
		t.Fatalf("opening the bbolt registry: %v", err)
	}
	be, err := dump.Open(filepath.Join(dataDir, "dump"), dump.Options{Logger: log})
	if err != nil {
		store.Close()
		t.Fatalf("opening the dump backend: %v", err)
	}
	node, err := dotmesh.NewNode(context.Background(), dotmesh.Options{Store: store, Backends: []dotmesh.StorageBackend{be}, Logger: log, Observer: obs, Hooks: hooks.New(log)})
	if err != nil {
		be.Close()
		store.Close()
		t.Fatalf("starting the node: %v", err)
	}
	return node, store
}

// Start opens a node in a fresh temporary directory, makes its admin key
// and serves the API; all is closed when the test ends.
func Start(t testing.TB) *Node {
	t.Helper()
	return StartWith(t, server.Options{})
}

// StartWith is Start with the server's options; those left empty get
// Start's (a test logger, version "test", the dump backend's alias).
func StartWith(t testing.TB, opts server.Options) *Node {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = Logger(t)
	}
	if opts.Version == "" {
		opts.Version = "test"
	}
	if opts.BackendAliases == nil {
		opts.BackendAliases = map[string]string{dump.UserName: dump.Name}
	}
	dir := t.TempDir()
	node, store := OpenNode(t, dir)
	key, _, err := server.EnsureAdminKey(context.Background(), node, dir)
	if err != nil {
		node.Close()
		t.Fatalf("making the admin key: %v", err)
	}
	srv := httptest.NewServer(server.New(node, opts))
	t.Cleanup(func() {
		srv.Close()
		if err := node.Close(); err != nil {
			t.Errorf("closing the node: %v", err)
		}
	})
	return &Node{Node: node, Store: store, DataDir: dir, Key: key, Server: srv, URL: srv.URL}
}
