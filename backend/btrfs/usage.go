//go:build linux && cgo

package btrfs

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/dotmesh-io/dotmesh/backend/internal/durable"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"golang.org/x/sys/unix"
)

// Usage implements dotmesh.StorageBackend.
//
// Dirtiness comes from subvolume generations: every change to a
// subvolume's tree (write, append, truncate, delete, chmod, mkdir,
// rename, xattr...) makes its root item's generation the transaction's id
// once that transaction commits, so Usage syncs first. The working state
// is clean when its generation is no newer than the moment it last equalled
// head: its own creation when it was snapshotted from head (CreateBranch,
// Rollback), or head's creation when head was snapshotted from it (Commit;
// taking a snapshot bumps the source's generation to that same
// transaction). Parent UUIDs tell which case applies; a working state that
// is neither, or a head that is not stored here, counts as dirty. A newer
// generation is clean still when no inode or extent of the tree is newer
// than that moment (changedSince): a snapshot of an unchanged working
// state, which CommitIfChanged takes and deletes, bumps it. Reads do
// not count on the backend's own mount (noatime); on a btrfs DataDir
// mounted with atime updates, reading a file after writing it can make a
// committed branch look dirty.
//
// DirtyBytes is an estimate: the extents `btrfs subvolume find-new` lists
// as written since then, or the difference in size from head when larger
// (deletes show up only there).
//
// Sizes are a du-like walk (allocated blocks of every non-directory, hard
// links counted once), cached per subvolume generation: qgroups would be
// exact for shared extents but slow every commit and delete down.
//
// Before the first commit (head nil) the branch is dirty when the tree
// holds anything but directories, as with the dump backend: subdots that
// were only mounted do not count.
func (b *Backend) Usage(ctx context.Context, br dotmesh.BranchRef, head *dotmesh.CommitRef) (dotmesh.Usage, error) {
	return b.usage(ctx, br, head, true, true)
}

var _ dotmesh.DirtyChecker = (*Backend)(nil)

// Dirty implements dotmesh.DirtyChecker: Usage without the walks that
// size the trees (Size is 0, DirtyBytes the extents written), so that a
// commit's check costs a sync and two subvolume lookups.
func (b *Backend) Dirty(ctx context.Context, br dotmesh.BranchRef, head *dotmesh.CommitRef) (dotmesh.Usage, error) {
	return b.usage(ctx, br, head, head == nil, true)
}

var _ dotmesh.ChangeCommitter = (*Backend)(nil)

// CommitIfChanged implements dotmesh.ChangeCommitter without a sync:
// the read-only snapshot first (its ioctl flushes the subvolume's pending
// writes and commits them with it), then a search of the snapshot for
// items newer than the transaction in which the working state last
// equalled head (changedSince; see Usage for which one that is). An
// unchanged snapshot is deleted again. What counts as a change is what the
// generations count in Usage: any write to the tree, reads only with atime
// updates. A check that cannot decide keeps the commit, as Dirty does.
func (b *Backend) CommitIfChanged(ctx context.Context, c dotmesh.CommitRef, head dotmesh.CommitRef) (map[string]string, bool, error) {
	live, err := b.openLive(c.BranchRef)
	if err != nil {
		return nil, false, err
	}
	defer unix.Close(live)
	base, known := b.equalSinceOf(ctx, c.BranchRef, live, head)
	snap, err := b.snapshotCommit(c, live)
	if err != nil {
		return nil, false, err
	}
	info := b.commitFacts(c, snap)
	if !known {
		if snap >= 0 {
			unix.Close(snap)
		}
		return info, true, nil
	}
	var changed bool
	if snap < 0 {
		err = fmt.Errorf("opening the snapshot %s", b.snapPath(c))
	} else {
		changed, err = changedSinceOf(snap, b.snapPath(c), base)
		unix.Close(snap) // before a deletion of the snapshot
	}
	if err != nil {
		b.log.WarnContext(ctx, "cannot tell whether there is anything to commit; committing", "branch", c.BranchRef.String(), "err", err)
		return info, true, nil
	}
	if changed {
		return info, true, nil
	}
	if err := b.DeleteCommit(context.WithoutCancel(ctx), c); err != nil {
		return nil, false, fmt.Errorf("removing the unchanged commit %s: %w", c, err)
	}
	return nil, false, nil
}

// equalSince returns the transaction in which br's working state last
// equalled head (see Usage); known is false when neither was made from
// the other, or head is not stored here: then the branch counts as
// changed. UUIDs and creation transactions need no sync.
func (b *Backend) equalSince(ctx context.Context, br dotmesh.BranchRef, head dotmesh.CommitRef) (base uint64, known bool) {
	live, err := openDir(b.livePath(br))
	if err != nil {
		return 0, false
	}
	defer unix.Close(live)
	return b.equalSinceOf(ctx, br, live, head)
}

// equalSinceOf is equalSince of the working state open at live.
func (b *Backend) equalSinceOf(ctx context.Context, br dotmesh.BranchRef, live int, head dotmesh.CommitRef) (base uint64, known bool) {
	li, err := subvolInfoOf(live, b.livePath(br))
	if err != nil {
		return 0, false
	}
	hi, err := getSubvolInfo(b.snapPath(head))
	if err != nil {
		b.log.DebugContext(ctx, "head commit not stored here; counting the branch as changed", "branch", br.String(), "head", head.ID, "err", err)
		return 0, false
	}
	switch {
	case li.ParentUUID != "" && li.ParentUUID == hi.UUID:
		return li.OTransID, true
	case hi.ParentUUID != "" && hi.ParentUUID == li.UUID:
		return hi.OTransID, true
	}
	return 0, false
}

