//go:build linux && cgo

package btrfs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strconv"

	"github.com/dotmesh-io/dotmesh/backend/internal/durable"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"golang.org/x/sys/unix"
)

// Commit implements dotmesh.StorageBackend: one read-only snapshot of the
// branch's subvolume, so all subdots are captured at the same instant.
// The snapshot ioctl commits a transaction, so the commit is durable when
// it appears, and it appears whole or not at all.
func (b *Backend) Commit(ctx context.Context, c dotmesh.CommitRef) (map[string]string, error) {
	live, err := b.openLive(c.BranchRef)
	if err != nil {
		return nil, err
	}
	defer unix.Close(live)
	snap, err := b.snapshotCommit(c, live)
	if err != nil {
		return nil, err
	}
	if snap >= 0 {
		defer unix.Close(snap)
	}
	return b.commitFacts(c, snap), nil
}

// snapshotCommit takes commit c's snapshot of the working state open at
// live and returns the snapshot opened, or -1 when it is made but cannot
// be opened (its facts and checks are optional).
func (b *Backend) snapshotCommit(c dotmesh.CommitRef, live int) (int, error) {
	dir := b.commitDir(c)
	// A new commit's directory does not exist: one mkdir. Anything else
	// (the commit is stored, a Commit died before its snapshot, no
	// commits directory yet) takes the checks.
	if err := unix.Mkdir(dir, 0o755); err != nil {
		if ok, err := exists(b.snapPath(c)); err != nil {
			return -1, fmt.Errorf("commit %s: %w", c, err)
		} else if ok {
			return -1, fmt.Errorf("%w: commit %s is already stored", dotmesh.ErrAlreadyExists, c)
		}
		if err := removeTree(dir); err != nil { // a Commit that died before its snapshot
			return -1, fmt.Errorf("commit %s: %w", c, err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return -1, fmt.Errorf("commit %s: %w", c, err)
		}
	}
	dfd, err := openDir(dir)
	if err == nil {
		err = snapshotInto(dfd, snapName, live, true)
		if err != nil {
			unix.Close(dfd)
			err = fmt.Errorf("snapshot %s to %s: %w", b.livePath(c.BranchRef), b.snapPath(c), err)
		}
	}
	if err != nil {
		_ = os.Remove(dir)
		return -1, fmt.Errorf("commit %s: %w", c, err)
	}
	defer unix.Close(dfd)
	snap, err := unix.Openat(dfd, snapName, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, nil
	}
	return snap, nil
}

// commitFacts are the facts Commit returns for the stored commit c,
// whose snapshot is open at snap (-1: it could not be opened).
func (b *Backend) commitFacts(c dotmesh.CommitRef, snap int) map[string]string {
	// One snapshot of the branch's subvolume holds every subdot: what a
	// crash would leave (dotmesh.ConsistencyCrash).
	facts := map[string]string{dotmesh.InfoConsistency: dotmesh.ConsistencyCrash}
	if snap < 0 {
		return facts
	}
	info, err := subvolInfoOf(snap, b.snapPath(c))
	if err != nil {
		return facts // the commit is made; its other facts are optional
	}
	facts["btrfs_uuid"] = info.UUID
	facts["btrfs_generation"] = strconv.FormatUint(info.OTransID, 10)
	return facts
}

// storedFacts is commitFacts of a stored commit, opened here.
func (b *Backend) storedFacts(c dotmesh.CommitRef) map[string]string {
	fd, err := openDir(b.snapPath(c))
	if err != nil {
		return b.commitFacts(c, -1)
	}
	defer unix.Close(fd)
	return b.commitFacts(c, fd)
}

// Commits implements dotmesh.StorageBackend: the commit directories of br
// that hold a snapshot, sorted by id. Staging directories of receives in
// flight start with "." and are not listed.
func (b *Backend) Commits(ctx context.Context, br dotmesh.BranchRef) ([]dotmesh.CommitID, error) {
	if ok, err := exists(b.branchDir(br)); err != nil {
		return nil, fmt.Errorf("list commits of %s: %w", br, err)
	} else if !ok {
		return nil, fmt.Errorf("%w: branch %s has no storage on this backend", dotmesh.ErrNotFound, br)
	}
	ents, err := os.ReadDir(b.commitsDir(br))
	if errors.Is(err, fs.ErrNotExist) {
		return []dotmesh.CommitID{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list commits of %s: %w", br, err)
	}
	out := []dotmesh.CommitID{}
	for _, e := range ents {
		if !e.IsDir() || dotmesh.ValidateID("commit", e.Name(), false) != nil {
			continue
		}
		c := dotmesh.CommitRef{BranchRef: br, ID: dotmesh.CommitID(e.Name())}
		if ok, _ := exists(b.snapPath(c)); ok {
			out = append(out, c.ID)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// Rollback implements dotmesh.StorageBackend. The commit (which may live
// on another branch) is snapshotted writable next to the working state,
// the two are exchanged in one atomic renameat2(RENAME_EXCHANGE), and the
// old working state goes to the trash. A crash at any point leaves "live"
// complete, old or new; Open removes the other one. No other branch, and
// no commit, is touched: btrfs snapshots do not depend on their source.
func (b *Backend) Rollback(ctx context.Context, br dotmesh.BranchRef, c dotmesh.CommitRef) error {
	if err := b.needLive(br); err != nil {
		return err
	}
	if err := b.needCommit(c); err != nil {
		return err
	}
	if c.Dot != br.Dot {
		return fmt.Errorf("%w: cannot roll %s back to commit %s of another dot", dotmesh.ErrInvalidArgument, br, c)
	}
	live, tmp := b.livePath(br), b.rollbackPath(br)
	if err := removeTree(tmp); err != nil {
		return fmt.Errorf("roll back %s: stale %s: %w", br, tmp, err)
	}
	if err := subvolSnapshot(tmp, b.snapPath(c), false); err != nil {
		return fmt.Errorf("roll back %s to %s: %w", br, c.ID, err)
	}
	// The branch's size bound moves to the new subvolume with the swap.
	if size, err := b.recordedSize(br); err != nil || size > 0 {
		if err == nil {
			err = qgroupLimit(ctx, tmp, size)
		}
		if err != nil {
			_ = removeTree(tmp)
			return fmt.Errorf("roll back %s: bounding the new working state: %w", br, err)
		}
	}
	if err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, live, unix.RENAME_EXCHANGE); err != nil {
		_ = removeTree(tmp)
		return fmt.Errorf("roll back %s: exchanging working states: %w", br, err)
	}
	if err := durable.SyncFS(b.branchDir(br)); err != nil {
		return fmt.Errorf("roll back %s: %w", br, err)
	}
	b.forgetSize(live)
	if err := b.toTrash(tmp); err != nil {
		b.log.WarnContext(ctx, "cannot remove the replaced working state; it goes on next open", "branch", br.String(), "err", err)
	}
	return nil
}

// DeleteCommit implements dotmesh.StorageBackend. Branches made from the
// commit keep their data. Missing is not an error.
func (b *Backend) DeleteCommit(ctx context.Context, c dotmesh.CommitRef) error {
	b.forgetSize(b.commitDir(c))
	if err := b.toTrash(b.commitDir(c)); err != nil {
		return fmt.Errorf("delete commit %s: %w", c, err)
	}
	return nil
}

var _ dotmesh.CommitViewer = (*Backend)(nil)

// CommitDir implements dotmesh.CommitViewer: a commit is a read-only
// snapshot, a directory holding the whole tree, readable at no cost.
func (b *Backend) CommitDir(ctx context.Context, c dotmesh.CommitRef) (string, error) {
	p := b.snapPath(c)
	if ok, err := exists(p); err != nil {
		return "", fmt.Errorf("commit %s: %w", c, err)
	} else if !ok {
		return "", fmt.Errorf("%w: commit %s is not stored on this backend", dotmesh.ErrNotFound, c)
	}
	return p, nil
}
