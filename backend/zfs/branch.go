package zfs

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/dotmesh-io/dotmesh/backend/internal/worktree"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// CreateBranch implements dotmesh.StorageBackend: `zfs create` for an
// empty branch, made live and mounted in the same atomic command, or `zfs
// clone` of the commit's snapshot, made live in the same command and
// mounted on first use (SubdotPath).
func (b *Backend) CreateBranch(ctx context.Context, ref dotmesh.BranchRef, from *dotmesh.CommitRef) error {
	mp, err := newProp("mountpoint", b.livePath(ref))
	if err != nil {
		return err
	}
	inv, err := b.inventory(ctx, ref.Dot)
	if err != nil {
		return err
	}
	if inv.live(ref.Branch) != nil {
		return fmt.Errorf("%w: branch %s already has a working state", dotmesh.ErrAlreadyExists, ref)
	}
	var s *snapInfo
	if from != nil {
		s = inv.commit(from.ID) // only ref's own dot is searched
		if s == nil || from.Dot != ref.Dot {
			return fmt.Errorf("%w: commit %s has no data in dot %s on this node", dotmesh.ErrNotFound, from, ref.Dot)
		}
	}
	if !inv.exists {
		// Not when it exists: a failed create counts as a change and
		// costs the next transfer's State a listing.
		if err := b.ensureContainer(ctx, ref.Dot); err != nil {
			return err
		}
	}
	d := b.genDataset(ref, inv.nextGen(ref.Branch))
	if s == nil {
		err = b.z.create(ctx, d, mustProp(stateProp, stateLive), mp)
	} else {
		// Unmounted until first used, and known clean until then (see
		// fsInfo.pristineAt): a branch that only receives transfers is
		// never mounted.
		seq := invSeq()
		err = b.z.clone(ctx, s.snap(), d, mustProp(stateProp, stateLive), mustProp("mountpoint", "none"), mustProp(pristineProp, s.name))
		if err == nil {
			// The listing stays current: the first push into a dot
			// ends here, and the next one's State needs no listing.
			b.patchInventory(ref.Dot, seq, 1, func(rows []propRow) []propRow {
				return cloneRows(rows, s, d, "no", "none", "0", s.name)
			})
		}
	}
	if err != nil {
		return fmt.Errorf("creating branch %s: %w", ref, err)
	}
	return nil
}

// DeleteBranch implements dotmesh.StorageBackend. The branch's commits are
// destroyed with `zfs destroy -d`: one that another branch was cloned from
// is only marked, and ZFS destroys it when that clone goes, so the other
// branch never loses data. The working state is destroyed, or, when it
// still carries such snapshots, kept unmounted as a holder until they go.
//
// Steps: unmount, mark the working state "del" (the branch is gone from
// Branches), destroy the commits, then destroy the filesystem or make it a
// holder. Open finishes a delete that a crash interrupted.
func (b *Backend) DeleteBranch(ctx context.Context, ref dotmesh.BranchRef) error {
	inv, err := b.inventory(ctx, ref.Dot)
	if err != nil {
		return err
	}
	cur := inv.live(ref.Branch)
	if cur == nil {
		return b.prune(ctx, ref.Dot)
	}
	if err := b.umount(ctx, cur.ds); err != nil {
		return fmt.Errorf("deleting branch %s: %w", ref, err)
	}
	if err := b.setState(ctx, cur.ds, stateDel); err != nil {
		return fmt.Errorf("deleting branch %s: %w", ref, err)
	}
	if err := b.finishDelete(ctx, ref, cur.ds, true); err != nil {
		return fmt.Errorf("deleting branch %s: %w", ref, err)
	}
	return nil
}

// finishDelete destroys ref's commits (all of them when everywhere is set,
// else only those on del) and disposes of del.
func (b *Backend) finishDelete(ctx context.Context, ref dotmesh.BranchRef, del dataset, everywhere bool) error {
	inv, err := b.inventory(ctx, ref.Dot)
	if err != nil {
		return err
	}
	for _, s := range inv.commitsOf(ref.Branch) {
		if !everywhere && s.fs.ds != del {
			continue
		}
		if err := b.z.destroySnapshot(ctx, s.snap(), true); err != nil && !errors.Is(err, ErrNoDataset) {
			return fmt.Errorf("destroying commit %s: %w", s.name, err)
		}
	}
	if inv, err = b.inventory(ctx, ref.Dot); err != nil {
		return err
	}
	if f := inv.fs(del); f != nil {
		if err := b.retire(ctx, f); err != nil {
			return err
		}
	}
	return b.prune(ctx, ref.Dot)
}

