package dump

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/dotmesh-io/dotmesh/backend/dump/cas"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// gcRoots returns the manifest roots that keep objects alive: every commit
// record and every branch's synced manifest (the change cache reuses its
// chunk lists for unchanged files, so they must outlive deleted commits).
func (b *Backend) gcRoots(ctx context.Context) (map[cas.Hash]gcRoot, error) {
	roots := map[cas.Hash]gcRoot{}
	brs, err := b.listBranchDirs()
	if err != nil {
		return nil, err
	}
	for _, br := range brs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if h, ok := b.readSynced(br); ok {
			if _, dup := roots[h]; !dup {
				roots[h] = gcRoot{what: "synced state of " + br.String(), synced: &br}
			}
		}
		ids, err := b.Commits(ctx, br)
		if errors.Is(err, dotmesh.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			c := dotmesh.CommitRef{BranchRef: br, ID: id}
			_, root, err := b.readRecord(c)
			if errors.Is(err, dotmesh.ErrNotFound) {
				continue // deleted meanwhile
			}
			if err != nil {
				return nil, err
			}
			roots[root] = gcRoot{what: "commit " + c.String()}
		}
	}
	return roots, nil
}

type gcRoot struct {
	what   string
	synced *dotmesh.BranchRef // a change cache: losing it costs speed, not data
}

// CollectGarbage implements dotmesh.GarbageCollector: mark every object
// reachable from a commit record or a synced manifest, or pinned for a
// transfer in progress (pins.go), sweep the rest. It
// excludes every other store user while it runs. If any manifest cannot
// be read, nothing is swept.
func (b *Backend) CollectGarbage(ctx context.Context) (dotmesh.GCStats, error) {
	var stats dotmesh.GCStats
	b.gcMu.Lock()
	defer b.gcMu.Unlock()
	roots, err := b.gcRoots(ctx)
	if err != nil {
		return stats, fmt.Errorf("garbage collection: %w", err)
	}
	live := map[cas.Hash]struct{}{}
	dotmesh.ReportPhase(ctx, "marking")
	for root, r := range roots {
		if err := ctx.Err(); err != nil {
			return stats, err
		}
		sm, err := loadManifest(b.store, root)
		if err != nil && r.synced != nil && errors.Is(err, dotmesh.ErrCorrupt) {
			// A damaged cache is dropped (commits then read every file)
			// rather than blocking collection; gcMu keeps every commit
			// and restore out meanwhile.
			b.log.WarnContext(ctx, "garbage collection drops an unreadable change cache", "which", r.what, "err", err)
			if rerr := os.Remove(b.syncedPath(*r.synced)); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				return stats, fmt.Errorf("garbage collection stopped, nothing removed: %s: %w", r.what, err)
			}
			continue
		}
		if err != nil {
			return stats, fmt.Errorf("garbage collection stopped, nothing removed: %s: %w", r.what, err)
		}
		_ = sm.objects(func(h cas.Hash) error { live[h] = struct{}{}; return nil })
	}
	// Objects pinned for transfers in progress (see pins.go) are live too.
	if _, err := b.pinned(live, true); err != nil {
		return stats, fmt.Errorf("garbage collection stopped, nothing removed: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return stats, err
	}
	dotmesh.ReportPhase(ctx, "sweeping")
	pruned, err := b.store.Prune(func(h cas.Hash) bool { _, ok := live[h]; return ok })
	stats.ObjectsRemoved, stats.BytesRemoved = pruned.Objects, pruned.Bytes
	if err != nil {
		return stats, fmt.Errorf("garbage collection: %w", err)
	}
	b.log.InfoContext(ctx, "garbage collected", "objects_removed", stats.ObjectsRemoved, "bytes_removed", stats.BytesRemoved, "live_objects", len(live))
	return stats, nil
}

// Check implements dotmesh.Checker: every stored object is read and
// verified against its hash, and every commit's manifest must be readable
// with all its objects present. Problems are collected; the error wraps
// dotmesh.ErrCorrupt and names each damaged object and commit.
func (b *Backend) Check(ctx context.Context) error {
	defer b.useStore()()

	var errs []error
	report := func(err error) {
		if len(errs) < 100 {
			errs = append(errs, err)
		}
	}
	bad := map[cas.Hash]bool{}
	err := b.verifyObjects(ctx, func(h cas.Hash, _ int64, err error) {
		if err != nil {
			report(err)
			bad[h] = true
		}
	})
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}

	roots, err := b.gcRoots(ctx)
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	for root, r := range roots {
		sm, err := loadManifest(b.store, root)
		if err != nil {
			report(fmt.Errorf("%s: %w", r.what, err))
			continue
		}
		var missing int
		_ = sm.objects(func(h cas.Hash) error {
			if ok, err := b.store.Has(h); !ok || err != nil {
				missing++
			}
			return nil
		})
		if missing > 0 {
			report(fmt.Errorf("%w: %s: %d objects are missing", dotmesh.ErrCorrupt, r.what, missing))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: check found %d problems: %w", dotmesh.ErrCorrupt, len(errs), errors.Join(errs...))
}
