package hooks_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/backendtest/pgcrash"
	"github.com/dotmesh-io/dotmesh/backend/zfs"
	"github.com/dotmesh-io/dotmesh/backend/zfs/zfstest"
	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/hooks"
)

// hookedTarget is a pgcrash target on a real Node with the hook runner:
// once PostgreSQL runs it sets the dot's quiesce hook to postgresql.
type hookedTarget struct {
	t       *testing.T
	ctx     context.Context
	node    *dotmesh.Node
	name    dotmesh.DotName
	commits []*dotmesh.Commit
}

func (h *hookedTarget) SubdotPath(s string) (string, error) {
	return h.node.SubdotPath(h.ctx, dotmesh.VolumeName{Dot: h.name, Subdot: s})
}

func (h *hookedTarget) Commit(msg string) (string, error) {
	c, err := h.node.Commit(h.ctx, h.name, "", dotmesh.CommitOptions{Message: msg, Author: "pghook", AllowEmpty: true})
	if err != nil {
		return "", err
	}
	h.commits = append(h.commits, c)
	return string(c.ID), nil
}

func (h *hookedTarget) ResetHard(commit string) error {
	_, err := h.node.Reset(h.ctx, h.name, "", commit, dotmesh.ResetOptions{Hard: true})
	return err
}

func (h *hookedTarget) PostgresStarted(sock string) error {
	_, err := h.node.SetHook(h.ctx, h.name, dotmesh.Hook{Stage: dotmesh.HookQuiesce, Kind: dotmesh.HookPostgreSQL,
		URL: "postgres://postgres@/postgres?host=" + sock})
	return err
}

// TestPostgresHookOnZFS: a zfs dot (zfs-fuse) holding a real PostgreSQL
// data directory under an insert load, with the postgresql quiesce hook:
// the commit is application-consistent, and after a hard reset to it
// PostgreSQL recovers by itself to a gap-free prefix of the rows (the
// pgcrash scenario), replaying only the WAL written after the hook's
// CHECKPOINT, which came after the commit started.
func TestPostgresHookOnZFS(t *testing.T) {
	pool, dir := zfstest.Pool(t)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	be, err := zfs.Open(context.Background(), zfs.Options{Pool: pool, DataDir: dir, PoolSize: 1 << 30, Logger: log})
	if err != nil {
		t.Fatalf("zfs.Open: %v", err)
	}
	store, err := bboltstore.Open(filepath.Join(t.TempDir(), "registry.db"), bboltstore.Options{})
	if err != nil {
		be.Close()
		t.Fatal(err)
	}
	node, err := dotmesh.NewNode(context.Background(), dotmesh.Options{Store: store, Backends: []dotmesh.StorageBackend{be}, Logger: log, Hooks: hooks.New(log)})
	if err != nil {
		store.Close()
		be.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	target := &hookedTarget{t: t, ctx: context.Background(), node: node, name: dotmesh.DotName{Namespace: dotmesh.DefaultNamespace, Name: "pghook"}}
	if _, err := node.CreateDot(target.ctx, target.name, dotmesh.CreateDotOptions{Backend: be.Name()}); err != nil {
		t.Fatal(err)
	}
	res := pgcrash.Scenario(t, target)
	if len(target.commits) != 1 {
		t.Fatalf("%d commits, want the scenario's one", len(target.commits))
	}
	c := target.commits[0]
	if c.Info[dotmesh.InfoConsistency] != dotmesh.ConsistencyApplication || c.Info[dotmesh.InfoConsistencyHook] != dotmesh.HookPostgreSQL {
		t.Errorf("the commit records %q via %q, want %q via %q", c.Info[dotmesh.InfoConsistency], c.Info[dotmesh.InfoConsistencyHook], dotmesh.ConsistencyApplication, dotmesh.HookPostgreSQL)
	}
	if res.RedoStart != 0 && res.RedoStart < res.BeforeCommit {
		t.Errorf("recovery replayed from %X, before the commit started at %X: the hook's CHECKPOINT did not shorten it", res.RedoStart, res.BeforeCommit)
	}
	t.Logf("WAL replayed after the reset: %d bytes", res.RedoBytes())

	// fsfreeze of a zfs dot's root (a dataset, a file system of its own):
	// zfs-fuse cannot freeze (FUSE has no freeze), so the commit is refused
	// naming fsfreeze; either way the dot is left writable.
	frozen := dotmesh.DotName{Namespace: dotmesh.DefaultNamespace, Name: "frozen"}
	if _, err := node.CreateDot(target.ctx, frozen, dotmesh.CreateDotOptions{Backend: be.Name()}); err != nil {
		t.Fatal(err)
	}
	// Without a hook, a zfs commit is crash-consistent.
	plain, err := node.Commit(target.ctx, frozen, "", dotmesh.CommitOptions{Message: "plain", AllowEmpty: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := plain.Info[dotmesh.InfoConsistency]; got != dotmesh.ConsistencyCrash || plain.Info[dotmesh.InfoConsistencyHook] != "" {
		t.Errorf("a zfs commit without hooks records %q (hook %q), want %q", got, plain.Info[dotmesh.InfoConsistencyHook], dotmesh.ConsistencyCrash)
	}
	if _, err := node.SetHook(target.ctx, frozen, dotmesh.Hook{Stage: dotmesh.HookQuiesce, Kind: dotmesh.HookFSFreeze, Subdot: dotmesh.RootSubdot}); err != nil {
		t.Fatal(err)
	}
	root, err := node.SubdotPath(target.ctx, dotmesh.VolumeName{Dot: frozen, Subdot: dotmesh.RootSubdot})
	if err != nil {
		t.Fatal(err)
	}
	c, err = node.Commit(target.ctx, frozen, "", dotmesh.CommitOptions{Message: "frozen", AllowEmpty: true})
	var he *dotmesh.HookError
	switch {
	case err == nil:
		t.Logf("this zfs froze: the commit is %s", c.Info[dotmesh.InfoConsistency])
	case errors.As(err, &he) && strings.Contains(he.Problem, "fsfreeze"):
		t.Logf("zfs-fuse cannot be frozen: %v", err)
	default:
		t.Errorf("commit with fsfreeze on a zfs dot: %v", err)
	}
	waiting, done := blocked(10*time.Second, func() error { return os.WriteFile(filepath.Join(root, "after"), []byte("x"), 0o644) })
	if waiting {
		t.Fatal("the zfs dot is still frozen after the commit")
	}
	if err := <-done; err != nil {
		t.Error(err)
	}
}
