package dotmesh_test

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/backend/dump"
	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// fakeClock is a node's clock that a test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// schedEnv is a node on bbolt and the files backend with a fake clock,
// reopened on the same directory to restart it.
type schedEnv struct {
	t     *testing.T
	dir   string
	clock *fakeClock
	node  *dotmesh.Node
	obs   *commitLog
}

func newSchedEnv(t *testing.T) *schedEnv {
	e := &schedEnv{t: t, dir: t.TempDir(), clock: &fakeClock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}, obs: &commitLog{}}
	e.open()
	return e
}

func (e *schedEnv) open() {
	st, err := bboltstore.Open(filepath.Join(e.dir, "registry.db"), bboltstore.Options{})
	require.NoError(e.t, err)
	be, err := dump.Open(filepath.Join(e.dir, "dump"), dump.Options{})
	require.NoError(e.t, err)
	n, err := dotmesh.NewNode(context.Background(), dotmesh.Options{Store: st, Backends: []dotmesh.StorageBackend{be}, Now: e.clock.now, Observer: e.obs})
	require.NoError(e.t, err)
	e.node = n
	e.t.Cleanup(func() { n.Close() })
}

func (e *schedEnv) restart() {
	require.NoError(e.t, e.node.Close())
	e.open()
}

// change writes size random bytes to file f of dot name.
func (e *schedEnv) change(name dotmesh.DotName, f string, size int) {
	p, err := e.node.SubdotPath(context.Background(), dotmesh.VolumeName{Dot: name})
	require.NoError(e.t, err)
	b := make([]byte, size)
	rand.Read(b)
	require.NoError(e.t, os.WriteFile(filepath.Join(p, f), b, 0o644))
}

func (e *schedEnv) run() []dotmesh.ScheduleRun {
	runs, err := e.node.Policies().RunDue(context.Background())
	require.NoError(e.t, err)
	return runs
}

func (e *schedEnv) log(name dotmesh.DotName, branch string) []*dotmesh.Commit {
	cs, err := e.node.Log(context.Background(), name, branch, 0)
	require.NoError(e.t, err)
	return cs
}

// commitLog is an Observer that keeps every commit the node made.
type commitLog struct {
	mu      sync.Mutex
	commits []dotmesh.Commit
}

func (*commitLog) Started(string)                 {}
func (*commitLog) Moved(dotmesh.Direction, int64) {}
func (l *commitLog) Done(ev dotmesh.OpEvent) {
	if ev.Op == dotmesh.OpCommit && ev.Err == nil && ev.Commit != nil {
		l.mu.Lock()
		l.commits = append(l.commits, *ev.Commit)
		l.mu.Unlock()
	}
}

// scheduled returns the scheduled commits made so far, newest first.
func (l *commitLog) scheduled() []dotmesh.Commit {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []dotmesh.Commit
	for _, c := range l.commits {
		if c.Metadata[dotmesh.MetaSchedule] != "" {
			out = append(out, c)
		}
	}
	slices.Reverse(out)
	return out
}

func every(t *testing.T, s string) dotmesh.Interval {
	v, err := dotmesh.ParseEvery(s)
	require.NoError(t, err)
	return v
}

