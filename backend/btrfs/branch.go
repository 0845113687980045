//go:build linux && cgo

package btrfs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/dotmesh-io/dotmesh/dotmesh"
	"golang.org/x/sys/unix"
)

// CreateBranch implements dotmesh.StorageBackend: a new subvolume, or a
// writable snapshot of the origin commit (on any branch of the dot). Both
// are single ioctls, so a crash leaves no branch or a complete one.
func (b *Backend) CreateBranch(ctx context.Context, br dotmesh.BranchRef, from *dotmesh.CommitRef) error {
	if err := br.Validate(); err != nil {
		return err
	}
	if from != nil {
		if err := from.Validate(); err != nil {
			return err
		}
	}
	unlock, err := b.begin(br)
	if err != nil {
		return err
	}
	defer unlock()
	live := b.livePath(br)
	if ok, err := exists(live); err != nil {
		return fmt.Errorf("create branch %s: %w", br, err)
	} else if ok {
		return fmt.Errorf("%w: branch %s already has a working state", dotmesh.ErrAlreadyExists, br)
	}
	if from != nil {
		if err := b.needCommit(*from); err != nil {
			return err
		}
		if from.Dot != br.Dot {
			return fmt.Errorf("%w: branch %s cannot start from commit %s of another dot", dotmesh.ErrInvalidArgument, br, from)
		}
	}
	if err := os.MkdirAll(b.commitsDir(br), 0o755); err != nil {
		return fmt.Errorf("create branch %s: %w", br, err)
	}
	if from == nil {
		if err := subvolCreate(live); err != nil {
			return fmt.Errorf("create branch %s: %w", br, err)
		}
		if err := os.Chmod(live, 0o755); err != nil {
			return fmt.Errorf("create branch %s: %w", br, err)
		}
	} else if err := subvolSnapshot(live, b.snapPath(*from), false); err != nil {
		return fmt.Errorf("create branch %s from %s: %w", br, from.ID, err)
	}
	return syncFS(live)
}

// DeleteBranch implements dotmesh.StorageBackend: the branch directory
// (working state and commits) goes to the trash in one rename.
func (b *Backend) DeleteBranch(ctx context.Context, br dotmesh.BranchRef) error {
	if err := br.Validate(); err != nil {
		return err
	}
	unlock, err := b.begin(br)
	if err != nil {
		return err
	}
	defer unlock()
	b.forgetSize(b.branchDir(br))
	if err := b.toTrash(b.branchDir(br)); err != nil {
		return fmt.Errorf("delete branch %s: %w", br, err)
	}
	// The dot's directory goes with its last branch; ENOTEMPTY is fine.
	_ = os.Remove(filepath.Dir(b.branchDir(br)))
	return nil
}

// Branches implements dotmesh.StorageBackend: every branch directory,
// including those holding received commits but no working state.
func (b *Backend) Branches(ctx context.Context) ([]dotmesh.BranchRef, error) {
	done, err := b.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	return b.listBranchDirs()
}

func (b *Backend) listBranchDirs() ([]dotmesh.BranchRef, error) {
	dots, err := os.ReadDir(b.dotsDir())
	if err != nil {
		return nil, fmt.Errorf("list branches: %w", err)
	}
	var out []dotmesh.BranchRef
	for _, d := range dots {
		if !d.IsDir() || dotmesh.ValidateID("dot", d.Name(), false) != nil {
			continue
		}
		brs, err := os.ReadDir(filepath.Join(b.dotsDir(), d.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("list branches: %w", err)
		}
		for _, e := range brs {
			ref := dotmesh.BranchRef{Dot: dotmesh.DotID(d.Name()), Branch: e.Name()}
			if e.IsDir() && ref.Validate() == nil {
				out = append(out, ref)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}

// SubdotPath implements dotmesh.StorageBackend: RootSubdot is the
// subvolume itself, any other subdot a directory directly in it, so one
// snapshot covers all of them atomically.
func (b *Backend) SubdotPath(ctx context.Context, br dotmesh.BranchRef, subdot string) (string, error) {
	if err := br.Validate(); err != nil {
		return "", err
	}
	if err := dotmesh.ValidateSubdot(subdot); err != nil {
		return "", err
	}
	unlock, err := b.begin(br)
	if err != nil {
		return "", err
	}
	defer unlock()
	if err := b.needLive(br); err != nil {
		return "", err
	}
	live := b.livePath(br)
	if subdot == dotmesh.RootSubdot {
		return live, nil
	}
	p := filepath.Join(live, subdot)
	st, err := os.Lstat(p) // Lstat: a symlink planted here is refused, not followed
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

// Subdots implements dotmesh.StorageBackend: the top-level directories of
// the working state that carry valid subdot names.
func (b *Backend) Subdots(ctx context.Context, br dotmesh.BranchRef) ([]string, error) {
	if err := br.Validate(); err != nil {
		return nil, err
	}
	unlock, err := b.begin(br)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := b.needLive(br); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(b.livePath(br))
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

// syncFS commits the btrfs transaction of the filesystem holding path, so
// what was done before is durable (and visible in subvolume generations).
func syncFS(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("syncfs %s: %w", path, err)
	}
	return nil
}
