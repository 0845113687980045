package dotmesh_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// LogPage pages through Log's answer: the same commits, in the same
// order, with the same pruned mark, one page at a time.
func TestLogPageMatchesLog(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	for i := 0; i < 12; i++ {
		_, err := e.node.Commit(ctx, app, "", dotmesh.CommitOptions{AllowEmpty: true, Message: fmt.Sprint("c", i), Metadata: map[string]string{"i": fmt.Sprint(i)}})
		require.NoError(t, err)
	}
	all, err := e.node.Log(ctx, app, "", 0)
	require.NoError(t, err)
	require.Len(t, all, 12)
	var paged []*dotmesh.Commit
	for skip := 0; ; skip += 5 {
		page, more, err := e.node.LogPage(ctx, app, "", skip, 5)
		require.NoError(t, err)
		paged = append(paged, page...)
		require.Equal(t, skip+5 < 12, more, "skip %d", skip)
		if !more {
			break
		}
	}
	require.Equal(t, all, paged)
	require.Equal(t, "11", paged[0].Metadata["i"])

	// Past the end: nothing, no error. A limited Log is the first page.
	page, more, err := e.node.LogPage(ctx, app, "", 12, 5)
	require.NoError(t, err)
	require.Empty(t, page)
	require.False(t, more)
	first, err := e.node.Log(ctx, app, "", 3)
	require.NoError(t, err)
	require.Equal(t, all[:3], first)

	_, _, err = e.node.LogPage(ctx, app, "", -1, 5)
	require.ErrorIs(t, err, dotmesh.ErrInvalidArgument)
	_, _, err = e.node.LogPage(ctx, app, "", 0, 0)
	require.ErrorIs(t, err, dotmesh.ErrInvalidArgument)
	_, _, err = e.node.LogPage(ctx, dotmesh.DotName{Namespace: "admin", Name: "nosuch"}, "", 0, 5)
	require.ErrorIs(t, err, dotmesh.ErrNotFound)

	// ResolveRef walks the same links.
	c, err := e.node.ResolveRef(ctx, app, "", "HEAD~4")
	require.NoError(t, err)
	require.Equal(t, all[4], c)
	c, err = e.node.ResolveRef(ctx, app, "", string(all[7].ID[:10]))
	require.NoError(t, err)
	require.Equal(t, all[7].ID, c.ID)
	_, err = e.node.ResolveRef(ctx, app, "", "HEAD~12")
	require.ErrorIs(t, err, dotmesh.ErrNotFound)
}

func TestDotNamesAreSorted(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, n := range []dotmesh.DotName{{Namespace: "bob", Name: "a"}, {Namespace: "admin", Name: "z"}, {Namespace: "admin", Name: "b"}} {
		_, err := e.node.CreateDot(ctx, n, dotmesh.CreateDotOptions{})
		require.NoError(t, err)
	}
	names, err := e.node.DotNames(ctx)
	require.NoError(t, err)
	require.Equal(t, []dotmesh.DotName{{Namespace: "admin", Name: "b"}, {Namespace: "admin", Name: "z"}, {Namespace: "bob", Name: "a"}}, names)
}

// countingStore counts the registry's reads.
type countingStore struct {
	dotmesh.ClusterStore
	gets, lists *int
}

func (s countingStore) Get(ctx context.Context, key string) (dotmesh.KV, error) {
	*s.gets++
	return s.ClusterStore.Get(ctx, key)
}

func (s countingStore) List(ctx context.Context, prefix string) ([]dotmesh.KV, error) {
	*s.lists++
	return s.ClusterStore.List(ctx, prefix)
}

