package bucketremote

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/dotmesh-io/dotmesh/bucket/repo"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// defaultLockStaleAfter is bucket/repo's default lock expiry, for a
// Remote whose Config leaves Repo.LockStaleAfter zero.
const defaultLockStaleAfter = 30 * time.Minute

// GC removes each branch's commits beyond the newest opts.Keep (keeping
// tagged ones) and every blob no remaining commit uses, under the
// exclusive repository lock (a running push's shared lock makes it
// fail at once with a repo.LockedError naming the holder); a dry run
// takes a shared one.
//
// Commits no branch or tag reaches are those of pushes that never
// finished: they go once older than the lock expiry (a push holds its
// lock until it ends, so none is finishing them by then), with their
// ancestors that no younger one needs. A kept commit whose parent goes
// is marked Pruned: the bucket's history starts there, as on a node.
//
// Nothing is deleted until every kept commit's tree was read, and
// deletion goes records first, then blobs no record names (repo.Prune:
// packs holding only such blobs go, packs with much unused space are
// repacked), then old ref versions: an interruption leaves a readable
// repository and garbage for the next GC.
func (r *Remote) GC(ctx context.Context, opts GCOptions) (GCResult, error) {
	var res GCResult
	if opts.Keep < 0 {
		return res, &dotmesh.InvalidOptionError{Option: "GCOptions.Keep", Problem: fmt.Sprintf("the commits to keep of each branch must be >= 1, or 0 to keep all, not %d", opts.Keep)}
	}
	r.mu.Lock()
	writing, closed := r.lock != nil, r.closed
	r.mu.Unlock()
	if closed {
		return res, fmt.Errorf("%w: the remote %s is closed", dotmesh.ErrInvalidArgument, r.Location())
	}
	if writing && !opts.DryRun {
		return res, fmt.Errorf("%w: this Remote holds a shared lock on the bucket since its first write (a push), and gc needs the exclusive one; run gc with a Remote that has not written, or Close this one first", dotmesh.ErrInUse)
	}
	lock, err := r.repo.Lock(ctx, !opts.DryRun)
	if err != nil {
		return res, err
	}
	defer lock.Unlock(context.WithoutCancel(ctx))

	dotmesh.ReportPhase(ctx, PhaseMarking)
	refs, err := r.maintRefs(ctx, "", stopAtBad)
	if err != nil {
		return res, gcRefused(err)
	}
	all, _, err := r.maintCommits(ctx, stopAtBad)
	if err != nil {
		return res, gcRefused(err)
	}
	plan, err := r.planGC(refs, all, opts.Keep)
	if err != nil {
		return res, gcRefused(err)
	}
	res.Commits, res.Unfinished = plan.dropped, plan.unfinished

	used, err := r.usedBlobs(ctx, plan.keep, func(c commitOf, err error) error {
		return fmt.Errorf("reading the tree of commit %s of %s: %w", c.rec.Commit.ID, c.dot, err)
	})
	if err != nil {
		return res, gcRefused(stopAtBad("", dotmesh.DotName{}, "", err))
	}
	keep := func(id repo.ID) bool { _, ok := used[id]; return ok }
	log := r.log.With("bucket", r.Location(), "keep", opts.Keep, "dry_run", opts.DryRun)
	// Planned first, also for real: a damaged index stops GC before it
	// deleted anything.
	pr, err := r.repo.Prune(ctx, keep, repo.PruneOptions{DryRun: true})
	if err != nil {
		return res, gcRefused(err)
	}
	if opts.DryRun {
		res.Blobs, res.Bytes = pr.Blobs, pr.Bytes
		log.Info("gc", "commits", res.Commits, "unfinished", res.Unfinished, "blobs", res.Blobs, "bytes", res.Bytes, "freed", pr.Freed)
		return res, nil
	}

	// Records first: the kept commits whose parent goes start history,
	// then the dropped commits go. Each step leaves a readable bucket.
	step := func(what string, n int, f func(ctx context.Context, i int) error) error {
		if err := lock.Err(); err != nil {
			return err
		}
		g := newGroup(ctx, r.cfg.Parallel)
		for i := range n {
			g.Go(func(ctx context.Context) error { return f(ctx, i) })
		}
		if err := g.Wait(); err != nil {
			return fmt.Errorf("gc stopped %s (what is left is garbage for the next gc): %w", what, err)
		}
		return nil
	}
	if err := step("marking where histories start", len(plan.prune), func(ctx context.Context, i int) error {
		c := plan.prune[i]
		rec := *c.rec
		rec.Commit.Pruned = true
		name := CommitName(c.dot, rec.Commit.ID)
		if err := r.repo.PutRecord(ctx, KindCommit, name, EncodeCommitRecord(&rec)); err != nil {
			return err
		}
		r.commits.put(name, &rec) // the one record GC rewrites
		return nil
	}); err != nil {
		return GCResult{}, err
	}
	var removed GCResult // what went, should a step fail
	var mu sync.Mutex
	if err := step("removing commit records", len(plan.drop), func(ctx context.Context, i int) error {
		c := plan.drop[i]
		if err := r.repo.DeleteRecord(ctx, KindCommit, CommitName(c.dot, c.rec.Commit.ID)); err != nil {
			return err
		}
		mu.Lock()
		if c.unfinished {
			removed.Unfinished++
		} else {
			removed.Commits++
		}
		mu.Unlock()
		return nil
	}); err != nil {
		return removed, err
	}
	if err := lock.Err(); err != nil {
		return removed, err
	}
	pr, err = r.repo.Prune(ctx, keep, repo.PruneOptions{Lock: lock})
	if err != nil {
		return removed, fmt.Errorf("gc stopped removing blobs (what is left is garbage for the next gc): %w", err)
	}
	res.Blobs, res.Bytes = pr.Blobs, pr.Bytes
	refVersions, err := r.repo.CompactRefs(ctx)
	if err != nil {
		return res, fmt.Errorf("gc removed what it should, then compacting refs failed: %w", err)
	}
	log.Info("gc", "commits", res.Commits, "unfinished", res.Unfinished, "blobs", res.Blobs, "bytes", res.Bytes, "freed", pr.Freed, "packs_deleted", pr.PacksDeleted, "packs_written", pr.PacksWritten, "ref_versions", refVersions)
	return res, nil
}

