package dotmesh_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// listOnlyStore hides the store's Scanner: the listing then reads commit
// records through List, as on etcd.
type listOnlyStore struct{ dotmesh.ClusterStore }

// ListDots, which counts every dot's history from one scan of the commit
// records (bbolt's Scanner, or List elsewhere), agrees with Status, which
// reads one dot's records: counts after commits on two branches, a
// checkout and a gc that prunes, heads, and usage of empty and written
// dots.
func TestListDotsAgreesWithStatus(t *testing.T) {
	for _, tc := range []struct {
		name string
		wrap func(dotmesh.ClusterStore) dotmesh.ClusterStore
	}{
		{"scanner", nil},
		{"list", func(s dotmesh.ClusterStore) dotmesh.ClusterStore { return listOnlyStore{s} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			e := &env{t: t, dir: t.TempDir()}
			e.open(tc.wrap)
			if tc.wrap == nil {
				_, ok := e.st.(dotmesh.Scanner)
				require.True(t, ok, "the bbolt store is a Scanner")
			}
			for _, n := range []string{"empty", "other"} {
				_, err := e.node.CreateDot(ctx, dotmesh.DotName{Namespace: "admin", Name: n}, dotmesh.CreateDotOptions{})
				require.NoError(t, err)
			}
			_, err := e.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
			require.NoError(t, err)
			check := func(wantApp int) {
				t.Helper()
				list, err := e.node.ListDots(ctx)
				require.NoError(t, err)
				require.Len(t, list, 3)
				for _, got := range list {
					st, err := e.node.Status(ctx, got.Dot.DotName())
					require.NoError(t, err)
					require.Equal(t, st.Commits, got.Commits, got.Dot.Name)
					require.Equal(t, st.Usage, got.Usage, got.Dot.Name)
					require.Equal(t, st.Branches, got.Branches, got.Dot.Name)
					if st.Head == nil {
						require.Nil(t, got.Head, got.Dot.Name)
					} else {
						require.Equal(t, st.Head.ID, got.Head.ID, got.Dot.Name)
						require.Equal(t, st.Head.Message, got.Head.Message, got.Dot.Name)
					}
					if got.Dot.Name == app.Name {
						require.Equal(t, wantApp, got.Commits)
					}
				}
			}
			check(0)
			e.write("app.db", "f", "x") // a written dot before its first commit: dirty
			check(0)
			for i := 0; i < 5; i++ {
				e.commit("m")
			}
			check(5)
			_, err = e.node.CreateBranch(ctx, app, "feature", "HEAD~2")
			require.NoError(t, err)
			_, err = e.node.Checkout(ctx, app, "feature", dotmesh.CheckoutOptions{})
			require.NoError(t, err)
			check(3)
			e.commit("on feature")
			check(4)
			_, err = e.node.Checkout(ctx, app, "master", dotmesh.CheckoutOptions{})
			require.NoError(t, err)
			check(5)
			_, err = e.node.GC(ctx, dotmesh.GCOptions{Dot: &app, Keep: 2})
			require.NoError(t, err)
			st, err := e.node.Status(ctx, app)
			require.NoError(t, err)
			require.Less(t, st.Commits, 5, "gc pruned master's history")
			check(st.Commits)
		})
	}
}

// commitReadsStore counts the reads of commit records (List and Scan of
// commits/), which a listing skips for dots whose records did not change.
type commitReadsStore struct {
	dotmesh.ClusterStore
	reads atomic.Int64
}

func (s *commitReadsStore) List(ctx context.Context, prefix string) ([]dotmesh.KV, error) {
	if strings.HasPrefix(prefix, "commits/") {
		s.reads.Add(1)
	}
	return s.ClusterStore.List(ctx, prefix)
}

func (s *commitReadsStore) Scan(ctx context.Context, prefix string, fn func(key, value []byte) error) error {
	if strings.HasPrefix(prefix, "commits/") {
		s.reads.Add(1)
	}
	return s.ClusterStore.(dotmesh.Scanner).Scan(ctx, prefix, fn)
}

