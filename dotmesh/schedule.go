package dotmesh

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

// The scheduler: each pass (RunDue) finds the dots whose policy is due
// and commits their current branch, then prunes it by the policy's grid.
// What a branch's last run was is kept in the registry (ScheduleState),
// so schedules survive restarts, and a run is due one period after the
// last one: a node that was down over several periods runs once when it
// is back, not once per missed period. In a cluster only the node that
// is the branch's master runs it. An unchanged dot is not committed (the
// engine refuses an empty commit); the run counts as done.

// MetaSchedule is the Commit.Metadata key of commits a schedule made; its
// value is the policy's ID. Grids prune only commits that have it. Only
// the scheduler sets it on a commit here (Commit refuses it otherwise);
// it travels with the commit. It is a name, as every metadata key is, so
// that receivers (nodes of any version, buckets) take such commits.
const MetaSchedule = "dotmesh-schedule"

// Results of a scheduled run.
const (
	ScheduleCommitted = "committed"
	ScheduleUnchanged = "unchanged"
	ScheduleFailed    = "failed"
)

// ScheduleState is a branch's last scheduled run, as the registry keeps it.
type ScheduleState struct {
	Policy     string    `json:"policy"` // the policy's ID
	Time       time.Time `json:"time"`
	Result     string    `json:"result"` // ScheduleCommitted, ScheduleUnchanged, ScheduleFailed
	Commit     CommitID  `json:"commit,omitempty"`
	Error      string    `json:"error,omitempty"`
	Removed    int       `json:"removed,omitempty"`     // commits the grid removed after it
	BytesFreed int64     `json:"bytes_freed,omitempty"` // and the bytes that freed
}

// ScheduleRun is one run of a pass.
type ScheduleRun struct {
	Dot    DotName `json:"dot"`
	Branch string  `json:"branch"`
	ScheduleState
	// Pruned is what the grid removed after the commit; nil when it did
	// not run (no commit, or no grid).
	Pruned *GCResult `json:"pruned,omitempty"`
}

// scheduler is the Node's part of the scheduling: one pass at a time,
// and a wake-up when a policy changes.
type scheduler struct {
	pass     sync.Mutex
	wakeOnce sync.Once
	wake     chan struct{}
}

func (s *scheduler) wakeCh() chan struct{} {
	s.wakeOnce.Do(func() { s.wake = make(chan struct{}, 1) })
	return s.wake
}

// poke wakes Run for a new pass (a policy changed).
func (s *scheduler) poke() {
	select {
	case s.wakeCh() <- struct{}{}:
	default:
	}
}

type scheduledKey struct{}

// scheduledCommit marks ctx as the scheduler's, whose commits may carry
// MetaSchedule.
func scheduledCommit(ctx context.Context) context.Context {
	return context.WithValue(ctx, scheduledKey{}, true)
}

// reservedMetadata refuses the scheduler's metadata key on a commit the
// scheduler does not make (its grid would prune that commit).
func reservedMetadata(ctx context.Context, k string) error {
	if k == MetaSchedule && ctx.Value(scheduledKey{}) == nil {
		return &InvalidOptionError{Option: "CommitOptions.Metadata", Problem: "metadata key " + MetaSchedule + " marks the commits a schedule makes; choose another key"}
	}
	return nil
}

func (n *Node) scheduleState(ctx context.Context, id DotID, branch string) (*ScheduleState, error) {
	kv, err := n.store.Get(ctx, scheduleKey(id, branch))
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return decode[ScheduleState](kv)
}

// maxSchedulerSleep bounds Run's wait between passes, so that policies
// set on other nodes and branches moved here are seen.
const maxSchedulerSleep = 10 * time.Second

// Run runs passes until ctx ends: each when the next run is due, when a
// policy is set on this node, and at least every 10 s. A run started
// before ctx ended finishes first. Stop it before Close.
func (ps *Policies) Run(ctx context.Context) {
	for {
		_, next, err := ps.runDue(ctx)
		if err != nil && ctx.Err() == nil {
			ps.n.log.WarnContext(ctx, "schedules: a pass failed", "err", err)
		}
		wait := maxSchedulerSleep
		if !next.IsZero() {
			wait = min(max(next.Sub(ps.n.now()), 10*time.Millisecond), maxSchedulerSleep)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-ps.n.sched.wakeCh():
			t.Stop()
		}
	}
}

// RunDue runs every schedule that is due now (by the node's clock) on
// this node, one dot after another, and returns what each did. A failed
// run is recorded and retried one period later.
func (ps *Policies) RunDue(ctx context.Context) ([]ScheduleRun, error) {
	runs, _, err := ps.runDue(ctx)
	return runs, err
}

