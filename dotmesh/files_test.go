package dotmesh_test

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// plainBackend is the real dump backend with only the StorageBackend
// methods: the Node reads its commits through scratch branches, as it
// does zfs's and btrfs's.
type plainBackend struct{ dotmesh.StorageBackend }

// filesEnvs runs fn with a node whose backend answers from its records
// (TreeReader) and with one that reads scratch branches.
func filesEnvs(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Run("TreeReader", func(t *testing.T) {
		e := newEnv(t)
		var be dotmesh.StorageBackend = e.be
		_, ok := be.(dotmesh.TreeReader)
		require.True(t, ok, "the dump backend reads trees from its records")
		fn(t, e)
	})
	t.Run("ScratchBranch", func(t *testing.T) {
		e := &env{t: t, dir: t.TempDir(), wrapBe: func(b dotmesh.StorageBackend) dotmesh.StorageBackend { return plainBackend{b} }}
		e.open(nil)
		fn(t, e)
		// Scratch branches are kept for the next read, and go at Close.
		e.reopen()
		refs, err := e.be.Branches(context.Background())
		require.NoError(t, err)
		require.Len(t, refs, 1, "Close removes the scratch branches: %v", refs)
	})
}

func (e *env) path(v, rel string) string {
	name, err := dotmesh.ParseVolumeName(v)
	require.NoError(e.t, err)
	p, err := e.node.SubdotPath(context.Background(), name)
	require.NoError(e.t, err)
	return filepath.Join(p, rel)
}

func names(p *dotmesh.FilesPage) []string {
	var out []string
	for _, e := range p.Entries {
		out = append(out, e.Path)
	}
	return out
}

func changeSet(cs []dotmesh.FileChange) map[string]dotmesh.FileChange {
	m := map[string]dotmesh.FileChange{}
	for _, c := range cs {
		m[c.Path] = c
	}
	return m
}

func TestFilesListReadChanges(t *testing.T) {
	filesEnvs(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		f := e.node.Files()
		_, err := e.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
		require.NoError(t, err)
		e.write("app.db", "a", "one")
		e.write("app.db", "same", "unchanged")
		require.NoError(t, os.MkdirAll(e.path("app.db", "sub"), 0o755))
		e.write("app.db", "sub/b", "bee")
		e.write("app", "f", "eff")
		require.NoError(t, os.Symlink("../../../../etc/passwd", e.path("app.db", "link")))
		c1 := e.commit("c1")

		root, err := f.List(ctx, app, "", "HEAD", "", "", 10)
		require.NoError(t, err)
		require.Equal(t, []string{"__default__", "db"}, names(root))
		require.True(t, root.Entries[0].Mode.IsDir())

		p1, err := f.List(ctx, app, "", "HEAD", "db", "", 2)
		require.NoError(t, err)
		require.Equal(t, []string{"db/a", "db/link"}, names(p1))
		require.Equal(t, "link", p1.Next)
		require.Equal(t, int64(3), p1.Entries[0].Size)
		require.Equal(t, os.FileMode(0o644), p1.Entries[0].Mode)
		require.Equal(t, "../../../../etc/passwd", p1.Entries[1].Target)
		require.NotZero(t, p1.Entries[1].Mode&os.ModeSymlink)
		p2, err := f.List(ctx, app, "", "HEAD", "db", p1.Next, 2)
		require.NoError(t, err)
		require.Equal(t, []string{"db/same", "db/sub"}, names(p2))
		require.Empty(t, p2.Next, "the last page has no next")

		data, more, err := f.Read(ctx, app, "", "HEAD", "db/a", 100)
		require.NoError(t, err)
		require.Equal(t, "one", string(data))
		require.False(t, more)
		data, more, err = f.Read(ctx, app, "", "HEAD", "db/sub/b", 2)
		require.NoError(t, err)
		require.Equal(t, "be", string(data))
		require.True(t, more, "a longer file says so")
		for _, bad := range []struct {
			path string
			max  int64
			want error
		}{
			{"db/link", 10, dotmesh.ErrInvalidArgument},
			{"db/sub", 10, dotmesh.ErrInvalidArgument},
			{"", 10, dotmesh.ErrInvalidArgument},
			{"db/nope", 10, dotmesh.ErrNotFound},
			{"db/a", 0, dotmesh.ErrInvalidArgument},
			{"db/a", dotmesh.MaxFileRead + 1, dotmesh.ErrInvalidArgument},
		} {
			_, _, err := f.Read(ctx, app, "", "HEAD", bad.path, bad.max)
			require.ErrorIs(t, err, bad.want, "Read %q max %d", bad.path, bad.max)
		}

		added, more, err := f.Changes(ctx, app, "", "HEAD", 100)
		require.NoError(t, err)
		require.False(t, more)
		var paths []string
		for _, c := range added {
			require.Equal(t, dotmesh.ChangeAdded, c.Kind, c.Path)
			paths = append(paths, c.Path)
		}
		require.Equal(t, []string{"__default__", "__default__/f", "db", "db/a", "db/link", "db/same", "db/sub", "db/sub/b"}, paths, "a first commit adds everything")
		require.Equal(t, int64(3), changeSet(added)["db/a"].NewSize)

		// Same size, new bytes; a file removed, one added; a mode changed;
		// an mtime alone changed.
		e.write("app.db", "a", "two")
		require.NoError(t, os.Remove(e.path("app", "f")))
		e.write("app.db", "new", "newer")
		require.NoError(t, os.Chmod(e.path("app.db", "sub/b"), 0o600))
		old := time.Now().Add(-time.Hour)
		require.NoError(t, os.Chtimes(e.path("app.db", "same"), old, old))
		e.commit("c2")
		got, more, err := f.Changes(ctx, app, "", "HEAD", 100)
		require.NoError(t, err)
		require.False(t, more)
		require.Equal(t, []dotmesh.FileChange{
			{Path: "__default__/f", Kind: dotmesh.ChangeRemoved, OldSize: 3},
			{Path: "db/a", Kind: dotmesh.ChangeModified, OldSize: 3, NewSize: 3},
			{Path: "db/new", Kind: dotmesh.ChangeAdded, NewSize: 5},
			{Path: "db/sub/b", Kind: dotmesh.ChangeModified, OldSize: 3, NewSize: 3},
		}, got)
		two, more, err := f.Changes(ctx, app, "", "HEAD", 2)
		require.NoError(t, err)
		require.True(t, more, "a limit below the number of changes says there are more")
		require.Equal(t, got[:2], two)

		// The parent still reads as it was.
		data, _, err = f.Read(ctx, app, "", string(c1.ID), "db/a", 100)
		require.NoError(t, err)
		require.Equal(t, "one", string(data))
		p, err := f.List(ctx, app, "", "HEAD^", "__default__", "", 10)
		require.NoError(t, err)
		require.Equal(t, []string{"__default__/f"}, names(p))
	})
}