// A page of a long history reads its few records one by one, a commit id
// prefix or a long page lists them; every way gives the full history's
// slice, with the same pruned mark.
func TestHistoryPagesEqualFullHistory(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	const n = 80 // more than a walk reads one by one
	for i := 0; i < n; i++ {
		_, err := e.node.Commit(ctx, app, "", dotmesh.CommitOptions{AllowEmpty: true, Message: fmt.Sprint("c", i), Metadata: map[string]string{"i": fmt.Sprint(i)}})
		require.NoError(t, err)
	}
	_, err = e.node.Tags().Create(ctx, app, "v1", dotmesh.TagOptions{Ref: "HEAD~10"})
	require.NoError(t, err)
	require.NoError(t, e.node.Close())
	var gets, lists int
	e.open(func(s dotmesh.ClusterStore) dotmesh.ClusterStore { return countingStore{s, &gets, &lists} })

	check := func(t *testing.T, wantPrunedAt int) {
		all, more, err := e.node.History(ctx, app, "", "", 0, 0)
		require.NoError(t, err)
		require.False(t, more)
		for i, c := range all {
			require.Equal(t, i == wantPrunedAt, c.Pruned, "commit %d", i)
		}
		const point, listed, either = 1, 2, 0 // how the records are read
		for _, p := range []struct {
			ref         string
			back        int
			skip, limit int
			reads       int
		}{
			{"", 0, 0, 1, point}, {"", 0, 0, 20, point}, {"", 0, 5, 20, point}, {"", 0, len(all) - 3, 20, either},
			{"", 0, len(all) - 1, 1, either}, {"", 0, len(all), 5, either}, {"", 0, 0, n, listed},
			{"HEAD~3", 3, 0, 20, point}, {"master", 0, 10, 10, point}, {"v1", 10, 0, 20, point},
			{"v1~2", 12, 4, 7, point}, {string(all[20].ID[:8]), 20, 0, 20, listed}, {string(all[30].ID), 30, 2, 5, listed},
		} {
			gets, lists = 0, 0
			page, more, err := e.node.History(ctx, app, "", p.ref, p.skip, p.limit)
			require.NoError(t, err, "%+v", p)
			from := min(p.back+p.skip, len(all))
			to := min(from+p.limit, len(all))
			want := all[from:to]
			if len(want) == 0 {
				want = nil
			}
			require.Equal(t, want, page, "%+v", p)
			require.Equal(t, to < len(all), more, "%+v", p)
			requireHistoryJSON(t, e.node, p.ref, p.skip, p.limit, page, more)
			// A listing may be the records kept from the last one (the
			// dot's did not change): then neither lists nor reads them.
			switch p.reads {
			case point:
				require.Zero(t, lists, "%+v: %d lists, %d gets", p, lists, gets)
			case listed:
				require.Less(t, gets, 16, "%+v: %d lists, %d gets", p, lists, gets) // not one a commit
			}
		}
		// The page's copies are the caller's: changing one changes no other answer.
		page, _, err := e.node.History(ctx, app, "", "", 0, 2)
		require.NoError(t, err)
		page[0].Message, page[0].Metadata["i"] = "changed", "changed"
		again, _, err := e.node.History(ctx, app, "", "", 0, 2)
		require.NoError(t, err)
		require.Equal(t, all[:2], again)
	}
	t.Run("whole", func(t *testing.T) { check(t, -1) })
	requireHistoryJSON(t, e.node, "", 0, 0, nil, false) // the whole history in one page
	_, err = e.node.GC(ctx, dotmesh.GCOptions{Dot: &app, Keep: 40})
	require.NoError(t, err)
	t.Run("pruned", func(t *testing.T) { check(t, 39) })
}

// requireHistoryJSON checks that HistoryJSON gives History's page: each
// commit's JSON decodes to History's commit, under its id.
func requireHistoryJSON(t *testing.T, n *dotmesh.Node, ref string, skip, limit int, want []*dotmesh.Commit, wantMore bool) {
	t.Helper()
	if want == nil && limit == 0 {
		var err error
		want, wantMore, err = n.History(context.Background(), app, "", ref, skip, limit)
		require.NoError(t, err)
	}
	got, more, err := n.HistoryJSON(context.Background(), app, "", ref, skip, limit)
	require.NoError(t, err)
	require.Equal(t, wantMore, more)
	require.Len(t, got, len(want))
	for i, c := range got {
		var d dotmesh.Commit
		require.NotContains(t, string(c.JSON), "\n", "a record of HistoryJSON on one line")
		require.NoError(t, json.Unmarshal(c.JSON, &d), "%s", c.JSON)
		require.Equal(t, want[i].ID, c.ID)
		require.Equal(t, *want[i], d)
	}
}