// Branches implements dotmesh.StorageBackend: every branch with a live
// working state.
func (b *Backend) Branches(ctx context.Context) ([]dotmesh.BranchRef, error) {
	rows, err := b.z.get(ctx, true, []string{"type", stateProp}, b.root)
	if err != nil {
		return nil, fmt.Errorf("listing branches: %w", err)
	}
	seen := map[dotmesh.BranchRef]bool{}
	for i := 0; i+1 < len(rows); i++ {
		name := rows[i].name
		if rows[i].prop != "type" || rows[i].value != "filesystem" || rows[i+1].name != name || rows[i+1].value != stateLive {
			continue
		}
		rest, ok := strings.CutPrefix(name, b.root.name+"/")
		if !ok {
			continue
		}
		dot, leaf, ok := strings.Cut(rest, "/")
		if !ok {
			continue
		}
		branch, gen, ok := parseLeaf(leaf)
		ref := dotmesh.BranchRef{Dot: dotmesh.DotID(dot), Branch: branch}
		if ok && gen > 0 && ref.Validate() == nil {
			seen[ref] = true
		}
	}
	out := []dotmesh.BranchRef{}
	for ref := range seen {
		out = append(out, ref)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Dot != out[j].Dot {
			return out[i].Dot < out[j].Dot
		}
		return out[i].Branch < out[j].Branch
	})
	return out, nil
}

// mounted returns the mount path of ref's working state, mounting it when
// needed (after a pool import or a daemon restart, say). The dataset is
// looked up rather than trusting the path: a stale directory or another
// generation's mount must not pass for the working state.
func (b *Backend) mounted(ctx context.Context, ref dotmesh.BranchRef) (string, error) {
	inv, err := b.inventory(ctx, ref.Dot)
	if err != nil {
		return "", err
	}
	return b.mountedIn(ctx, ref, inv)
}

func (b *Backend) mountedIn(ctx context.Context, ref dotmesh.BranchRef, inv *dotInv) (string, error) {
	p := b.livePath(ref)
	cur := inv.live(ref.Branch)
	if cur == nil {
		return "", fmt.Errorf("%w: branch %s has no working state", dotmesh.ErrNotFound, ref)
	}
	if cur.mounted && cur.mountpoint == p && isMountpoint(p) {
		return p, nil
	}
	if err := b.activateFS(ctx, ref, cur); err != nil {
		return "", fmt.Errorf("mounting %s: %w", ref, err)
	}
	if !isMountpoint(p) {
		return "", fmt.Errorf("%w: %s is not mounted at %s after zfs mount", dotmesh.ErrUnavailable, cur.ds, p)
	}
	return p, nil
}

// isMountpoint reports whether p is a directory on another device than
// its parent.
func isMountpoint(p string) bool {
	var st, pst syscall.Stat_t
	if syscall.Lstat(p, &st) != nil || st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		return false
	}
	if syscall.Stat(filepath.Dir(p), &pst) != nil {
		return false
	}
	return st.Dev != pst.Dev
}

// SubdotPath implements dotmesh.StorageBackend. The path is always the
// mountpoint itself or a directory directly in it: names are validated,
// and an existing entry that is not a real directory (a symlink planted in
// the data, say) is refused.
func (b *Backend) SubdotPath(ctx context.Context, ref dotmesh.BranchRef, subdot string) (string, error) {
	root, err := b.mounted(ctx, ref)
	if err != nil {
		return "", err
	}
	return worktree.SubdotDir(root, ref, subdot)
}

// Subdots implements dotmesh.StorageBackend: the top-level directories of
// the working state that carry valid subdot names.
func (b *Backend) Subdots(ctx context.Context, ref dotmesh.BranchRef) ([]string, error) {
	root, err := b.mounted(ctx, ref)
	if err != nil {
		return nil, err
	}
	return worktree.Subdots(root, ref)
}