func TestFilesBadInput(t *testing.T) {
	filesEnvs(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		f := e.node.Files()
		_, err := e.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
		require.NoError(t, err)
		_, err = f.List(ctx, app, "", "HEAD", "", "", 10)
		require.ErrorIs(t, err, dotmesh.ErrNotFound, "a branch without commits")
		e.write("app.db", "a", "one")
		e.commit("c1")
		for _, p := range []string{"/etc", "..", "../x", "db/../db", "db/", "./db", "db//a", "db/.", "a\x00b"} {
			_, err := f.List(ctx, app, "", "HEAD", p, "", 10)
			require.ErrorIs(t, err, dotmesh.ErrInvalidArgument, "List %q", p)
			_, _, err = f.Read(ctx, app, "", "HEAD", p, 10)
			require.ErrorIs(t, err, dotmesh.ErrInvalidArgument, "Read %q", p)
		}
		_, err = f.List(ctx, app, "", "HEAD", "nope", "", 10)
		require.ErrorIs(t, err, dotmesh.ErrNotFound, "a missing directory")
		_, err = f.List(ctx, app, "", "HEAD", "db/a", "", 10)
		require.ErrorIs(t, err, dotmesh.ErrInvalidArgument, "a file is no directory")
		_, err = f.List(ctx, app, "", "HEAD", "", "", 0)
		require.ErrorIs(t, err, dotmesh.ErrInvalidArgument, "a zero limit")
		_, _, err = f.Changes(ctx, app, "", "HEAD", 0)
		require.ErrorIs(t, err, dotmesh.ErrInvalidArgument, "a zero limit")
		_, err = f.List(ctx, dotmesh.DotName{Namespace: "admin", Name: "nope"}, "", "HEAD", "", "", 10)
		require.ErrorIs(t, err, dotmesh.ErrNotFound, "a missing dot")
		_, err = f.List(ctx, app, "nope", "HEAD", "", "", 10)
		require.ErrorIs(t, err, dotmesh.ErrNotFound, "a missing branch")
		_, _, err = f.Read(ctx, app, "", "abcdef0123", "db/a", 10)
		require.ErrorIs(t, err, dotmesh.ErrNotFound, "a missing commit")
		_, _, err = f.Changes(ctx, app, "", "HEAD~5", 10)
		require.ErrorIs(t, err, dotmesh.ErrNotFound, "a ref before the first commit")
	})
}

