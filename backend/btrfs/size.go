//go:build linux && cgo

package btrfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/dotmesh-io/dotmesh/backend/internal/fsfree"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

var (
	_ dotmesh.CapacityReporter = (*Backend)(nil)
	_ dotmesh.VolumeSizer      = (*Backend)(nil)
)

// Capacity implements dotmesh.CapacityReporter: btrfs's own estimate of
// its free space (statfs), which assumes the current data profile and
// counts shared extents once; compression and metadata growth make the
// real room differ.
func (b *Backend) Capacity(context.Context) (dotmesh.Capacity, error) {
	return fsfree.Capacity(b.root)
}

// sizePath keeps a branch's size bound, so that a Rollback, which puts a
// new subvolume in place of the working state, bounds that one too.
func (b *Backend) sizePath(br dotmesh.BranchRef) string {
	return filepath.Join(b.branchDir(br), "size")
}

// SetSize implements dotmesh.VolumeSizer with a qgroup limit on the
// referenced bytes of the working state's subvolume. Quotas are switched
// on for the whole file system at the first bound (a rescan of what it
// holds); from then on btrfs accounts every write, which costs commits
// and deletes some time.
func (b *Backend) SetSize(ctx context.Context, br dotmesh.BranchRef, bytes int64) error {
	if err := b.needLive(br); err != nil {
		return err
	}
	if bytes > 0 {
		if err := b.enableQuota(ctx); err != nil {
			return err
		}
	}
	if bytes > 0 || b.quotaOn(ctx) { // with quotas off, nothing is bounded
		if err := qgroupLimit(ctx, b.livePath(br), bytes); err != nil {
			return err
		}
	}
	if bytes == 0 {
		if err := os.Remove(b.sizePath(br)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return syncDir(b.branchDir(br))
	}
	tmp := b.sizePath(br) + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.FormatInt(bytes, 10)+"\n"), 0o600); err != nil {
		return fmt.Errorf("recording the size of %s: %w", br, err)
	}
	if err := os.Rename(tmp, b.sizePath(br)); err != nil {
		return fmt.Errorf("recording the size of %s: %w", br, err)
	}
	return syncDir(b.branchDir(br))
}

// Size implements dotmesh.VolumeSizer.
func (b *Backend) Size(_ context.Context, br dotmesh.BranchRef) (int64, error) {
	if err := b.needLive(br); err != nil {
		return 0, err
	}
	return b.recordedSize(br)
}

func (b *Backend) recordedSize(br dotmesh.BranchRef) (int64, error) {
	raw, err := os.ReadFile(b.sizePath(br))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	} else if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: size record %s holds %q, not a size", dotmesh.ErrCorrupt, b.sizePath(br), raw)
	}
	return n, nil
}

// quotaOn reports whether quotas are on for the file system.
func (b *Backend) quotaOn(ctx context.Context) bool {
	_, err := run(ctx, "btrfs", "qgroup", "show", b.root)
	return err == nil
}

// enableQuota switches quotas on and waits for the rescan that counts
// what the file system holds already: a limit is only enforced on
// counted bytes.
func (b *Backend) enableQuota(ctx context.Context) error {
	if b.quotaOn(ctx) {
		return nil
	}
	if out, err := run(ctx, "btrfs", "quota", "enable", b.root); err != nil {
		return progError(ctx, "btrfs quota enable "+b.root, err, out)
	}
	if out, err := run(ctx, "btrfs", "quota", "rescan", "-w", b.root); err != nil && !strings.Contains(out, "in progress") {
		return progError(ctx, "btrfs quota rescan "+b.root, err, out)
	}
	b.log.InfoContext(ctx, "switched btrfs quotas on, to bound a branch's size", "root", b.root)
	return nil
}

// qgroupLimit limits the referenced bytes of the subvolume at path (0:
// no limit).
func qgroupLimit(ctx context.Context, path string, bytes int64) error {
	v := "none"
	if bytes > 0 {
		v = strconv.FormatInt(bytes, 10)
	}
	if out, err := run(ctx, "btrfs", "qgroup", "limit", v, path); err != nil {
		return progError(ctx, "btrfs qgroup limit "+v+" "+path, err, out)
	}
	return nil
}
