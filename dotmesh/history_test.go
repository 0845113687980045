package dotmesh_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// LogPage pages through Log's answer: the same commits, in the same
// order, with the same pruned mark, one page at a time.
func TestLogPageMatchesLog(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	for i := 0; i < 12; i++ {
		_, err := e.node.Commit(ctx, app, "", dotmesh.CommitOptions{AllowEmpty: true, Message: fmt.Sprint("c", i), Metadata: map[string]string{"i": fmt.Sprint(i)}})
		require.NoError(t, err)
	}
	all, err := e.node.Log(ctx, app, "", 0)
	require.NoError(t, err)
	require.Len(t, all, 12)
	var paged []*dotmesh.Commit
	for skip := 0; ; skip += 5 {
		page, more, err := e.node.LogPage(ctx, app, "", skip, 5)
		require.NoError(t, err)
		paged = append(paged, page...)
		require.Equal(t, skip+5 < 12, more, "skip %d", skip)
		if !more {
			break
		}
	}
	require.Equal(t, all, paged)
	require.Equal(t, "11", paged[0].Metadata["i"])

	// Past the end: nothing, no error. A limited Log is the first page.
	page, more, err := e.node.LogPage(ctx, app, "", 12, 5)
	require.NoError(t, err)
	require.Empty(t, page)
	require.False(t, more)
	first, err := e.node.Log(ctx, app, "", 3)
	require.NoError(t, err)
	require.Equal(t, all[:3], first)

	_, _, err = e.node.LogPage(ctx, app, "", -1, 5)
	require.ErrorIs(t, err, dotmesh.ErrInvalidArgument)
	_, _, err = e.node.LogPage(ctx, app, "", 0, 0)
	require.ErrorIs(t, err, dotmesh.ErrInvalidArgument)
	_, _, err = e.node.LogPage(ctx, dotmesh.DotName{Namespace: "admin", Name: "nosuch"}, "", 0, 5)
	require.ErrorIs(t, err, dotmesh.ErrNotFound)

	// ResolveRef walks the same links.
	c, err := e.node.ResolveRef(ctx, app, "", "HEAD~4")
	require.NoError(t, err)
	require.Equal(t, all[4], c)
	c, err = e.node.ResolveRef(ctx, app, "", string(all[7].ID[:10]))
	require.NoError(t, err)
	require.Equal(t, all[7].ID, c.ID)
	_, err = e.node.ResolveRef(ctx, app, "", "HEAD~12")
	require.ErrorIs(t, err, dotmesh.ErrNotFound)
}

func TestDotNamesAreSorted(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, n := range []dotmesh.DotName{{Namespace: "bob", Name: "a"}, {Namespace: "admin", Name: "z"}, {Namespace: "admin", Name: "b"}} {
		_, err := e.node.CreateDot(ctx, n, dotmesh.CreateDotOptions{})
		require.NoError(t, err)
	}
	names, err := e.node.DotNames(ctx)
	require.NoError(t, err)
	require.Equal(t, []dotmesh.DotName{{Namespace: "admin", Name: "b"}, {Namespace: "admin", Name: "z"}, {Namespace: "bob", Name: "a"}}, names)
}