// TestFilesChangesOfPrunedCommit: where gc made history start, every
// path counts as added.
func TestFilesChangesOfPrunedCommit(t *testing.T) {
	filesEnvs(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		_, err := e.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
		require.NoError(t, err)
		cs := e.commitSeries("c1", "c2", "c3")
		_, err = e.node.GC(ctx, dotmesh.GCOptions{Dot: &app, Keep: 2})
		require.NoError(t, err)
		require.Equal(t, []dotmesh.CommitID{cs[1].ID}, e.prunedAt(""))
		got, more, err := e.node.Files().Changes(ctx, app, "", "HEAD^", 100)
		require.NoError(t, err)
		require.False(t, more)
		var paths []string
		for _, c := range got {
			require.Equal(t, dotmesh.ChangeAdded, c.Kind)
			paths = append(paths, c.Path)
		}
		require.True(t, sort.StringsAreSorted(paths))
		require.Equal(t, []string{"__default__", "__default__/c1", "__default__/c2", "__default__/f"}, paths)
		// Its child still compares with it.
		got, _, err = e.node.Files().Changes(ctx, app, "", "HEAD", 100)
		require.NoError(t, err)
		require.Equal(t, []dotmesh.FileChange{
			{Path: "__default__/c3", Kind: dotmesh.ChangeAdded, NewSize: 2},
			{Path: "__default__/f", Kind: dotmesh.ChangeModified, OldSize: 2, NewSize: 2},
		}, got)
	})
}

func TestCommitReportsAddedBytes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	e.write("app", "f", string(make([]byte, 100000)))
	c := e.commit("c1")
	n, err := strconv.ParseInt(c.Info[dotmesh.InfoAddedBytes], 10, 64)
	require.NoError(t, err, "Info %v", c.Info)
	require.Positive(t, n)
	c = e.commit("again")
	require.Equal(t, "0", c.Info[dotmesh.InfoAddedBytes], "an unchanged tree adds nothing")
}

// TestFilesScratchLeftByACrashIsRemoved: a scratch branch that a crash
// left (made from a commit, never committed to) goes at the next start.
func TestFilesScratchLeftByACrashIsRemoved(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	d, err := e.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	e.write("app", "f", "x")
	c := e.commit("c1")
	ref := c.Ref()
	require.NoError(t, e.be.CreateBranch(ctx, dotmesh.BranchRef{Dot: d.ID, Branch: "_files-0123456789abcdef"}, &ref))
	e.reopen()
	refs, err := e.be.Branches(ctx)
	require.NoError(t, err)
	require.Equal(t, []dotmesh.BranchRef{{Dot: d.ID, Branch: dotmesh.DefaultBranch}}, refs)
}

// TestFilesScratchKeptAndDropped: where commits are read through scratch
// branches, diffing the same commits again reuses them, and deleting the
// dot's data (a branch, the dot) removes them first.
func TestFilesScratchKeptAndDropped(t *testing.T) {
	ctx := context.Background()
	e := &env{t: t, dir: t.TempDir(), wrapBe: func(b dotmesh.StorageBackend) dotmesh.StorageBackend { return plainBackend{b} }}
	e.open(nil)
	_, err := e.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	scratch := func() int {
		refs, err := e.be.Branches(ctx)
		require.NoError(t, err)
		n := 0
		for _, r := range refs {
			if r.Branch != dotmesh.DefaultBranch && r.Branch != "other" {
				n++
			}
		}
		return n
	}
	e.write("app", "f", "one")
	c1 := e.commit("c1")
	e.write("app", "f", "two")
	c2 := e.commit("c2")
	for range 3 {
		d, err := e.node.Changes().Diff(ctx, app, dotmesh.DiffOptions{From: string(c1.ID), To: string(c2.ID)})
		require.NoError(t, err)
		require.Equal(t, 1, d.Stat.Modified)
		require.Equal(t, 2, scratch(), "one scratch branch per commit, reused")
	}
	_, err = e.node.Files().List(ctx, app, "", string(c1.ID), "", "", 10)
	require.NoError(t, err)
	require.Equal(t, 2, scratch(), "listing a commit reuses its scratch branch")

	_, err = e.node.CreateBranch(ctx, app, "other", string(c2.ID))
	require.NoError(t, err)
	_, err = e.node.Files().List(ctx, app, "other", "HEAD", "", "", 10)
	require.NoError(t, err)
	require.NoError(t, e.node.DeleteBranch(ctx, app, "other"))
	require.Equal(t, 0, scratch(), "deleting a branch removes the dot's scratch branches first")

	_, err = e.node.Files().List(ctx, app, "", string(c1.ID), "", "", 10)
	require.NoError(t, err)
	require.Equal(t, 1, scratch())
	require.NoError(t, e.node.DeleteDot(ctx, app))
	refs, err := e.be.Branches(ctx)
	require.NoError(t, err)
	require.Empty(t, refs, "deleting the dot leaves no storage")
}
