// Package worktree handles the subdot directories of a branch's working
// tree, which every storage backend lays out the same way: one top-level
// directory per subdot, the tree itself for dotmesh.RootSubdot.
package worktree

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// SubdotDir returns the directory of subdot (already validated) in the
// working tree root of br, making it (mode 0755, whatever the umask) when
// it is missing. Anything else in its place is ErrConflict: Lstat, so a
// symlink planted there is refused, not followed.
func SubdotDir(root string, br dotmesh.BranchRef, subdot string) (string, error) {
	if subdot == dotmesh.RootSubdot {
		return root, nil
	}
	p := filepath.Join(root, subdot)
	st, err := os.Lstat(p)
	switch {
	case err == nil && st.IsDir():
		return p, nil
	case err == nil:
		return "", fmt.Errorf("%w: subdot %q of %s is a %s, not a directory; move it away first", dotmesh.ErrConflict, subdot, br, st.Mode().Type())
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("subdot %q of %s: %w", subdot, br, err)
	}
	if err := os.Mkdir(p, 0o755); err != nil {
		return "", fmt.Errorf("create subdot %q of %s: %w", subdot, br, err)
	}
	if err := os.Chmod(p, 0o755); err != nil { // whatever the umask
		return "", fmt.Errorf("create subdot %q of %s: %w", subdot, br, err)
	}
	return p, nil
}

// Subdots lists the subdots of the working tree root of br: its top-level
// directories that carry valid subdot names (never nil).
func Subdots(root string, br dotmesh.BranchRef) ([]string, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("list subdots of %s: %w", br, err)
	}
	out := []string{}
	for _, e := range ents {
		if e.IsDir() && e.Name() != dotmesh.RootSubdot && dotmesh.ValidateSubdot(e.Name()) == nil {
			out = append(out, e.Name())
		}
	}
	return out, nil
}