// TestScheduleRuns: a policy commits on schedule with its metadata, skips
// an unchanged dot, catches a long gap up once, and survives a restart.
func TestScheduleRuns(t *testing.T) {
	ctx := context.Background()
	e := newSchedEnv(t)
	_, err := e.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	e.change(app, "f", 100)
	p, err := e.node.Policies().Set(ctx, dotmesh.Policy{Dot: &app, Every: every(t, "15m")})
	require.NoError(t, err)
	require.Equal(t, "dot:app", p.ID())

	runs := e.run() // a new policy runs at once
	require.Len(t, runs, 1)
	require.Equal(t, dotmesh.ScheduleCommitted, runs[0].Result)
	c := e.log(app, "")[0]
	require.Equal(t, runs[0].Commit, c.ID)
	require.Equal(t, "scheduled commit (every 15m)", c.Message)
	require.Equal(t, "dot:app", c.Metadata[dotmesh.MetaSchedule])

	e.clock.add(time.Minute)
	require.Empty(t, e.run(), "not due a minute later")
	e.clock.add(14 * time.Minute)
	runs = e.run()
	require.Len(t, runs, 1)
	require.Equal(t, dotmesh.ScheduleUnchanged, runs[0].Result, "an unchanged dot is not committed")
	require.Len(t, e.log(app, ""), 1)

	e.change(app, "f", 100)
	e.clock.add(5 * time.Minute)
	require.Empty(t, e.run(), "the unchanged run counts: next due 15m after it")
	e.clock.add(10 * time.Minute)
	runs = e.run()
	require.Len(t, runs, 1)
	require.Equal(t, dotmesh.ScheduleCommitted, runs[0].Result)

	// Down for five hours (20 periods): one run, not twenty.
	e.change(app, "f", 100)
	e.restart()
	e.clock.add(5 * time.Hour)
	runs = e.run()
	require.Len(t, runs, 1)
	require.Equal(t, dotmesh.ScheduleCommitted, runs[0].Result)
	require.Empty(t, e.run())
	e.clock.add(time.Minute)
	require.Empty(t, e.run())
	require.Len(t, e.log(app, ""), 3)

	// The state and the policy live in the registry: after a restart the
	// next run is still 15 minutes after the last.
	e.restart()
	st, err := e.node.Policies().Status(ctx, app)
	require.NoError(t, err)
	require.NotNil(t, st.Policy)
	require.Equal(t, dotmesh.ScheduleCommitted, st.Last.Result)
	require.Equal(t, st.Last.Time.Add(15*time.Minute), st.Next)
	require.Empty(t, e.run())
	e.change(app, "f", 100)
	e.clock.add(13 * time.Minute) // 14 after the last run
	require.Empty(t, e.run())
	e.clock.add(time.Minute)
	require.Len(t, e.run(), 1)
	require.Len(t, e.log(app, ""), 4)

	// Removed, it runs no more.
	require.NoError(t, e.node.Policies().RemoveDot(ctx, app))
	require.ErrorIs(t, e.node.Policies().RemoveDot(ctx, app), dotmesh.ErrNotFound)
	e.change(app, "f", 100)
	e.clock.add(time.Hour)
	require.Empty(t, e.run())
}

// TestSchedulePrunesByGrid: after each scheduled commit the grid prunes
// the branch's scheduled commits; hand-made commits, heads, tags, another
// branch's history and origins stay; the history stays one chain; what
// survives is what the grid keeps of every scheduled commit made; and
// bytes freed are reported.
func TestSchedulePrunesByGrid(t *testing.T) {
	ctx := context.Background()
	e := newSchedEnv(t)
	_, err := e.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	grid := dotmesh.KeepGrid{Last: 2, Hourly: 3}
	_, err = e.node.Policies().Set(ctx, dotmesh.Policy{Dot: &app, Every: every(t, "20m"), Keep: grid})
	require.NoError(t, err)

	var freed int64
	var protected, made []dotmesh.CommitID
	for i := 0; i < 15; i++ {
		e.change(app, "f", 64<<10) // random: its chunks are its own
		runs := e.run()
		require.Len(t, runs, 1)
		require.Equal(t, dotmesh.ScheduleCommitted, runs[0].Result, runs[0].Error)
		freed += runs[0].BytesFreed
		made = append(made, runs[0].Commit)
		if runs[0].Pruned != nil {
			require.Len(t, runs[0].Pruned.Removed, runs[0].Removed)
		}
		switch i {
		case 1: // tagged
			_, err := e.node.Tags().Create(ctx, app, "keepme", dotmesh.TagOptions{Ref: string(runs[0].Commit)})
			require.NoError(t, err)
			protected = append(protected, runs[0].Commit)
		case 3: // a branch is made from it: its history is side's too
			_, err := e.node.CreateBranch(ctx, app, "side", string(runs[0].Commit))
			require.NoError(t, err)
			protected = append(protected, made...)
		case 5: // a hand-made commit
			e.change(app, "g", 10)
			c, err := e.node.Commit(ctx, app, "", dotmesh.CommitOptions{Message: "by hand", Author: "t"})
			require.NoError(t, err)
			protected = append(protected, c.ID)
		}
		e.clock.add(20 * time.Minute)
	}
	require.Positive(t, freed, "pruned commits' chunks are freed and counted")

	all := e.obs.scheduled()
	require.Len(t, all, 15)
	times := make([]time.Time, len(all))
	for i, c := range all {
		times[i] = c.Time
	}
	want := map[dotmesh.CommitID]bool{}
	for i, why := range grid.Keep(times) {
		if len(why) > 0 {
			want[all[i].ID] = true
		}
	}
	for _, id := range protected {
		want[id] = true
	}
	chain := e.log(app, "master")
	got := map[dotmesh.CommitID]bool{}
	for i, c := range chain {
		got[c.ID] = true
		require.False(t, c.Pruned, "the history is one chain (%s)", c.Message)
		if i+1 < len(chain) {
			require.Equal(t, chain[i+1].ID, c.Parent, "each kept commit names the next kept one as parent")
		}
	}
	require.Equal(t, want, got)
	require.Less(t, len(got), 15)

	// Every kept commit's data is whole: reset to the oldest and verify.
	_, err = e.node.Reset(ctx, app, "master", string(chain[len(chain)-1].ID), dotmesh.ResetOptions{Hard: true})
	require.NoError(t, err)
	vr, err := e.node.Verify(ctx, nil)
	require.NoError(t, err)
	require.True(t, vr.OK())
}

