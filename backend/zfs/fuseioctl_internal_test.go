package zfs

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/zfs/internal/fusesock"
	"github.com/dotmesh-io/dotmesh/backend/zfs/zfstest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// TestCommitsThroughFuseSocket: with zfs-fuse, a commit's snapshot goes
// through its command socket, tagged with the branch as the command tags
// it, and its failures are the command's kinds; with NoFuseSocket the
// command takes it.
func TestCommitsThroughFuseSocket(t *testing.T) {
	ctx := context.Background()
	opts := testPoolOptions(t)
	g := openTest(t, opts)
	ref := newTestBranch(t, g)
	before := socketSnapshots.Load()
	if _, err := os.Stat("/dev/zfs"); err == nil {
		// OpenZFS: the command takes every snapshot.
		if _, err := g.Commit(ctx, dotmesh.CommitRef{BranchRef: ref, ID: dotmesh.NewCommitID()}); err != nil {
			t.Fatal(err)
		}
		if g.b.z.sock.Load() != nil || socketSnapshots.Load() != before {
			t.Fatal("with OpenZFS's /dev/zfs the backend took a snapshot through zfs-fuse's socket")
		}
		return
	}
	if g.b.z.sock.Load() == nil {
		t.Fatalf("zfs-fuse runs (no /dev/zfs), but the backend takes no snapshot through its socket %s", DefaultFuseSocket)
	}
	c := dotmesh.CommitRef{BranchRef: ref, ID: dotmesh.NewCommitID()}
	if _, err := g.Commit(ctx, c); err != nil {
		t.Fatal(err)
	}
	if n := socketSnapshots.Load() - before; n != 1 {
		t.Fatalf("the commit took %d snapshots through the socket, want 1", n)
	}
	inv, err := g.b.inventory(ctx, ref.Dot)
	if err != nil {
		t.Fatal(err)
	}
	s := inv.commit(c.ID)
	if s == nil {
		t.Fatalf("commit %s has no snapshot in the listing", c.ID)
	}
	if got := strings.TrimSpace(zfstest.ZFS(t, "get", "-H", "-o", "value", userBranchProp, s.snap().String())); got != "master" {
		t.Fatalf("%s of the commit's snapshot = %q, want master", userBranchProp, got)
	}
	err = g.b.z.snapshot(ctx, s.snap(), mustProp(userBranchProp, "master"))
	var ce *CmdError
	if !errors.Is(err, ErrExists) || !errors.Is(err, dotmesh.ErrAlreadyExists) || !errors.As(err, &ce) || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("a snapshot taken twice: %v, want ErrExists in a CmdError", err)
	}
	gone := snapshot{fs: dataset{opts.Pool + "/nothing"}, name: "x"}
	if err := g.b.z.snapshot(ctx, gone); !errors.Is(err, ErrNoDataset) {
		t.Fatalf("a snapshot of a missing file system: %v, want ErrNoDataset", err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}

	opts.FuseSocket = NoFuseSocket
	g = openTest(t, opts)
	before = socketSnapshots.Load()
	c = dotmesh.CommitRef{BranchRef: ref, ID: dotmesh.NewCommitID()}
	if _, err := g.Commit(ctx, c); err != nil {
		t.Fatal(err)
	}
	if n := socketSnapshots.Load() - before; n != 0 || g.b.z.sock.Load() != nil {
		t.Fatalf("with NoFuseSocket %d snapshots went through the socket", n)
	}
}

// TestFuseSocketFallsBackToCommand: a socket nobody serves, and a daemon
// there that speaks another layout, leave the snapshot to the command;
// Open does not keep the first, and the second is not asked again.
func TestFuseSocketFallsBackToCommand(t *testing.T) {
	ctx := context.Background()
	opts := testPoolOptions(t)
	opts.FuseSocket = filepath.Join(t.TempDir(), "nobody")
	g := openTest(t, opts)
	ref := newTestBranch(t, g)
	before := socketSnapshots.Load()
	commit := func(what string) {
		t.Helper()
		if _, err := g.Commit(ctx, dotmesh.CommitRef{BranchRef: ref, ID: dotmesh.NewCommitID()}); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	if g.b.z.sock.Load() != nil {
		t.Fatal("Open kept a socket nobody serves")
	}
	commit("no daemon at the socket")

	// A daemon of another layout: it asks for a zfs_cmd_t of another size.
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "other"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	asked := make(chan int, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			req := make([]byte, 32)
			if _, err := io.ReadFull(c, req); err == nil {
				m := make([]byte, 32)
				binary.LittleEndian.PutUint32(m, 2) // COPYIN_REQ
				binary.LittleEndian.PutUint64(m[8:], binary.LittleEndian.Uint64(req[16:]))
				binary.LittleEndian.PutUint64(m[16:], 5440) // a MAXPATHLEN 1024 layout
				_, _ = c.Write(m)
				n, _ := io.Copy(io.Discard, c)
				asked <- int(n)
			}
			c.Close()
		}
	}()
	g.b.z.sock.Store(fusesock.New(ln.Addr().String()))
	commit("a daemon of another layout")
	if n := <-asked; n != 0 {
		t.Fatalf("the client sent a daemon of another layout %d bytes of its command", n)
	}
	if g.b.z.sock.Load() != nil {
		t.Fatal("a daemon of another layout is asked again")
	}
	commit("after it")
	if n := socketSnapshots.Load() - before; n != 0 {
		t.Fatalf("%d snapshots counted as taken through the socket", n)
	}
	if ids, err := g.Commits(ctx, ref); err != nil || len(ids) != 3 {
		t.Fatalf("commits after the fallbacks: %v, %v; want 3", ids, err)
	}
}
