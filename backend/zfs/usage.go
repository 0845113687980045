package zfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Usage implements dotmesh.StorageBackend.
//
// zfs-fuse has neither the `written` property nor `zfs diff`, and space
// accounting cannot tell a 1-byte overwrite or a chmod from nothing (and
// a snapshot's `used` stays 0 when the previous snapshot shares its
// blocks). What works on both zfs-fuse and OpenZFS, exactly: take a
// temporary snapshot T of the working state (which also syncs the pool, so
// sizes are current), then read `zfs send -i head T` and look at its
// records (see inspectIncremental). Dirty is exact; DirtyBytes is the size
// of the changed records, i.e. changed blocks at record granularity plus
// metadata, as OpenZFS's `written@head` would count them. The cost grows
// with the amount of uncommitted data, not with the size of the branch.
//
// Size is T's `referenced`: the bytes the working state occupies.
//
// A working state cloned from head (by Rollback or CreateBranch) and
// never mounted since (fsInfo.pristineAt) cannot have changed: it is
// clean without any of that, and nothing is mounted or snapshotted to say
// so. That is the usual state of a branch that only receives: each
// transfer checks it in State and again in Finish, then rolls it forward.
//
// Before the first commit (head nil) the branch is dirty when its tree
// holds any file or symlink; empty directories, such as subdots that were
// only mounted, do not count (as in the dump backend).
func (b *Backend) Usage(ctx context.Context, ref dotmesh.BranchRef, head *dotmesh.CommitRef) (dotmesh.Usage, error) {
	return b.usage(ctx, ref, head, true)
}

var _ dotmesh.DirtyChecker = (*Backend)(nil)

// Dirty implements dotmesh.DirtyChecker: Usage without Size (0), except
// for a working state that needs no snapshot to tell (see Usage), whose
// size is known from the listing.
func (b *Backend) Dirty(ctx context.Context, ref dotmesh.BranchRef, head *dotmesh.CommitRef) (dotmesh.Usage, error) {
	return b.usage(ctx, ref, head, false)
}

func (b *Backend) usage(ctx context.Context, ref dotmesh.BranchRef, head *dotmesh.CommitRef, size bool) (dotmesh.Usage, error) {
	var u dotmesh.Usage
	inv, err := b.inventory(ctx, ref.Dot)
	if err != nil {
		return u, err
	}
	if cur := inv.live(ref.Branch); cur != nil && head != nil && cur.pristineAt(head.ID) {
		// Never mounted since Rollback made it from head: clean, and its
		// size is settled. No snapshot, no mount.
		u.Size = max(cur.referenced, 0)
		if size && cur.referenced < 0 { // not in a listing patched after the change
			if u.Size, err = b.z.getInt(ctx, cur.ds.name, "referenced"); err != nil {
				return dotmesh.Usage{}, fmt.Errorf("usage of %s: %w", ref, err)
			}
		}
		return u, nil
	}
	root, err := b.mountedIn(ctx, ref, inv)
	if err != nil {
		return u, err
	}
	cur := inv.live(ref.Branch)
	tmp, err := cur.ds.Snapshot(tempSnapPrefix + "usage-" + randHex(suffixLen))
	if err != nil {
		return u, err
	}
	seq := invSeq()
	if err := b.z.snapshot(ctx, tmp); err != nil {
		return u, fmt.Errorf("usage of %s: %w", ref, err)
	}
	defer func() {
		if err := b.z.destroySnapshot(context.WithoutCancel(ctx), tmp, false); err != nil {
			b.log.WarnContext(ctx, "removing a temporary snapshot (Open retries)", "snapshot", tmp, "err", err)
			return
		}
		// The snapshot came and went: the listing taken before it is
		// still right, and the transfer's receive and Finish that follow
		// a dirty check reuse it.
		b.patchInventory(ref.Dot, seq, 2, func(rows []propRow) []propRow { return rows })
	}()
	if size {
		// A dirty check (Dirty) needs no size: one command less.
		if u.Size, err = b.z.getInt(ctx, tmp.String(), "referenced"); err != nil {
			return u, fmt.Errorf("usage of %s: %w", ref, err)
		}
	}
	if head == nil {
		u.Dirty, u.DirtyBytes, err = treeHasFiles(root)
		return u, err
	}
	hs := inv.snaps[string(head.ID)]
	if hs == nil || !hs.isCommit() {
		return u, fmt.Errorf("%w: head commit %s of %s has no data on this node", dotmesh.ErrNotFound, head.ID, ref)
	}
	if !(hs.fs == cur || cur.origin == hs) {
		// Cannot happen with the operations of this backend: the head is
		// always on the live filesystem or its origin. Say "dirty" rather
		// than guess "clean".
		b.log.WarnContext(ctx, "head commit is not an incremental source of the working state; reporting it dirty", "branch", ref.String(), "head", head.ID)
		if !size {
			if u.Size, err = b.z.getInt(ctx, tmp.String(), "referenced"); err != nil {
				return u, fmt.Errorf("usage of %s: %w", ref, err)
			}
		}
		return dotmesh.Usage{Size: u.Size, Dirty: true, DirtyBytes: u.Size}, nil
	}
	from := hs.snap()
	err = b.z.send(ctx, &from, tmp, func(r io.Reader) error {
		var ierr error
		u.Dirty, u.DirtyBytes, ierr = inspectIncremental(r)
		return ierr
	})
	if err != nil {
		return dotmesh.Usage{}, fmt.Errorf("usage of %s: comparing with %s: %w", ref, head.ID, err)
	}
	return u, nil
}

// treeHasFiles reports whether a tree holds anything but directories, and
// the bytes of its regular files.
func treeHasFiles(root string) (bool, int64, error) {
	var any bool
	var n int64
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		any = true
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	if err != nil {
		return false, 0, fmt.Errorf("scanning %s: %w", root, err)
	}
	return any, n, nil
}