// A whole history read again while the dot's commit records did not
// change lists none of them (the records kept from the last listing); a
// commit through the node is in the next one at once, and a change
// another writer makes (here: the store written directly, a record
// deleted as a gc elsewhere would) through the watch, within a second.
func TestHistoryKeepsUnchangedRecords(t *testing.T) {
	ctx := context.Background()
	e, cs := newCountedDot(t)
	whole := func() []*dotmesh.Commit {
		t.Helper()
		all, _, err := e.node.History(ctx, app, "", "", 0, 0)
		require.NoError(t, err)
		js, _, err := e.node.HistoryJSON(ctx, app, "", "", 0, 0)
		require.NoError(t, err)
		require.Len(t, js, len(all))
		return all
	}
	first := whole()
	require.Len(t, first, 3)
	require.Eventually(t, func() bool {
		whole()
		before := cs.reads.Load()
		return len(whole()) == 3 && cs.reads.Load() == before
	}, 5*time.Second, 10*time.Millisecond, "a history of unchanged records lists them again")
	require.Equal(t, first, whole())
	e.commit("fourth")
	before := cs.reads.Load()
	all := whole()
	require.Len(t, all, 4, "a commit through the node is in the history at once")
	require.Equal(t, "fourth", all[0].Message)
	require.Greater(t, cs.reads.Load(), before)
	st, err := e.node.Status(ctx, app)
	require.NoError(t, err)
	require.NoError(t, e.st.Delete(ctx, "commits/"+string(st.Dot.ID)+"/"+string(all[3].ID)))
	// The watch may tell of the delete between History and HistoryJSON,
	// so here the two only have to agree once both have seen it.
	require.Eventually(t, func() bool {
		all, _, err := e.node.History(ctx, app, "", "", 0, 0)
		require.NoError(t, err)
		js, _, err := e.node.HistoryJSON(ctx, app, "", "", 0, 0)
		require.NoError(t, err)
		return len(all) == 3 && len(js) == 3
	}, 5*time.Second, 10*time.Millisecond, "a commit record deleted by another writer stays in the history")
	require.Len(t, whole(), 3)
}

// Pages of two branches' long histories read alternately from the same
// kept records (each walk of a chain is remembered per head and shared
// by the requests) are the pages of the histories read afresh.
func TestHistoryKeptChainsOfTwoHeads(t *testing.T) {
	ctx := context.Background()
	e, cs := newCountedDot(t)
	for i := 0; i < 70; i++ { // more than a walk reads one by one
		e.commit(fmt.Sprint("m", i))
	}
	_, err := e.node.CreateBranch(ctx, app, "feature", "HEAD~5")
	require.NoError(t, err)
	for i := 0; i < 3; i++ {
		_, err := e.node.Commit(ctx, app, "feature", dotmesh.CommitOptions{AllowEmpty: true, Message: fmt.Sprint("f", i)})
		require.NoError(t, err)
	}
	fresh := map[string][]*dotmesh.Commit{}
	for _, b := range []string{"master", "feature"} {
		all, _, err := e.node.History(ctx, app, b, "", 0, 0)
		require.NoError(t, err)
		fresh[b] = all
	}
	require.Len(t, fresh["master"], 73)
	require.Len(t, fresh["feature"], 71)
	require.Eventually(t, func() bool {
		_, _, err := e.node.HistoryJSON(ctx, app, "master", "", 0, 0)
		require.NoError(t, err)
		before := cs.reads.Load()
		_, _, err = e.node.HistoryJSON(ctx, app, "feature", "", 0, 0)
		require.NoError(t, err)
		return cs.reads.Load() == before
	}, 5*time.Second, 10*time.Millisecond, "a history of unchanged records lists them again")
	for round := 0; round < 2; round++ {
		for _, b := range []string{"master", "feature", "master"} {
			for _, p := range []struct{ skip, limit int }{{0, 0}, {0, 70}, {3, 66}, {68, 0}, {70, 80}} {
				js, more, err := e.node.HistoryJSON(ctx, app, b, "", p.skip, p.limit)
				require.NoError(t, err)
				all := fresh[b]
				from := min(p.skip, len(all))
				to := len(all)
				if p.limit > 0 {
					to = min(from+p.limit, len(all))
				}
				require.Equal(t, to < len(all), more, "%s %+v", b, p)
				require.Len(t, js, to-from, "%s %+v", b, p)
				for i, c := range js {
					var d dotmesh.Commit
					require.NoError(t, json.Unmarshal(c.JSON, &d))
					require.Equal(t, *all[from+i], d, "%s %+v: commit %d", b, p, from+i)
				}
			}
		}
	}
}
