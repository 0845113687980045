package zfs

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bt "github.com/dotmesh-io/dotmesh/backend/backendtest"
	"github.com/dotmesh-io/dotmesh/backend/zfs/zfstest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/internal/syncbuf"
)

// TestCommitProvenByWatcher: a write seen by the change watcher since the
// head's snapshot makes the commit its snapshot alone (no `zfs send`
// comparison); without one (no write, a chmod, which makes no event on a
// mount mark, or a write a rollback undid) the exact check decides, as
// before.
func TestCommitProvenByWatcher(t *testing.T) {
	ctx := context.Background()
	pool, dir := zfstest.Pool(t)
	var logs syncbuf.Buffer
	g, err := Open(ctx, Options{Pool: pool, DataDir: dir, PoolSize: 1 << 30, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	b := g.b
	if b.watch == nil {
		t.Fatal("the zfs backend has no change watcher: fanotify is unavailable (the test runs as root on Linux)")
	}
	ref := dotmesh.BranchRef{Dot: dotmesh.NewDotID(), Branch: "master"}
	if err := g.CreateBranch(ctx, ref, nil); err != nil {
		t.Fatal(err)
	}
	root, err := g.SubdotPath(ctx, ref, dotmesh.RootSubdot)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(root, "f")
	bt.WriteTree(t, root, bt.Tree{"f": bt.File(0o644, "one")})
	head := dotmesh.CommitRef{BranchRef: ref, ID: dotmesh.NewCommitID()}
	if _, err := g.Commit(ctx, head); err != nil {
		t.Fatal(err)
	}
	commit := func(what string, wantChanged, wantCompared bool) {
		t.Helper()
		logs.Take()
		zfsChanges.Add(1) // as any other command would: the dot's listing is stale
		c := dotmesh.CommitRef{BranchRef: ref, ID: dotmesh.NewCommitID()}
		_, changed, err := g.CommitIfChanged(ctx, c, head)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		log := logs.Take()
		compared := strings.Contains(log, "send -i")
		if changed != wantChanged || compared != wantCompared {
			t.Fatalf("%s: changed %v, compared with zfs send %v; want %v, %v", what, changed, compared, wantChanged, wantCompared)
		}
		if changed && !compared {
			// Proven: the snapshot is the one command (or ioctl through
			// zfs-fuse's socket), without a listing.
			if n := strings.Count(log, `msg="zfs command"`) + strings.Count(log, `msg="zfs ioctl"`); n != 1 || !strings.Contains(log, "snapshot") {
				t.Fatalf("%s: a proven commit ran %d zfs commands, want the snapshot alone:\n%s", what, n, log)
			}
		}
		if changed {
			head = c
		}
	}
	commit("nothing written", false, true)
	if err := os.WriteFile(file, []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	commit("a write", true, false)
	bt.AssertTree(t, root, bt.Tree{"f": bt.File(0o644, "two")})
	commit("nothing written after a proven commit", false, true)
	if err := os.Chmod(file, 0o600); err != nil {
		t.Fatal(err)
	}
	commit("a chmod", true, true)
	if err := os.WriteFile(file, []byte("three"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := g.Rollback(ctx, ref, head); err != nil {
		t.Fatal(err)
	}
	commit("a write undone by a rollback", false, true)
	if err := os.WriteFile(file, []byte("four"), 0o600); err != nil {
		t.Fatal(err)
	}
	commit("a write after the rollback", true, false) // settled again by the check above
	if err := os.WriteFile(file, []byte("five"), 0o600); err != nil {
		t.Fatal(err)
	}
	commit("a write after that", true, false)
	ids, err := g.Commits(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 5 {
		t.Fatalf("%d commits kept, want 5 (the first, two writes, a chmod, two writes)", len(ids))
	}
}
