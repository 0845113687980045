package dotmesh_test

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// TestEmptyCommitRefused: as in git, a commit of a working state equal to
// the head, or a first commit of a tree without files, is refused unless
// allowed, and changes nothing.
func TestEmptyCommitRefused(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	_, err := e.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	commit := func(allow bool) (*dotmesh.Commit, error) {
		return e.node.Commit(ctx, app, "", dotmesh.CommitOptions{Message: "m", AllowEmpty: allow})
	}
	require.NoError(t, os.MkdirAll(e.path("app.db", "empty/dir"), 0o755))
	_, err = commit(false)
	var nt *dotmesh.NothingToCommitError
	require.True(t, errors.As(err, &nt), "a first commit of directories only: %v", err)
	require.ErrorIs(t, err, dotmesh.ErrConflict)
	require.Equal(t, dotmesh.NothingToCommitError{Dot: app, Branch: dotmesh.DefaultBranch}, *nt)
	require.Empty(t, e.logMessages(""), "a refused commit records nothing")

	e.write("app.db", "f", "one")
	first, err := commit(false)
	require.NoError(t, err)
	_, err = commit(false)
	require.True(t, errors.As(err, &nt), "nothing changed: %v", err)
	require.Equal(t, first.ID, nt.Head)
	require.Len(t, e.logMessages(""), 1)

	empty, err := commit(true)
	require.NoError(t, err, "AllowEmpty commits anyway")
	require.Equal(t, first.ID, empty.Parent)

	require.NoError(t, os.Chmod(e.path("app.db", "f"), 0o600))
	_, err = commit(false)
	require.NoError(t, err, "a mode change is something to commit")
	require.NoError(t, os.Remove(e.path("app.db", "f")))
	_, err = commit(false)
	require.NoError(t, err, "a removal is something to commit")
	_, err = commit(false)
	require.ErrorAs(t, err, &nt)
}
