package dotmesh_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/backend/dump"
	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// registryView is what a rebuild must bring back.
type registryView struct {
	dots     []dotmesh.DotStatus
	branches map[string][]*dotmesh.Branch
	logs     map[string][]*dotmesh.Commit
}

func (e *env) view() registryView {
	ctx := context.Background()
	v := registryView{branches: map[string][]*dotmesh.Branch{}, logs: map[string][]*dotmesh.Commit{}}
	var err error
	v.dots, err = e.node.ListDots(ctx)
	require.NoError(e.t, err)
	for _, d := range v.dots {
		name := d.Dot.DotName()
		bs, err := e.node.Branches(ctx, name)
		require.NoError(e.t, err)
		v.branches[name.String()] = bs
		for _, b := range bs {
			l, err := e.node.Log(ctx, name, b.Name, 0)
			require.NoError(e.t, err)
			v.logs[name.String()+"@"+b.Name] = l
		}
	}
	return v
}

func TestRegistryLostRefusedThenRebuilt(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	_, err := e.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	e.write("app", "a", "1")
	_, err = e.node.Commit(ctx, app, "", dotmesh.CommitOptions{AllowEmpty: true, Message: "one\nline two", Author: "ann", Metadata: map[string]string{"ci": "1"}})
	require.NoError(t, err)
	e.write("app", "a", "2")
	e.commit("two")
	e.write("app", "a", "3")
	e.commit("three")
	_, err = e.node.Reset(ctx, app, "", "HEAD^", dotmesh.ResetOptions{Hard: true})
	require.NoError(t, err)
	_, err = e.node.Checkout(ctx, app, "feature", dotmesh.CheckoutOptions{Create: true})
	require.NoError(t, err)
	e.write("app", "f", "feature")
	e.commit("feature work")
	_, err = e.node.CreateBranch(ctx, app, "gone", "")
	require.NoError(t, err)
	require.NoError(t, e.node.DeleteBranch(ctx, app, "gone"))
	want := e.view()
	require.Len(t, want.logs, 2)

	// Lose the registry: the node refuses to start and deletes nothing.
	require.NoError(t, e.node.Close())
	reg := filepath.Join(e.dir, "registry.db")
	require.NoError(t, os.Remove(reg))
	st, err := bboltstore.Open(reg, bboltstore.Options{})
	require.NoError(t, err)
	be, err := dump.Open(filepath.Join(e.dir, "dump"), dump.Options{})
	require.NoError(t, err)
	_, err = dotmesh.NewNode(ctx, dotmesh.Options{Store: st, Backends: []dotmesh.StorageBackend{be}})
	require.ErrorIs(t, err, dotmesh.ErrRegistryLost)
	require.ErrorIs(t, err, dotmesh.ErrCorrupt)
	refs, err := be.Branches(ctx)
	require.NoError(t, err)
	require.Len(t, refs, 2, "a refused start deletes no storage")

	stats, err := dotmesh.RebuildRegistry(ctx, st, []dotmesh.StorageBackend{be})
	require.NoError(t, err)
	require.Equal(t, dotmesh.RebuildStats{Dots: 1, Branches: 2, Commits: 3}, stats)
	_, err = dotmesh.RebuildRegistry(ctx, st, []dotmesh.StorageBackend{be})
	require.ErrorIs(t, err, dotmesh.ErrAlreadyExists, "a second rebuild into a full registry is refused")
	require.NoError(t, be.Close())
	require.NoError(t, st.Close())

	e.open(nil)
	got := e.view()
	require.Equal(t, want, got)
	require.Equal(t, "2", e.read("app@master", "a"))
	require.Equal(t, "feature", e.read("app@feature", "f"))
}

// TestRebuildKeepsUnknownFields: records go back byte for byte, so fields
// a later version adds (a shallow-history marker, say) survive a rebuild
// by this one.
func TestRebuildKeepsUnknownFields(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	_, err := e.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	c := e.commit("one")
	recs, err := e.be.Records(ctx)
	require.NoError(t, err)
	rec := recs[c.Dot]["commit."+string(c.ID)]
	require.Contains(t, string(rec), `"message":"one"`, "the commit's record is kept at commit time")
	withExtra := strings.Replace(string(rec), "{", `{"history_starts_here":true,`, 1)
	require.NoError(t, e.be.KeepRecords(ctx, c.Dot, map[string][]byte{"commit." + string(c.ID): []byte(withExtra)}))

	st, err := bboltstore.Open(filepath.Join(t.TempDir(), "registry.db"), bboltstore.Options{})
	require.NoError(t, err)
	defer st.Close()
	_, err = dotmesh.RebuildRegistry(ctx, st, []dotmesh.StorageBackend{e.be})
	require.NoError(t, err)
	kv, err := st.Get(ctx, "commits/"+string(c.Dot)+"/"+string(c.ID))
	require.NoError(t, err)
	require.Equal(t, withExtra, string(kv.Value))
}