// runDue is RunDue; it also returns when the next run is due (zero: none).
func (ps *Policies) runDue(ctx context.Context) ([]ScheduleRun, time.Time, error) {
	n := ps.n
	n.sched.pass.Lock()
	defer n.sched.pass.Unlock()
	set, err := ps.read(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	if len(set.dots) == 0 && len(set.selectors) == 0 {
		return nil, time.Time{}, nil
	}
	dots, err := n.reg.dots(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	sort.Slice(dots, func(i, j int) bool { return dots[i].DotName().String() < dots[j].DotName().String() })
	live := map[DotID]bool{}
	var runs []ScheduleRun
	var next time.Time
	for _, d := range dots {
		live[d.ID] = true
		p := set.of(d)
		if p == nil || ctx.Err() != nil {
			continue
		}
		b, _, err := n.reg.branch(ctx, d, d.Current)
		if err != nil {
			n.log.WarnContext(ctx, "schedules: reading the current branch", "dot", d.DotName().String(), "err", err)
			continue
		}
		if !n.place.local(b) {
			continue // its master runs it
		}
		last, err := n.scheduleState(ctx, d.ID, b.Name)
		if err != nil {
			return runs, next, err
		}
		now := n.now().UTC()
		if last != nil {
			if due := last.Time.Add(time.Duration(p.Every)); now.Before(due) {
				if next.IsZero() || due.Before(next) {
					next = due
				}
				continue
			}
		}
		run := ps.runOne(context.WithoutCancel(ctx), d, b, p, now)
		runs = append(runs, run)
		if due := run.Time.Add(time.Duration(p.Every)); next.IsZero() || due.Before(next) {
			next = due
		}
	}
	for id := range set.dots {
		if !live[id] {
			n.forgetDot(ctx, id)
		}
	}
	return runs, next, nil
}

// runOne commits branch b of d for policy p, prunes it by p's grid and
// records the run.
func (ps *Policies) runOne(ctx context.Context, d *Dot, b *Branch, p *Policy, now time.Time) ScheduleRun {
	n := ps.n
	name := d.DotName()
	run := ScheduleRun{Dot: name, Branch: b.Name, ScheduleState: ScheduleState{Policy: p.ID(), Time: now}}
	c, err := n.Commit(scheduledCommit(ctx), name, b.Name, CommitOptions{
		Message:  fmt.Sprintf("scheduled commit (every %s)", p.Every),
		Author:   "schedule",
		Metadata: map[string]string{MetaSchedule: p.ID()},
	})
	var nothing *NothingToCommitError
	switch {
	case errors.As(err, &nothing):
		run.Result = ScheduleUnchanged
		n.log.DebugContext(ctx, "scheduled run: unchanged", "dot", name.String(), "branch", b.Name)
	case err != nil:
		run.Result, run.Error = ScheduleFailed, err.Error()
		n.log.WarnContext(ctx, "scheduled commit failed; retried next period", "dot", name.String(), "branch", b.Name, "policy", p.ID(), "err", err)
	default:
		run.Result, run.Commit = ScheduleCommitted, c.ID
		n.log.InfoContext(ctx, "scheduled commit", "dot", name.String(), "branch", b.Name, "commit", c.ID, "policy", p.ID())
		if !p.Keep.IsZero() {
			grid := p.Keep
			res, err := n.gc(ctx, GCOptions{Dot: &name, Grid: &grid, Branch: b.Name}, false)
			if err != nil {
				run.Error = "pruning: " + err.Error()
				n.log.WarnContext(ctx, "pruning by the policy's grid failed", "dot", name.String(), "branch", b.Name, "err", err)
			} else {
				run.Pruned, run.Removed, run.BytesFreed = res, len(res.Removed), res.Stats.BytesRemoved
				if len(res.Removed) > 0 {
					ids := make([]CommitID, 0, len(res.Removed))
					for _, r := range res.Removed {
						ids = append(ids, r.ID)
					}
					n.log.InfoContext(ctx, "pruned by the policy's grid", "dot", name.String(), "branch", b.Name, "keep", grid.String(), "removed", ids, "bytes_freed", res.Stats.BytesRemoved)
				}
			}
		}
	}
	if _, err := n.store.Put(ctx, scheduleKey(d.ID, b.Name), encode(&run.ScheduleState)); err != nil {
		n.log.WarnContext(ctx, "recording a scheduled run", "dot", name.String(), "branch", b.Name, "err", err)
	}
	return run
}