// TestPolicyPruneDryRun: the policy's dry run lists exactly what a real
// prune then removes, with id, branch, time and message; gc --keep's dry
// run lists them too; a commit of another branch's history stays.
func TestPolicyPruneDryRun(t *testing.T) {
	ctx := context.Background()
	e := newSchedEnv(t)
	_, err := e.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	_, err = e.node.Policies().Set(ctx, dotmesh.Policy{Dot: &app, Every: every(t, "1m")})
	require.NoError(t, err)
	for i := 0; i < 6; i++ {
		e.change(app, "f", 1000)
		require.Len(t, e.run(), 1)
		e.clock.add(time.Minute)
	}
	log := e.log(app, "")
	require.Len(t, log, 6)
	// Another branch's history holds the two oldest.
	_, err = e.node.CreateBranch(ctx, app, "old", string(log[4].ID))
	require.NoError(t, err)

	gcDry, err := e.node.GC(ctx, dotmesh.GCOptions{Dot: &app, Keep: 2, DryRun: true})
	require.NoError(t, err)
	for _, r := range gcDry.Removed {
		require.False(t, r.Time.IsZero())
		require.Equal(t, "scheduled commit (every 1m)", r.Message)
	}

	_, err = e.node.Policies().Prune(ctx, app, dotmesh.PruneOptions{DryRun: true})
	require.ErrorIs(t, err, dotmesh.ErrInvalidArgument, "a policy without a grid has nothing to prune by")
	grid := dotmesh.KeepGrid{Last: 1}
	dry, err := e.node.Policies().Prune(ctx, app, dotmesh.PruneOptions{Grid: &grid, DryRun: true})
	require.NoError(t, err)
	require.True(t, dry.DryRun)
	var ids []dotmesh.CommitID
	for _, r := range dry.Removed {
		ids = append(ids, r.ID)
		require.Equal(t, "master", r.Branch)
		require.Equal(t, "scheduled commit (every 1m)", r.Message)
		require.False(t, r.Time.IsZero())
	}
	// log[0] is the head (kept by last=1), log[4] and log[5] are old's.
	require.ElementsMatch(t, []dotmesh.CommitID{log[1].ID, log[2].ID, log[3].ID}, ids)
	require.Len(t, e.log(app, ""), 6, "a dry run changes nothing")

	res, err := e.node.Policies().Prune(ctx, app, dotmesh.PruneOptions{Grid: &grid})
	require.NoError(t, err)
	require.Equal(t, dry.Removed, res.Removed)
	after := e.log(app, "")
	require.Equal(t, []dotmesh.CommitID{log[0].ID, log[4].ID, log[5].ID}, []dotmesh.CommitID{after[0].ID, after[1].ID, after[2].ID})
	require.Len(t, e.log(app, "old"), 2)
}

// TestPolicyValidation: bad policies are refused and nothing is stored;
// the scheduler's metadata key is not a user's.
func TestPolicyValidation(t *testing.T) {
	ctx := context.Background()
	e := newSchedEnv(t)
	_, err := e.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	sel := dotmesh.Selector{}
	missing := dotmesh.DotName{Namespace: "admin", Name: "nope"}
	for _, p := range []dotmesh.Policy{
		{Every: every(t, "1m")},
		{Dot: &app, Selector: &dotmesh.Selector{Namespace: "admin"}, Every: every(t, "1m")},
		{Dot: &app},
		{Dot: &app, Every: every(t, "1m"), Keep: dotmesh.KeepGrid{Daily: -1}},
		{Selector: &sel, Every: every(t, "1m")},
	} {
		_, err := e.node.Policies().Set(ctx, p)
		require.ErrorIs(t, err, dotmesh.ErrInvalidArgument, "%+v", p)
	}
	_, err = e.node.Policies().Set(ctx, dotmesh.Policy{Dot: &missing, Every: every(t, "1m")})
	require.ErrorIs(t, err, dotmesh.ErrNotFound)
	ps, err := e.node.Policies().List(ctx)
	require.NoError(t, err)
	require.Empty(t, ps)

	e.change(app, "f", 10)
	_, err = e.node.Commit(ctx, app, "", dotmesh.CommitOptions{Message: "m", Metadata: map[string]string{dotmesh.MetaSchedule: "x"}})
	require.ErrorIs(t, err, dotmesh.ErrInvalidArgument, "only the scheduler marks commits")
}

