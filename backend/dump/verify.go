package dump

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync"

	"github.com/dotmesh-io/dotmesh/backend/dump/cas"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

var (
	_ dotmesh.Verifier       = (*Backend)(nil)
	_ dotmesh.GarbagePlanner = (*Backend)(nil)
)

// commitRoots lists every stored commit with its manifest root. Unlike
// gcRoots it keeps every commit of a shared root, to name them all.
func (b *Backend) commitRoots(ctx context.Context) (map[dotmesh.CommitRef]cas.Hash, error) {
	out := map[dotmesh.CommitRef]cas.Hash{}
	brs, err := b.listBranchDirs()
	if err != nil {
		return nil, err
	}
	for _, br := range brs {
		ids, err := b.Commits(ctx, br)
		if errors.Is(err, dotmesh.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			c := dotmesh.CommitRef{BranchRef: br, ID: id}
			_, root, err := b.readRecord(c)
			if errors.Is(err, dotmesh.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			out[c] = root
		}
	}
	return out, nil
}

// verifyObjects reads every stored object and checks it against its hash,
// on all workers, and calls fn (one call at a time) with its size and the
// damage found; objects gone meanwhile are left out.
func (b *Backend) verifyObjects(ctx context.Context, fn func(h cas.Hash, n int64, err error)) error {
	var mu sync.Mutex
	jobs := make(chan cas.Hash, b.workers)
	var wg sync.WaitGroup
	for i := 0; i < b.workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var scratch []byte
			for h := range jobs {
				n, s, err := b.store.Verify(h, scratch)
				scratch = s
				if errors.Is(err, fs.ErrNotExist) || errors.Is(err, dotmesh.ErrNotFound) {
					continue
				}
				mu.Lock()
				fn(h, n, err)
				mu.Unlock()
			}
		}()
	}
	err := b.store.List(func(h cas.Hash, _ int64) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		jobs <- h
		return nil
	})
	close(jobs)
	wg.Wait()
	return err
}

// Verify implements dotmesh.Verifier: every object is read and checked
// against its hash (in parallel), then every commit's manifest is read to
// name the commits that use each damaged object. A damaged manifest is
// reported as a problem of its commit.
func (b *Backend) Verify(ctx context.Context) (*dotmesh.VerifyReport, error) {
	defer b.useStore()()
	rep := &dotmesh.VerifyReport{Damaged: []dotmesh.DamagedObject{}, Problems: []string{}}
	bad := map[cas.Hash]string{}
	var total int64
	_ = b.store.List(func(_ cas.Hash, size int64) error { total += size; return nil }) // the in-memory index: cheap
	meter := dotmesh.StartProgress(ctx, "verifying", total)
	err := b.verifyObjects(ctx, func(h cas.Hash, n int64, err error) {
		meter.Add(n)
		rep.Objects++
		rep.Bytes += n
		if err != nil {
			bad[h] = err.Error()
		}
	})
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	meter.Done()
	dotmesh.ReportPhase(ctx, "checking commits")
	roots, err := b.commitRoots(ctx)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	users := map[cas.Hash][]dotmesh.CommitRef{}
	for c, root := range roots {
		if _, ok := bad[root]; ok {
			users[root] = append(users[root], c)
		}
		sm, err := loadManifest(b.store, root)
		if err != nil {
			rep.Problems = append(rep.Problems, fmt.Sprintf("commit %s: manifest unreadable: %v", c, err))
			continue
		}
		missing := 0
		_ = sm.objects(func(h cas.Hash) error {
			if _, ok := bad[h]; ok {
				users[h] = append(users[h], c)
			} else if ok, err := b.store.Has(h); !ok || err != nil {
				missing++
			}
			return nil
		})
		if missing > 0 {
			rep.Problems = append(rep.Problems, fmt.Sprintf("commit %s: %d objects are missing", c, missing))
		}
	}
	for h, msg := range bad {
		rep.Damaged = append(rep.Damaged, dotmesh.DamagedObject{Object: h.String(), Error: msg, Refs: users[h]})
	}
	if len(rep.Damaged) > 0 || len(rep.Problems) > 0 {
		b.log.WarnContext(ctx, "verify found damage", "damaged_objects", len(rep.Damaged), "problems", len(rep.Problems))
	}
	return rep, nil
}

// PlanGarbage implements dotmesh.GarbagePlanner: the objects and bytes
// CollectGarbage would remove if the commits in without were gone.
// Like CollectGarbage it stops at the first unreadable manifest.
func (b *Backend) PlanGarbage(ctx context.Context, without []dotmesh.CommitRef) (dotmesh.GCStats, error) {
	var st dotmesh.GCStats
	defer b.useStore()()
	skip := map[dotmesh.CommitRef]bool{}
	for _, c := range without {
		skip[c] = true
	}
	roots, err := b.commitRoots(ctx)
	if err != nil {
		return st, err
	}
	live := map[cas.Hash]struct{}{}
	mark := func(root cas.Hash, what string) error {
		sm, err := loadManifest(b.store, root)
		if err != nil {
			return fmt.Errorf("planning garbage collection: %s: %w", what, err)
		}
		return sm.objects(func(h cas.Hash) error { live[h] = struct{}{}; return nil })
	}
	for c, root := range roots {
		if !skip[c] {
			if err := mark(root, "commit "+c.String()); err != nil {
				return st, err
			}
		}
	}
	brs, err := b.listBranchDirs()
	if err != nil {
		return st, err
	}
	for _, br := range brs {
		if h, ok := b.readSynced(br); ok {
			if err := mark(h, "synced state of "+br.String()); err != nil {
				return st, err
			}
		}
	}
	if _, err := b.pinned(live, false); err != nil {
		return st, err
	}
	if err := ctx.Err(); err != nil {
		return st, err
	}
	plan := b.store.PlanPrune(func(h cas.Hash) bool { _, ok := live[h]; return ok })
	st.ObjectsRemoved, st.BytesRemoved = plan.Objects, plan.Bytes
	return st, nil
}
