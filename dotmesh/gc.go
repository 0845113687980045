package dotmesh

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"
)

// GarbagePlanner is an optional capability of a GarbageCollector: what a
// collection would free if the given commits were deleted too, without
// changing anything (for `dm gc --dry-run`).
type GarbagePlanner interface {
	PlanGarbage(ctx context.Context, without []CommitRef) (GCStats, error)
}

// GCOptions tune Node.GC.
type GCOptions struct {
	// Dot limits commit removal to one dot; nil means every dot. Chunks
	// are shared by all dots of a backend, so the sweep is backend-wide.
	Dot *DotName
	// Keep is how many of the newest commits of each branch survive; at
	// least 1 (the head). 0 removes no commit and only sweeps data.
	Keep int
	// Grid, instead of Keep, prunes by a retention grid (a policy's, see
	// KeepGrid and policy.go): per branch, only the commits a schedule
	// made are weighed, newest first, and those the grid does not keep
	// go, unless they are a branch's head or origin, tagged, or in
	// another branch's history. Commits made by hand always stay. A kept
	// commit whose parent goes is linked to its nearest kept ancestor.
	Grid *KeepGrid
	// Branch limits Grid to one branch of Dot; "" means every branch.
	Branch string
	// DryRun reports what would go and changes nothing.
	DryRun bool
}

// GCResult reports what Node.GC removed (or, dry, would remove).
type GCResult struct {
	DryRun  bool            `json:"dry_run"`
	Removed []RemovedCommit `json:"removed"`
	// Expired lists the incoming transfers whose pin time ran out since
	// their last byte, which this collection ended (see IncomingTransfer).
	Expired []IncomingTransfer `json:"expired_transfers"`
	// Stats sums the backends' sweeps; with DryRun, estimates where a
	// backend can plan (GarbagePlanner), else zero.
	Stats GCStats `json:"stats"`
}

// RemovedCommit names a commit GC removed.
type RemovedCommit struct {
	Dot     DotName   `json:"dot"`
	Branch  string    `json:"branch"`
	ID      CommitID  `json:"id"`
	Time    time.Time `json:"time"`
	Message string    `json:"message"`
}

// GC applies the retention policy (Dysnomia's generations): it keeps the
// newest opts.Keep commits of each branch, every branch's origin and
// every tagged commit, and
// removes every other commit in some branch's history — registry record
// and backend data. The oldest kept commit keeps its parent id and is
// marked Pruned: `dm log` ends there, saying so, and transfers send the
// history from there as a shallow one (see shallow.go). Commits in
// no branch's history are left alone (they may be arriving), unless the
// incoming transfer that brought them expired. Then every
// backend that collects garbage sweeps what nothing references; the dump
// backend's GC lock keeps concurrent commits safe.
func (n *Node) GC(ctx context.Context, opts GCOptions) (res *GCResult, err error) {
	return n.gc(ctx, opts, true)
}

// gc is GC; without sweep, the backends are swept only when commits
// were removed (a schedule's pruning, which mostly removes nothing).
func (n *Node) gc(ctx context.Context, opts GCOptions, sweep bool) (res *GCResult, err error) {
	done := n.begin(OpGC)
	defer func() {
		ev := OpEvent{Err: err}
		if err == nil {
			ev.GC = res
		}
		done(ev)
	}()
	if opts.Keep < 0 {
		return nil, &InvalidOptionError{Option: "GCOptions.Keep", Problem: "the commits to keep must be >= 1, or 0 to remove none"}
	}
	if opts.Grid != nil {
		if opts.Keep != 0 {
			return nil, &InvalidOptionError{Option: "GCOptions.Grid", Problem: "a retention grid replaces Keep; give one of them"}
		}
		if err := opts.Grid.Validate(); err != nil {
			return nil, err
		}
	}
	if opts.Branch != "" {
		if opts.Grid == nil || opts.Dot == nil {
			return nil, &InvalidOptionError{Option: "GCOptions.Branch", Problem: "a branch is chosen only with Grid and Dot"}
		}
		if err := ValidateName("branch", opts.Branch); err != nil {
			return nil, err
		}
	}
	var dots []*Dot
	if opts.Dot != nil {
		d, err := n.Dot(ctx, *opts.Dot)
		if err != nil {
			return nil, err
		}
		dots = []*Dot{d}
	} else {
		var err error
		if dots, err = n.reg.dots(ctx); err != nil {
			return nil, err
		}
	}
	res = &GCResult{DryRun: opts.DryRun, Removed: []RemovedCommit{}, Expired: []IncomingTransfer{}}
	// Abandoned incoming transfers go first, so the sweep frees their data.
	if opts.DryRun {
		all, err := n.incomingTransfers(ctx)
		if err != nil {
			return nil, err
		}
		for _, t := range all {
			if n.expired(&incomingRecord{Namespace: t.Namespace, Name: t.Name, Branch: t.Branch, Updated: t.Updated}) {
				res.Expired = append(res.Expired, t)
			}
		}
	} else {
		var err error
		if res.Expired, err = n.expireIncoming(ctx); err != nil {
			return res, fmt.Errorf("ending expired incoming transfers: %w", err)
		}
	}
	without := map[string][]CommitRef{} // per backend, for planning
	if opts.Keep > 0 || opts.Grid != nil && !opts.Grid.IsZero() {
		for _, d := range dots {
			refs, err := n.pruneDot(ctx, d, opts, res)
			if err != nil {
				return res, err
			}
			without[d.Backend] = append(without[d.Backend], refs...)
		}
	}
	if !sweep && len(res.Removed) == 0 && len(res.Expired) == 0 {
		return res, nil
	}
	for _, name := range n.BackendNames() {
		be := n.backends[name]
		var (
			st  GCStats
			err error
		)
		if opts.DryRun {
			p, ok := be.(GarbagePlanner)
			if !ok {
				continue
			}
			st, err = p.PlanGarbage(ctx, without[name])
		} else {
			gc, ok := be.(GarbageCollector)
			if !ok {
				continue
			}
			st, err = gc.CollectGarbage(ctx)
		}
		if err != nil {
			return res, fmt.Errorf("garbage collection on backend %s: %w", name, err)
		}
		res.Stats.ObjectsRemoved += st.ObjectsRemoved
		res.Stats.BytesRemoved += st.BytesRemoved
	}
	n.log.InfoContext(ctx, "gc", "keep", opts.Keep, "grid", gridText(opts.Grid), "dry_run", opts.DryRun, "commits_removed", len(res.Removed), "bytes_removed", res.Stats.BytesRemoved)
	return res, nil
}

