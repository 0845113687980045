package zfs

import (
	"context"
	"sync"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// A commit of a mounted working state asks the backend's change watcher
// (package changewatch: a fanotify mark on the branch's mount) first. A
// write seen since the head's snapshot proves the commit has something
// new, so the commit is its `zfs snapshot` alone, without even a listing
// of the dot; without such proof the listing and the exact check run
// (commit_changed.go). Every commit settles the watcher at the snapshot
// it made (or at head when that equalled it), and everything that
// replaces a working state's data in place (rollback) or unmounts it
// forgets what was seen (see umount).

// watchIndex remembers which dataset was last settled at a branch's path,
// so that a proven commit needs no listing to find it.
type watchIndex struct {
	mu sync.Mutex
	ds map[string]dataset // by path
}

// watching is one commit's use of the watcher: on when its mark was armed
// (Before) for dataset ds, proven when a write since base was seen.
type watching struct {
	ds         dataset
	on, proven bool
}

// watchBefore reads what the watcher saw of dataset d, mounted at ref's
// path, since it was settled at base, and arms its mark. When the result
// is on, the caller ends with watchAfter.
func (b *Backend) watchBefore(ctx context.Context, ref dotmesh.BranchRef, d dataset, base dotmesh.CommitID) watching {
	if b.watch == nil {
		return watching{}
	}
	proven, err := b.watch.Before(d.name, b.livePath(ref), string(base))
	if err != nil {
		b.watch.After(d.name, "")
		b.log.DebugContext(ctx, "not watching a working state for changes", "branch", ref.String(), "err", err)
		return watching{}
	}
	return watching{ds: d, on: true, proven: proven}
}

// watchAfter settles the watcher of w's dataset, mounted at ref's path,
// at point, the commit whose data it held at the snapshot ("" when
// unknown).
func (b *Backend) watchAfter(ref dotmesh.BranchRef, w watching, point dotmesh.CommitID) {
	if !w.on {
		return
	}
	b.watch.After(w.ds.name, string(point))
	p := b.livePath(ref)
	b.watched.mu.Lock()
	defer b.watched.mu.Unlock()
	if point == "" {
		delete(b.watched.ds, p)
		return
	}
	if b.watched.ds == nil {
		b.watched.ds = map[string]dataset{}
	}
	b.watched.ds[p] = w.ds
}

// settledAt returns the dataset last settled at ref's path.
func (b *Backend) settledAt(ref dotmesh.BranchRef) (dataset, bool) {
	if b.watch == nil {
		return dataset{}, false
	}
	b.watched.mu.Lock()
	defer b.watched.mu.Unlock()
	d, ok := b.watched.ds[b.livePath(ref)]
	return d, ok
}

// forgetWatch drops what the watcher saw of dataset d (before d is
// unmounted or its data replaced).
func (b *Backend) forgetWatch(d dataset) {
	if b.watch == nil {
		return
	}
	b.watch.Forget(d.name)
	b.watched.mu.Lock()
	defer b.watched.mu.Unlock()
	for p, w := range b.watched.ds {
		if w == d {
			delete(b.watched.ds, p)
		}
	}
}
