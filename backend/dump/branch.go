package dump

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/dotmesh-io/dotmesh/backend/dump/cas"
	"github.com/dotmesh-io/dotmesh/backend/internal/branchdirs"
	"github.com/dotmesh-io/dotmesh/backend/internal/worktree"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// CreateBranch implements dotmesh.StorageBackend. The tree is built in
// dir/tmp and renamed into place, so a crash or an error leaves either no
// branch or a complete one.
func (b *Backend) CreateBranch(ctx context.Context, br dotmesh.BranchRef, from *dotmesh.CommitRef) error {
	exists, err := b.treeExists(br)
	if err != nil {
		return err
	}
	if exists {
		return fmt.Errorf("%w: branch %s already has a working state", dotmesh.ErrAlreadyExists, br)
	}
	tmp, err := os.MkdirTemp(filepath.Join(b.dir, "tmp"), "tree-")
	if err != nil {
		return fmt.Errorf("create branch %s: %w", br, err)
	}
	defer removeAll(tmp) // a no-op once renamed
	if err := os.Chmod(tmp, b.treeMode); err != nil {
		return fmt.Errorf("create branch %s: %w", br, err)
	}
	var synced cas.Hash
	if from != nil {
		if synced, err = b.restoreNew(ctx, tmp, *from); err != nil {
			return fmt.Errorf("create branch %s from %s: %w", br, from, err)
		}
	}

	bdir := b.branchDir(br)
	_, statErr := os.Lstat(bdir)
	created := errors.Is(statErr, fs.ErrNotExist)
	fail := func(err error) error {
		if created {
			removeAll(bdir)
		}
		return fmt.Errorf("create branch %s: %w", br, err)
	}
	if err := os.MkdirAll(bdir, b.passMode); err != nil {
		return fail(err)
	}
	// No tree means no synced state either (a crash may have left one).
	if err := os.Remove(b.syncedPath(br)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fail(err)
	}
	b.empties.forget(b.treeDir(br)) // a tree left at this path by a deleted branch's parent moves
	if err := os.Rename(tmp, b.treeDir(br)); err != nil {
		return fail(err)
	}
	if err := os.Mkdir(b.commitsDir(br), privateDir); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create branch %s: %w", br, err)
	}
	if err := syncDirectory(bdir); err != nil {
		return fmt.Errorf("create branch %s: %w", br, err)
	}
	if from == nil {
		return nil
	}
	return b.writeSynced(br, synced)
}

// restoreNew fills the empty directory dir with commit c and returns the
// root of its synced manifest.
func (b *Backend) restoreNew(ctx context.Context, dir string, c dotmesh.CommitRef) (cas.Hash, error) {
	defer b.useStore()()
	_, root, err := b.readRecord(c)
	if err != nil {
		return cas.Hash{}, err
	}
	target, err := loadManifest(b.store, root)
	if err != nil {
		return cas.Hash{}, err
	}
	return b.restoreFresh(ctx, dir, target.Manifest)
}

