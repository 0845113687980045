package dotmesh_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Names that read as flags or reserved words are refused for new dots,
// namespaces and branches (also made by a transfer), with one line that
// names the part; nothing is stored. Dots made with such names before
// still work: listed, committed, pushed under another name, deleted.
func TestNewNamesRefused(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	_, err := e.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	e.commit("one")

	check := func(err error, part, name string) {
		t.Helper()
		if !errors.Is(err, dotmesh.ErrInvalidName) || !strings.Contains(err.Error(), part+" name \""+name+"\" starts with") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s %q: %v; want one line naming the %s", part, name, err, part)
		}
	}
	for _, bad := range []string{"-", "-x", "_x", "__root__", "__default__"} {
		_, err := e.node.CreateDot(ctx, dotmesh.DotName{Namespace: dotmesh.DefaultNamespace, Name: bad}, dotmesh.CreateDotOptions{})
		check(err, "dot", bad)
		_, err = e.node.CreateDot(ctx, dotmesh.DotName{Namespace: bad, Name: "app2"}, dotmesh.CreateDotOptions{})
		check(err, "namespace", bad)
		_, err = e.node.CreateBranch(ctx, app, bad, "")
		check(err, "branch", bad)
		_, err = e.node.Clone(ctx, dotmesh.DotName{Namespace: dotmesh.DefaultNamespace, Name: bad}, "", dotmesh.LocalTransport(e.node), dotmesh.TransferOptions{RemoteDot: app})
		check(err, "dot", bad)
	}
	for _, good := range []string{"a", "a-", "a_", "0_-x", "x__root__"} {
		_, err := e.node.CreateBranch(ctx, app, good, "")
		require.NoError(t, err, good)
	}
	dots, err := e.node.ListDots(ctx)
	require.NoError(t, err)
	require.Len(t, dots, 1, "refused names stored something")
	branches, err := e.node.Branches(ctx, app)
	require.NoError(t, err)
	require.Len(t, branches, 6)

	// A dot made before the rule.
	legacy := dotmesh.DotName{Namespace: dotmesh.DefaultNamespace, Name: "_x"}
	_, err = dotmesh.CreateDotAnyName(e.node, ctx, legacy, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	lc, err := e.node.Commit(ctx, legacy, "", dotmesh.CommitOptions{AllowEmpty: true, Message: "legacy", Author: "test"})
	require.NoError(t, err)
	dots, err = e.node.ListDots(ctx)
	require.NoError(t, err)
	require.Len(t, dots, 2)

	// Pushing it makes its name on the peer: refused there before anything
	// is sent, accepted under a good name.
	peer := newEnv(t)
	_, err = e.node.Push(ctx, legacy, "", dotmesh.LocalTransport(peer.node), dotmesh.TransferOptions{})
	check(err, "dot", "_x")
	dots, err = peer.node.ListDots(ctx)
	require.NoError(t, err)
	require.Empty(t, dots)
	_, err = e.node.Push(ctx, legacy, "", dotmesh.LocalTransport(peer.node), dotmesh.TransferOptions{RemoteDot: dotmesh.DotName{Name: "x"}})
	require.NoError(t, err)
	// The receiver refuses by itself too (an older sender checks nothing).
	err = peer.node.TransferPeer().Receive(ctx, dotmesh.DotName{Namespace: "-n", Name: "x"}, "master", *lc, nil, "native:dump", strings.NewReader(""))
	check(err, "namespace", "-n")

	require.NoError(t, e.node.DeleteDot(ctx, legacy))
	dots, err = e.node.ListDots(ctx)
	require.NoError(t, err)
	require.Len(t, dots, 1)
}