// gcRefused says that GC deleted nothing.
func gcRefused(err error) error {
	return fmt.Errorf("gc deleted nothing: %w", err)
}

// gcPlan is what GC keeps and removes.
type gcPlan struct {
	keep  []commitOf // every commit that stays
	drop  []dropped
	prune []commitOf // kept commits whose parent goes: they start history
	// dropped counts commits beyond Keep, unfinished those of unfinished
	// pushes.
	dropped, unfinished int
}

type dropped struct {
	commitOf
	unfinished bool
}

// planGC decides which commits stay: each branch's newest keep (all
// when 0), tagged ones, and those of unfinished pushes younger than the
// lock expiry with their ancestors.
func (r *Remote) planGC(refs map[dotmesh.DotName]*refsOfDot, all map[dotmesh.DotName]map[dotmesh.CommitID]*CommitRecord, keep int) (*gcPlan, error) {
	staleAfter, now := r.cfg.Repo.LockStaleAfter, r.cfg.Repo.Now
	if staleAfter <= 0 {
		staleAfter = defaultLockStaleAfter
	}
	if now == nil {
		now = time.Now
	}
	plan := &gcPlan{}
	for dot, commits := range all {
		kept := map[dotmesh.CommitID]bool{}
		reached := map[dotmesh.CommitID]bool{}
		if dr := refs[dot]; dr != nil {
			for _, h := range dr.heads() {
				chain := Ancestry(commits, h.head)
				if len(chain) == 0 {
					return nil, fmt.Errorf("%w: %s of %s names commit %s, which the bucket lacks (run verify on the bucket)", dotmesh.ErrCorrupt, h.what, dot, h.head)
				}
				for i, rec := range chain {
					reached[rec.Commit.ID] = true
					if keep == 0 || i == 0 || !h.tag && i < keep {
						kept[rec.Commit.ID] = true
					}
				}
			}
		}
		// Unfinished pushes: a young commit keeps its unfinished
		// ancestors (what is reached follows Keep).
		for id, rec := range commits {
			if reached[id] || now().Sub(rec.Stored) >= staleAfter {
				continue
			}
			for _, a := range Ancestry(commits, id) {
				if reached[a.Commit.ID] {
					break
				}
				kept[a.Commit.ID] = true
			}
		}
		for id, rec := range commits {
			c := commitOf{dot, rec}
			if !kept[id] {
				plan.drop = append(plan.drop, dropped{c, !reached[id]})
				if reached[id] {
					plan.dropped++
				} else {
					plan.unfinished++
				}
				continue
			}
			plan.keep = append(plan.keep, c)
			if p := rec.Commit.Parent; p != "" && !rec.Commit.Pruned && commits[p] != nil && !kept[p] {
				plan.prune = append(plan.prune, c)
			}
		}
	}
	// Refs of dots without commit records (damage) keep nothing, and are
	// reported by Verify; their heads are missing commits.
	for dot, dr := range refs {
		if all[dot] == nil && len(dr.branches)+len(dr.tags) > 0 {
			return nil, fmt.Errorf("%w: dot %s has refs but no commit records in the bucket (run verify on the bucket)", dotmesh.ErrCorrupt, dot)
		}
	}
	return plan, nil
}

// PhaseMarking is GC's progress phase while it reads the refs, commits and
// trees to find what is used; then repacking (repo.PhaseRepacking) follows.
const PhaseMarking = "marking"