// usage is Usage; without size it skips the walks that size the trees
// (Size 0), without bytes the estimate of DirtyBytes too.
func (b *Backend) usage(ctx context.Context, br dotmesh.BranchRef, head *dotmesh.CommitRef, size, bytes bool) (dotmesh.Usage, error) {
	var u dotmesh.Usage
	if err := b.needLive(br); err != nil {
		return u, err
	}
	live := b.livePath(br)
	// syncfs commits the btrfs transaction, so what was written shows in
	// the subvolume's generation read next.
	if err := durable.SyncFS(live); err != nil {
		return u, err
	}
	li, err := getSubvolInfo(live)
	if err != nil {
		return u, err
	}
	var ls sizeEntry
	if size {
		if ls, err = b.treeSize(live, li); err != nil {
			return u, fmt.Errorf("usage of %s: %w", br, err)
		}
	}
	u.Size = ls.size
	if head == nil {
		u.Dirty = ls.hasFiles
		u.DirtyBytes = u.Size
		return u, nil
	}
	snap := b.snapPath(*head)
	hi, err := getSubvolInfo(snap)
	if err != nil {
		b.log.DebugContext(ctx, "head commit not stored here; counting the branch as dirty", "branch", br.String(), "head", head.ID, "err", err)
		u.Dirty, u.DirtyBytes = true, u.Size
		return u, nil
	}
	var base uint64
	switch {
	case li.ParentUUID != "" && li.ParentUUID == hi.UUID:
		base = li.OTransID
	case hi.ParentUUID != "" && hi.ParentUUID == li.UUID:
		base = hi.OTransID
	default:
		u.Dirty, u.DirtyBytes = true, u.Size
		return u, nil
	}
	if li.Generation <= base {
		return u, nil
	}
	// A newer generation may come from a snapshot of the working state
	// alone (CommitIfChanged's of an unchanged one): the items tell.
	if changed, err := changedSince(live, base); err == nil && !changed {
		return u, nil
	}
	u.Dirty = true
	if !bytes {
		return u, nil
	}
	if n, err := findNewBytes(ctx, live, base); err != nil {
		b.log.DebugContext(ctx, "estimating dirty bytes", "branch", br.String(), "err", err)
	} else {
		u.DirtyBytes = n
	}
	if !size {
		return u, nil
	}
	if hs, err := b.treeSize(snap, hi); err == nil {
		d := u.Size - hs.size
		if d < 0 {
			d = -d
		}
		u.DirtyBytes = max(u.DirtyBytes, d)
	}
	return u, nil
}

type sizeEntry struct {
	uuid     string
	gen      uint64
	size     int64
	hasFiles bool // anything but directories
}

// treeSize walks a subvolume, or returns the cached result for the same
// subvolume at the same generation.
func (b *Backend) treeSize(path string, info subvolInfo) (sizeEntry, error) {
	b.sizeMu.Lock()
	e, ok := b.sizes[path]
	b.sizeMu.Unlock()
	if ok && e.uuid == info.UUID && e.gen == info.Generation {
		return e, nil
	}
	e = sizeEntry{uuid: info.UUID, gen: info.Generation}
	seen := make(map[uint64]bool)
	err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return nil // removed while walking
		}
		st, _ := fi.Sys().(*syscall.Stat_t)
		if !d.IsDir() {
			e.hasFiles = true
		}
		if st == nil || (st.Nlink > 1 && !d.IsDir() && seen[st.Ino]) {
			return nil
		}
		if st.Nlink > 1 && !d.IsDir() {
			seen[st.Ino] = true
		}
		e.size += st.Blocks * 512
		return nil
	})
	if err != nil {
		return e, err
	}
	b.sizeMu.Lock()
	b.sizes[path] = e
	b.sizeMu.Unlock()
	return e, nil
}

// forgetSize drops cached sizes of path and everything below it.
func (b *Backend) forgetSize(path string) {
	b.sizeMu.Lock()
	defer b.sizeMu.Unlock()
	for p := range b.sizes {
		if p == path || strings.HasPrefix(p, path+"/") {
			delete(b.sizes, p)
		}
	}
}

// findNewBytes sums the lengths of the file extents written in subvolume
// path after transaction gen, as `btrfs subvolume find-new` lists them.
func findNewBytes(ctx context.Context, path string, gen uint64) (int64, error) {
	cmd := exec.CommandContext(ctx, "btrfs", "subvolume", "find-new", path, strconv.FormatUint(gen, 10))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	var total int64
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// inode 258 file offset 0 len 4096 disk start ... gen 13 flags NONE name
		f := strings.Fields(sc.Text())
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "len" {
				if n, err := strconv.ParseInt(f[i+1], 10, 64); err == nil {
					total += n
				}
				break
			}
		}
	}
	if err := cmd.Wait(); err != nil {
		return 0, fmt.Errorf("btrfs subvolume find-new %s: %w: %s", path, err, strings.TrimSpace(stderr.String()))
	}
	return total, nil
}
