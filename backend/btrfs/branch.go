//go:build linux && cgo

package btrfs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/dotmesh-io/dotmesh/backend/internal/branchdirs"
	"github.com/dotmesh-io/dotmesh/backend/internal/durable"
	"github.com/dotmesh-io/dotmesh/backend/internal/worktree"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// CreateBranch implements dotmesh.StorageBackend: a new subvolume, or a
// writable snapshot of the origin commit (on any branch of the dot). Both
// are single ioctls, so a crash leaves no branch or a complete one.
func (b *Backend) CreateBranch(ctx context.Context, br dotmesh.BranchRef, from *dotmesh.CommitRef) error {
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
	return durable.SyncFS(live)
}

// DeleteBranch implements dotmesh.StorageBackend: the branch directory
// (working state and commits) goes to the trash in one rename.
func (b *Backend) DeleteBranch(ctx context.Context, br dotmesh.BranchRef) error {
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
	return b.listBranchDirs()
}

func (b *Backend) listBranchDirs() ([]dotmesh.BranchRef, error) {
	return branchdirs.List(b.dotsDir(), nil)
}

// SubdotPath implements dotmesh.StorageBackend: RootSubdot is the
// subvolume itself, any other subdot a directory directly in it, so one
// snapshot covers all of them atomically.
func (b *Backend) SubdotPath(ctx context.Context, br dotmesh.BranchRef, subdot string) (string, error) {
	if err := b.needLive(br); err != nil {
		return "", err
	}
	live := b.livePath(br)
	return worktree.SubdotDir(live, br, subdot)
}

// Subdots implements dotmesh.StorageBackend: the top-level directories of
// the working state that carry valid subdot names.
func (b *Backend) Subdots(ctx context.Context, br dotmesh.BranchRef) ([]string, error) {
	if err := b.needLive(br); err != nil {
		return nil, err
	}
	return worktree.Subdots(b.livePath(br), br)
}