// pruneDot removes (or, dry, lists) the commits of d beyond opts.Keep per
// branch, or those opts.Grid does not keep, registry first in one
// transaction guarded by every branch's revision, then the backend data.
func (n *Node) pruneDot(ctx context.Context, d *Dot, opts GCOptions, res *GCResult) ([]CommitRef, error) {
	keep, dry := opts.Keep, opts.DryRun
	defer n.lockDot(d.ID)()
	kvs, err := n.store.List(ctx, branchPrefix(d.ID))
	if err != nil {
		return nil, err
	}
	commits, err := n.reg.commits(ctx, d.ID)
	if err != nil {
		return nil, err
	}
	kept := map[CommitID]bool{}
	inHistory := map[CommitID]bool{}
	var conds []Condition
	branches := make([]*Branch, 0, len(kvs))
	for _, kv := range kvs {
		b, err := decode[Branch](kv)
		if err != nil {
			return nil, err
		}
		branches = append(branches, b)
		conds = append(conds, IfRevision(kv.Key, kv.Revision))
	}
	var gridDrop map[CommitID]bool
	if opts.Grid != nil {
		gridDrop = gridDrops(commits, branches, *opts.Grid, opts.Branch)
	}
	for _, b := range branches {
		kept[b.Origin] = true
		for i, c := range ancestry(commits, b.Head) {
			inHistory[c.ID] = true
			if i < keep || opts.Grid != nil && !gridDrop[c.ID] {
				kept[c.ID] = true
			}
		}
	}
	tagged, err := n.reg.tagged(ctx, d.ID)
	if err != nil {
		return nil, err
	}
	for id := range tagged { // tagged commits stay, as branch origins do
		kept[id] = true
	}
	var drop []*Commit
	for id := range inHistory {
		if !kept[id] {
			drop = append(drop, commits[id])
		}
	}
	if len(drop) == 0 {
		return nil, nil
	}
	sort.Slice(drop, func(i, j int) bool { return drop[i].Time.Before(drop[j].Time) })
	refs := make([]CommitRef, 0, len(drop))
	ops := make([]Op, 0, len(drop))
	for _, c := range drop {
		refs = append(refs, c.Ref())
		ops = append(ops, DeleteOp(commitKey(d.ID, c.ID)))
		res.Removed = append(res.Removed, RemovedCommit{Dot: d.DotName(), Branch: c.Branch, ID: c.ID, Time: c.Time, Message: c.Message})
	}
	if dry {
		return refs, nil
	}
	if opts.Grid != nil {
		ops = append(ops, relinkOps(commits, drop)...)
	} else {
		ops = append(ops, prunedOps(commits, drop)...)
	}
	if _, err := n.store.Txn(ctx, conds, ops); err != nil {
		if errors.Is(err, ErrConflict) {
			return nil, fmt.Errorf("%w: dot %s changed during gc; run it again", ErrConflict, d.DotName())
		}
		return nil, err
	}
	be, err := n.backendOf(d)
	if err != nil {
		return refs, nil // data stays; nothing refers to it any more
	}
	n.dropScratch(d.ID)
	for _, r := range refs {
		if err := be.DeleteCommit(ctx, r); err != nil {
			n.log.WarnContext(ctx, "gc: deleting data of a removed commit", "commit", r.ID, "err", err)
		}
	}
	return refs, nil
}