// DeleteBranch implements dotmesh.StorageBackend: the branch directory is
// renamed into the trash (atomic), then removed.
func (b *Backend) DeleteBranch(ctx context.Context, br dotmesh.BranchRef) error {
	bdir := b.branchDir(br)
	if _, err := os.Lstat(bdir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	trash := filepath.Join(b.dir, "trash", randomSuffix())
	if err := os.Rename(bdir, trash); err != nil {
		return fmt.Errorf("delete branch %s: %w", br, err)
	}
	b.empties.forget(b.treeDir(br)) // its tree moved with its parent, unnoticed
	if err := syncDirectory(filepath.Dir(bdir)); err != nil {
		return fmt.Errorf("delete branch %s: %w", br, err)
	}
	if err := removeAll(trash); err != nil {
		// Deleted as far as anyone can see; Open retries the removal.
		b.log.WarnContext(ctx, "cannot remove a deleted branch's files; they go on next open", "branch", br, "path", trash, "err", err)
	}
	// The dot's directory goes with its last branch; ENOTEMPTY is fine.
	_ = os.Remove(filepath.Dir(bdir))
	return nil
}

// Branches implements dotmesh.StorageBackend: every branch with a working
// tree or a commit directory, including branches that hold received
// commits but no working tree yet.
func (b *Backend) Branches(ctx context.Context) ([]dotmesh.BranchRef, error) {
	return b.listBranchDirs()
}

func (b *Backend) listBranchDirs() ([]dotmesh.BranchRef, error) {
	return branchdirs.List(filepath.Join(b.dir, "branches"), b.branchExists)
}

// SubdotPath implements dotmesh.StorageBackend.
func (b *Backend) SubdotPath(ctx context.Context, br dotmesh.BranchRef, subdot string) (string, error) {
	if err := b.needTree(br); err != nil {
		return "", err
	}
	tree := b.treeDir(br)
	return worktree.SubdotDir(tree, br, subdot)
}

// Subdots implements dotmesh.StorageBackend: the top-level directories of
// the tree that carry valid subdot names.
func (b *Backend) Subdots(ctx context.Context, br dotmesh.BranchRef) ([]string, error) {
	if err := b.needTree(br); err != nil {
		return nil, err
	}
	return worktree.Subdots(b.treeDir(br), br)
}

// branchExists: the branch has a working tree or a commits directory
// (received commits only). A bare branch directory is debris of an
// interrupted CreateBranch and does not count.
func (b *Backend) branchExists(br dotmesh.BranchRef) bool {
	for _, p := range []string{b.treeDir(br), b.commitsDir(br)} {
		if st, err := os.Lstat(p); err == nil && st.IsDir() {
			return true
		}
	}
	return false
}

var (
	_ dotmesh.WorkingStateAdopter = (*Backend)(nil)
	_ dotmesh.WorkingStateAdopter = (*Guarded)(nil)
)

// AdoptWorkingState implements dotmesh.WorkingStateAdopter: from's tree
// is renamed to be to's, and its synced manifest goes with it, so no file
// is written again and the change cache still vouches for every one.
// Only a plain tree passes (no database sources bound to from), and only
// when its synced manifest is c's and a stat walk finds it unchanged.
//
// Order for crash safety: to's synced file first (harmless without a
// tree: CreateBranch removes it), then the tree's rename (atomic), then
// from's stale synced file goes.
func (b *Backend) AdoptWorkingState(ctx context.Context, from, to dotmesh.BranchRef, c dotmesh.CommitRef) error {
	if exists, err := b.treeExists(to); err != nil {
		return err
	} else if exists {
		return fmt.Errorf("%w: branch %s already has a working state", dotmesh.ErrAlreadyExists, to)
	}
	refuse := func(why string) error {
		return fmt.Errorf("%w: the working state of %s cannot pass to %s: %s", dotmesh.ErrConflict, from, to, why)
	}
	if exists, err := b.treeExists(from); err != nil {
		return err
	} else if !exists {
		return refuse("it has none")
	}
	for _, p := range []string{b.sourcesPath(from), b.sourceStatesPath(from)} {
		if _, err := os.Lstat(p); err == nil {
			return refuse("database sources are bound to it")
		}
	}
	_, root, err := b.readRecord(c)
	if err != nil {
		return err
	}
	if synced, ok := b.readSynced(from); !ok || synced != root {
		return refuse("it was not last synced with commit " + string(c.ID))
	}
	if u, err := b.Usage(ctx, from, &c); err != nil {
		return err
	} else if u.Dirty {
		return refuse("it changed since commit " + string(c.ID))
	}

	step := func(string) {}
	if b.adoptStepTest != nil {
		step = b.adoptStepTest
	}
	tdir := b.branchDir(to)
	if err := os.MkdirAll(tdir, b.passMode); err != nil {
		return fmt.Errorf("adopt working state of %s as %s: %w", from, to, err)
	}
	step("dir")
	if err := b.writeSynced(to, root); err != nil {
		return err
	}
	step("synced")
	if err := os.Rename(b.treeDir(from), b.treeDir(to)); err != nil {
		return fmt.Errorf("adopt working state of %s as %s: %w", from, to, err)
	}
	b.empties.forget(b.treeDir(to))
	step("renamed")
	if err := os.Mkdir(b.commitsDir(to), privateDir); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("adopt working state of %s as %s: %w", from, to, err)
	}
	if err := syncDirectory(tdir); err != nil {
		return fmt.Errorf("adopt working state of %s as %s: %w", from, to, err)
	}
	step("commits")
	// No tree, no synced state: a stale one would be harmless (the next
	// CreateBranch of from removes it) but misleading.
	if err := os.Remove(b.syncedPath(from)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		b.log.WarnContext(ctx, "removing the synced state of a branch whose working state moved", "branch", from, "err", err)
	}
	step("unsynced")
	if err := syncDirectory(b.branchDir(from)); err != nil {
		return fmt.Errorf("adopt working state of %s as %s: %w", from, to, err)
	}
	return nil
}
