package backendtest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// RunRefs runs the scenarios of renamed branches and tags through real
// standalone nodes on a backend (open makes one backend per node): a
// renamed branch keeps its storage under the old name, so commits,
// resets, checkouts, deletes, restarts (reconcile) and transfers must all
// find it through the registry, and a new branch taking the old name must
// get storage of its own. Tags keep their commits across reset and gc,
// and travel with push and pull.
func RunRefs(t *testing.T, open func(t *testing.T, node string) dotmesh.StorageBackend) {
	t.Run("RenameBranch", func(t *testing.T) { refsRenameBranch(t, open) })
	t.Run("RenamedBranchAndTagsTravel", func(t *testing.T) { refsTravel(t, open) })
}

// refsNode is a standalone node whose store and backend outlive it, so
// it can be restarted on the same storage.
type refsNode struct {
	t     *testing.T
	store dotmesh.ClusterStore
	be    dotmesh.StorageBackend
	n     *dotmesh.Node
}

func newRefsNode(t *testing.T, open func(t *testing.T, node string) dotmesh.StorageBackend, id string) *refsNode {
	st, err := bboltstore.Open(filepath.Join(t.TempDir(), "registry.db"), bboltstore.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	be := open(t, id)
	t.Cleanup(func() { be.Close() })
	r := &refsNode{t: t, store: st, be: be}
	r.start()
	return r
}

func (r *refsNode) start() {
	n, err := dotmesh.NewNode(context.Background(), dotmesh.Options{Store: sharedStore{r.store}, Backends: []dotmesh.StorageBackend{reopened{r.be}}})
	require.NoError(r.t, err)
	r.n = n
	r.t.Cleanup(func() { n.Close() })
}

func (r *refsNode) restart() {
	require.NoError(r.t, r.n.Close())
	r.start()
}

// commit writes content to file f of branch's default subdot and commits.
func (r *refsNode) commit(branch, content string) *dotmesh.Commit {
	vol := "app"
	if branch != "" {
		vol += "@" + branch
	}
	writeFile(r.t, r.n, vol, "f", content)
	c, err := r.n.Commit(context.Background(), app, branch, dotmesh.CommitOptions{Message: content, Author: "test"})
	require.NoError(r.t, err)
	return c
}

func (r *refsNode) read(branch string) string {
	return readFile(r.t, r.n, "app@"+branch, "f")
}

func (r *refsNode) history(ref string) []dotmesh.CommitID {
	cs, _, err := r.n.History(context.Background(), app, "", ref, 0, 0)
	require.NoError(r.t, err, ref)
	var out []dotmesh.CommitID
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}

func refsRenameBranch(t *testing.T, open func(t *testing.T, node string) dotmesh.StorageBackend) {
	ctx := context.Background()
	r := newRefsNode(t, open, "n1")
	_, err := r.n.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	c1 := r.commit("", "one")
	_, err = r.n.CreateBranch(ctx, app, "feature", "")
	require.NoError(t, err)
	f1 := r.commit("feature", "f1")
	writeFile(t, r.n, "app@feature", "wip", "uncommitted")

	_, err = r.n.RenameBranch(ctx, app, "feature", "topic")
	require.NoError(t, err)
	require.Equal(t, "uncommitted", readFile(t, r.n, "app@topic", "wip"), "a rename keeps the working state")
	f2 := r.commit("topic", "f2")
	require.Equal(t, []dotmesh.CommitID{f2.ID, f1.ID, c1.ID}, r.history("topic"))
	_, err = r.n.Reset(ctx, app, "topic", "HEAD^", dotmesh.ResetOptions{Hard: true})
	require.NoError(t, err)
	require.Equal(t, "f1", r.read("topic"))

	// The current branch: the dot follows; the old name is free again
	// and a branch taking it gets storage of its own.
	_, err = r.n.RenameBranch(ctx, app, "master", "main")
	require.NoError(t, err)
	d, err := r.n.Dot(ctx, app)
	require.NoError(t, err)
	require.Equal(t, "main", d.Current)
	c2 := r.commit("main", "two")
	_, err = r.n.CreateBranch(ctx, app, "master", "main^")
	require.NoError(t, err)
	m1 := r.commit("master", "m1")
	require.Equal(t, "two", r.read("main"))
	require.Equal(t, "m1", r.read("master"))
	require.Equal(t, []dotmesh.CommitID{c2.ID, c1.ID}, r.history("main"))
	require.Equal(t, []dotmesh.CommitID{m1.ID, c1.ID}, r.history("master"))
	_, err = r.n.Checkout(ctx, app, "topic", dotmesh.CheckoutOptions{})
	require.NoError(t, err)

	// A restart (reconcile compares storage with the registry) keeps all.
	r.restart()
	require.Equal(t, "two", r.read("main"))
	require.Equal(t, "m1", r.read("master"))
	require.Equal(t, "f1", r.read("topic"))

	// Rename back and delete: storage goes with the branches.
	_, err = r.n.RenameBranch(ctx, app, "topic", "feature")
	require.NoError(t, err)
	_, err = r.n.Checkout(ctx, app, "main", dotmesh.CheckoutOptions{})
	require.NoError(t, err)
	require.NoError(t, r.n.DeleteBranch(ctx, app, "feature"))
	require.NoError(t, r.n.DeleteBranch(ctx, app, "master"))
	refs, err := r.be.Branches(ctx)
	require.NoError(t, err)
	var mine []string
	for _, ref := range refs {
		if ref.Dot == d.ID {
			mine = append(mine, ref.Branch)
		}
	}
	require.Equal(t, []string{"master"}, mine, "main keeps the storage it had as master")
	r.restart()
	require.Equal(t, "two", r.read("main"))
}

func refsTravel(t *testing.T, open func(t *testing.T, node string) dotmesh.StorageBackend) {
	ctx := context.Background()
	a, b := newRefsNode(t, open, "a"), newRefsNode(t, open, "b")
	_, err := a.n.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	c1 := a.commit("", "one")
	_, err = a.n.Tags().Create(ctx, app, "v1", dotmesh.TagOptions{})
	require.NoError(t, err)
	a.commit("", "two")
	c3 := a.commit("", "three")
	_, err = a.n.RenameBranch(ctx, app, "master", "main")
	require.NoError(t, err)

	res, err := a.n.Push(ctx, app, "", dotmesh.LocalTransport(b.n), dotmesh.TransferOptions{})
	require.NoError(t, err)
	require.Equal(t, []string{"v1"}, res.Tags)
	require.Equal(t, "three", b.read("main"))
	got, err := b.n.ResolveRef(ctx, app, "main", "v1")
	require.NoError(t, err)
	require.Equal(t, c1.ID, got.ID)

	// Renamed on the receiver, the branch takes pulls and pushes.
	_, err = b.n.RenameBranch(ctx, app, "main", "trunk")
	require.NoError(t, err)
	c4 := b.commit("trunk", "four")
	_, err = b.n.Tags().Create(ctx, app, "v4", dotmesh.TagOptions{})
	require.NoError(t, err)
	// A transfer names one branch on both sides: back to main, to pull.
	_, err = b.n.RenameBranch(ctx, app, "trunk", "main")
	require.NoError(t, err)
	res, err = a.n.Pull(ctx, app, "main", dotmesh.LocalTransport(b.n), dotmesh.TransferOptions{})
	require.NoError(t, err)
	require.Equal(t, []string{"v4"}, res.Tags)
	require.Equal(t, "four", a.read("main"))
	require.Equal(t, []dotmesh.CommitID{c4.ID, c3.ID}, a.history("main")[:2])

	// gc --keep 1 keeps the tagged commits; reset past one keeps it too.
	_, err = a.n.GC(ctx, dotmesh.GCOptions{Keep: 1})
	require.NoError(t, err)
	got, err = a.n.ResolveRef(ctx, app, "", "v1")
	require.NoError(t, err)
	require.Equal(t, c1.ID, got.ID)
	a.commit("main", "five")
	_, err = a.n.Reset(ctx, app, "main", "HEAD^", dotmesh.ResetOptions{Hard: true})
	require.NoError(t, err)
	require.Equal(t, "four", a.read("main"))
	a.restart()
	b2, err := a.n.CreateBranch(ctx, app, "old", "v1")
	require.NoError(t, err)
	require.Equal(t, c1.ID, b2.Head)
	require.Equal(t, "one", a.read("old"), "a tagged commit gc kept can be checked out")
}