// TestScheduledCommitsTravel: a scheduled commit's metadata is a valid
// key for every receiver: it pushes, and the receiver's grid prunes it
// like its own scheduled commits.
func TestScheduledCommitsTravel(t *testing.T) {
	ctx := context.Background()
	a, b := newSchedEnv(t), newSchedEnv(t)
	_, err := a.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	_, err = a.node.Policies().Set(ctx, dotmesh.Policy{Dot: &app, Every: every(t, "1m")})
	require.NoError(t, err)
	for i := 0; i < 3; i++ {
		a.change(app, "f", 100)
		require.Len(t, a.run(), 1)
		a.clock.add(time.Minute)
	}
	_, err = a.node.Push(ctx, app, "", dotmesh.LocalTransport(b.node), dotmesh.TransferOptions{})
	require.NoError(t, err)
	got := b.log(app, "")
	require.Len(t, got, 3)
	require.Equal(t, "dot:app", got[0].Metadata[dotmesh.MetaSchedule])
	res, err := b.node.Policies().Prune(ctx, app, dotmesh.PruneOptions{Grid: &dotmesh.KeepGrid{Last: 1}})
	require.NoError(t, err)
	require.Len(t, res.Removed, 2)
}

// TestSelectorPolicy: a selector's policy runs for the dots it chooses; a
// dot's own policy wins over it; a deleted dot's policy goes with it.
func TestSelectorPolicy(t *testing.T) {
	ctx := context.Background()
	e := newSchedEnv(t)
	db := dotmesh.DotName{Namespace: "admin", Name: "db"}
	web := dotmesh.DotName{Namespace: "admin", Name: "web"}
	other := dotmesh.DotName{Namespace: "admin", Name: "other"}
	for _, d := range []dotmesh.DotName{db, web, other} {
		_, err := e.node.CreateDot(ctx, d, dotmesh.CreateDotOptions{})
		require.NoError(t, err)
		e.change(d, "f", 10)
	}
	for _, d := range []dotmesh.DotName{db, web} {
		_, err := e.node.Label(ctx, d, dotmesh.LabelChange{Set: map[string]string{"app": "shop"}})
		require.NoError(t, err)
	}
	sel, err := dotmesh.ParseSelector("admin", []string{"app=shop"})
	require.NoError(t, err)
	sp, err := e.node.Policies().Set(ctx, dotmesh.Policy{Selector: &sel, Every: every(t, "1h")})
	require.NoError(t, err)
	_, err = e.node.Policies().Set(ctx, dotmesh.Policy{Dot: &web, Every: every(t, "10m")})
	require.NoError(t, err)

	runs := e.run()
	require.Len(t, runs, 2)
	require.Equal(t, db, runs[0].Dot)
	require.Equal(t, sp.ID(), runs[0].Policy)
	require.Equal(t, "selector:namespace admin, app=shop", runs[0].Policy)
	require.Equal(t, web, runs[1].Dot)
	require.Equal(t, "dot:web", runs[1].Policy)
	require.Equal(t, "dot:web", e.log(web, "")[0].Metadata[dotmesh.MetaSchedule])

	e.change(db, "f", 10)
	e.change(web, "f", 10)
	e.clock.add(10 * time.Minute)
	runs = e.run()
	require.Len(t, runs, 1)
	require.Equal(t, web, runs[0].Dot)

	ps, err := e.node.Policies().List(ctx)
	require.NoError(t, err)
	require.Len(t, ps, 2)
	require.Equal(t, web, *ps[0].Dot)
	require.Equal(t, sel.String(), ps[1].Selector.String())

	require.NoError(t, e.node.DeleteDot(ctx, web))
	e.clock.add(time.Hour)
	require.Len(t, e.run(), 1) // db
	ps, err = e.node.Policies().List(ctx)
	require.NoError(t, err)
	require.Len(t, ps, 1)
	require.NoError(t, e.node.Policies().RemoveSelector(ctx, sel))
	require.True(t, errors.Is(e.node.Policies().RemoveSelector(ctx, sel), dotmesh.ErrNotFound))
}