// newCountedDot opens a node whose store counts the reads of commit
// records, with dot app of three commits.
func newCountedDot(t *testing.T) (*env, *commitReadsStore) {
	e := &env{t: t, dir: t.TempDir()}
	var cs *commitReadsStore
	e.open(func(s dotmesh.ClusterStore) dotmesh.ClusterStore { cs = &commitReadsStore{ClusterStore: s}; return cs })
	_, err := e.node.CreateDot(context.Background(), app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	for i := 0; i < 3; i++ {
		e.commit("m")
	}
	return e, cs
}

// A listing remembers each dot's history count and head while its
// commit records stay as they were: a second listing reads none of them;
// a commit through the node is seen at once, and a change another node
// makes (here: the store written directly, a record deleted as a gc
// elsewhere would) through the watch on the records, within a second.
func TestListDotsRemembersHistories(t *testing.T) {
	ctx := context.Background()
	e, cs := newCountedDot(t)
	count := func() int {
		t.Helper()
		list, err := e.node.ListDots(ctx)
		require.NoError(t, err)
		require.Len(t, list, 1)
		return list[0].Commits
	}
	require.Equal(t, 3, count())
	// The watch starts with the first listing; once it runs, a listing
	// is remembered and the next reads no commit record.
	require.Eventually(t, func() bool {
		count()
		before := cs.reads.Load()
		return count() == 3 && cs.reads.Load() == before
	}, 5*time.Second, 10*time.Millisecond, "a listing of unchanged dots reads their commit records again")
	e.commit("fourth")
	require.Equal(t, 4, count(), "a commit through the node is listed at once")
	st, err := e.node.Status(ctx, app)
	require.NoError(t, err)
	cs2, _, err := e.node.LogPage(ctx, app, "", 0, 10)
	require.NoError(t, err)
	require.Len(t, cs2, 4)
	oldest := cs2[len(cs2)-1]
	require.NoError(t, e.st.Delete(ctx, "commits/"+string(st.Dot.ID)+"/"+string(oldest.ID)))
	require.Eventually(t, func() bool { return count() == 3 }, 5*time.Second, 10*time.Millisecond,
		"a commit record deleted by another writer is not seen by the listing")
}

// A dot before its first commit lists clean while its tree is empty (the
// files backend remembers that), and the next listing after any write
// into the tree, by any path, shows it: a file written through the dot's
// path, a directory through a symlink to the tree, each removed again.
func TestListDotsSeesWritesToEmptyTrees(t *testing.T) {
	ctx := context.Background()
	e := &env{t: t, dir: t.TempDir()}
	e.open(nil)
	fresh := dotmesh.DotName{Namespace: "admin", Name: "fresh"}
	_, err := e.node.CreateDot(ctx, fresh, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	usage := func() dotmesh.Usage {
		t.Helper()
		list, err := e.node.ListDots(ctx)
		require.NoError(t, err)
		require.Len(t, list, 1)
		require.Empty(t, list[0].Error)
		return list[0].Usage
	}
	root := e.path("fresh.__root__", "")
	alias := filepath.Join(e.dir, "alias")
	require.NoError(t, os.Symlink(root, alias))
	for i := 0; i < 3; i++ {
		require.Equal(t, dotmesh.Usage{}, usage(), "round %d: empty", i)
		f := filepath.Join(root, "f")
		require.NoError(t, os.WriteFile(f, []byte("hello"), 0o644))
		require.Equal(t, dotmesh.Usage{Size: 5, DirtyBytes: 5, Dirty: true}, usage(), "round %d: a file written", i)
		require.NoError(t, os.Remove(f))
		require.Equal(t, dotmesh.Usage{}, usage(), "round %d: emptied", i)
		l := filepath.Join(alias, "l")
		require.NoError(t, os.Symlink("target", l))
		require.Equal(t, dotmesh.Usage{Dirty: true}, usage(), "round %d: a symlink made through another path", i)
		require.NoError(t, os.Remove(l))
	}
}
