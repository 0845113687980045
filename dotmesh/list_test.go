package dotmesh_test

import (
	"context"
	"testing"

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
