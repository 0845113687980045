package dotmesh_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/backend/dump"
	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// commitChange writes a change first, so the commit is never empty.
func (e *env) commitChange(branch, msg string) *dotmesh.Commit {
	v := "app.db"
	if branch != "" {
		v = "app@" + branch + ".db"
	}
	e.write(v, "f", msg)
	c, err := e.node.Commit(context.Background(), app, branch, dotmesh.CommitOptions{Message: msg, Author: "test"})
	require.NoError(e.t, err)
	return c
}

func historyIDs(t *testing.T, e *env, branch, ref string) []dotmesh.CommitID {
	cs, more, err := e.node.History(context.Background(), app, branch, ref, 0, 0)
	require.NoError(t, err, ref)
	require.False(t, more)
	var out []dotmesh.CommitID
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}

func TestRefsNamesTagsHistory(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	_, err := e.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	c1 := e.commitChange("", "one")
	c2 := e.commitChange("", "two")
	_, err = e.node.CreateBranch(ctx, app, "feature", "")
	require.NoError(t, err)
	f1 := e.commitChange("feature", "f-one")
	f2 := e.commitChange("feature", "f-two")

	tag, err := e.node.Tags().Create(ctx, app, "v1", dotmesh.TagOptions{Ref: "master^", Author: "alice", Message: "first"})
	require.NoError(t, err)
	require.Equal(t, c1.ID, tag.Commit)
	require.Equal(t, "alice", tag.Author)

	// Branch names, tags and ids resolve dot-wide, with ^ and ~N after them.
	for ref, want := range map[string]dotmesh.CommitID{
		"master": c2.ID, "master^": c1.ID, "feature": f2.ID, "feature~2": c2.ID, "feature^^^": c1.ID,
		"v1": c1.ID, string(f1.ID[:8]): f1.ID, string(f2.ID) + "^": f1.ID, "HEAD": c2.ID, "@^": c1.ID,
	} {
		got, err := e.node.ResolveRef(ctx, app, "", ref)
		require.NoError(t, err, ref)
		require.Equal(t, want, got.ID, ref)
	}
	got, err := e.node.ResolveRef(ctx, app, "feature", "HEAD^")
	require.NoError(t, err)
	require.Equal(t, f1.ID, got.ID)
	_, err = e.node.ResolveRef(ctx, app, "", "nosuch")
	var nf *dotmesh.NotFoundError
	require.ErrorAs(t, err, &nf)
	require.Equal(t, dotmesh.KindRef, nf.Kind)
	_, err = e.node.ResolveRef(ctx, app, "", "v1^")
	require.ErrorIs(t, err, dotmesh.ErrNotFound, "v1 is the first commit")

	// A name that is also a hex prefix is the name (as in git).
	_, err = e.node.Tags().Create(ctx, app, string(f1.ID[:6]), dotmesh.TagOptions{Ref: "master"})
	require.NoError(t, err)
	got, err = e.node.ResolveRef(ctx, app, "", string(f1.ID[:6]))
	require.NoError(t, err)
	require.Equal(t, c2.ID, got.ID)
	require.NoError(t, e.node.Tags().Delete(ctx, app, string(f1.ID[:6])))

	// One namespace: no tag with a branch's name, no branch with a tag's.
	_, err = e.node.Tags().Create(ctx, app, "feature", dotmesh.TagOptions{})
	require.ErrorIs(t, err, dotmesh.ErrAlreadyExists)
	require.ErrorContains(t, err, "branch feature")
	_, err = e.node.Tags().Create(ctx, app, "v1", dotmesh.TagOptions{})
	require.ErrorIs(t, err, dotmesh.ErrAlreadyExists, "tags never move")
	_, err = e.node.CreateBranch(ctx, app, "v1", "")
	require.ErrorIs(t, err, dotmesh.ErrAlreadyExists)
	require.ErrorContains(t, err, "tag v1")
	_, err = e.node.Checkout(ctx, app, "v1", dotmesh.CheckoutOptions{Create: true})
	require.ErrorIs(t, err, dotmesh.ErrAlreadyExists)
	_, err = e.node.RenameBranch(ctx, app, "feature", "v1")
	require.ErrorIs(t, err, dotmesh.ErrAlreadyExists)
	_, err = e.node.Tags().Create(ctx, app, "bad/name", dotmesh.TagOptions{})
	require.ErrorIs(t, err, dotmesh.ErrInvalidName)
	_, err = e.node.Tags().Create(ctx, app, "v9", dotmesh.TagOptions{Ref: "nosuch"})
	require.ErrorIs(t, err, dotmesh.ErrNotFound)

	_, err = e.node.Tags().Create(ctx, app, "f", dotmesh.TagOptions{Branch: "feature", Ref: "HEAD"})
	require.NoError(t, err)
	tags, err := e.node.Tags().List(ctx, app)
	require.NoError(t, err)
	require.Len(t, tags, 2)
	require.Equal(t, "f", tags[0].Name)
	require.Equal(t, f2.ID, tags[0].Commit)
	require.Equal(t, "v1", tags[1].Name)

	// History of a branch, a tag, a commit; HEAD is the given branch's.
	require.Equal(t, []dotmesh.CommitID{f2.ID, f1.ID, c2.ID, c1.ID}, historyIDs(t, e, "", "feature"))
	require.Equal(t, []dotmesh.CommitID{c1.ID}, historyIDs(t, e, "", "v1"))
	require.Equal(t, []dotmesh.CommitID{f1.ID, c2.ID, c1.ID}, historyIDs(t, e, "", "f^"))
	require.Equal(t, []dotmesh.CommitID{c2.ID, c1.ID}, historyIDs(t, e, "", "HEAD"))
	require.Equal(t, []dotmesh.CommitID{f2.ID, f1.ID, c2.ID, c1.ID}, historyIDs(t, e, "feature", ""))
	page, more, err := e.node.History(ctx, app, "", "feature", 1, 2)
	require.NoError(t, err)
	require.True(t, more)
	require.Equal(t, []dotmesh.CommitID{f1.ID, c2.ID}, []dotmesh.CommitID{page[0].ID, page[1].ID})
	dec, err := e.node.Decorations(ctx, app)
	require.NoError(t, err)
	require.Equal(t, []string{"feature", "tag: f"}, dec[f2.ID])
	require.Equal(t, []string{"master"}, dec[c2.ID])
	require.Equal(t, []string{"tag: v1"}, dec[c1.ID])

	// Reset takes any ref, but only one in the branch's history.
	_, err = e.node.Reset(ctx, app, "", "feature", dotmesh.ResetOptions{Hard: true})
	require.ErrorIs(t, err, dotmesh.ErrNotFound)
	require.ErrorContains(t, err, "not in the history of branch master")

	// A branch can start at any commit of the dot.
	b, err := e.node.CreateBranch(ctx, app, "from-tag", "v1")
	require.NoError(t, err)
	require.Equal(t, c1.ID, b.Head)

	require.ErrorIs(t, e.node.Tags().Delete(ctx, app, "nosuch"), dotmesh.ErrNotFound)
	require.NoError(t, e.node.Tags().Delete(ctx, app, "f"))
	tags, err = e.node.Tags().List(ctx, app)
	require.NoError(t, err)
	require.Len(t, tags, 1)
}

func TestTagsKeepCommits(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	_, err := e.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	c1 := e.commitChange("", "one")
	c2 := e.commitChange("", "two")
	c3 := e.commitChange("", "three")
	c4 := e.commitChange("", "four")
	_, err = e.node.Tags().Create(ctx, app, "old", dotmesh.TagOptions{Ref: string(c1.ID)})
	require.NoError(t, err)

	// gc --keep 1 keeps the head and the tagged commit, nothing between.
	res, err := e.node.GC(ctx, dotmesh.GCOptions{Keep: 1})
	require.NoError(t, err)
	var removed []dotmesh.CommitID
	for _, r := range res.Removed {
		removed = append(removed, r.ID)
	}
	require.ElementsMatch(t, []dotmesh.CommitID{c2.ID, c3.ID}, removed)
	got, err := e.node.ResolveRef(ctx, app, "", "old")
	require.NoError(t, err)
	require.Equal(t, c1.ID, got.ID)

	// A reset past a tagged commit keeps it, with what leads to it.
	c5 := e.commitChange("", "five")
	_, err = e.node.Tags().Create(ctx, app, "five", dotmesh.TagOptions{})
	require.NoError(t, err)
	_, err = e.node.Reset(ctx, app, "", "HEAD^", dotmesh.ResetOptions{Hard: true})
	require.NoError(t, err)
	require.Equal(t, []dotmesh.CommitID{c5.ID, c4.ID}, historyIDs(t, e, "", "five"))
	require.Equal(t, []dotmesh.CommitID{c4.ID}, historyIDs(t, e, "", "master"))

	// A branch whose storage holds a tagged commit is not deleted.
	_, err = e.node.CreateBranch(ctx, app, "side", "")
	require.NoError(t, err)
	s1 := e.commitChange("side", "s1")
	_, err = e.node.Tags().Create(ctx, app, "s", dotmesh.TagOptions{Ref: string(s1.ID)})
	require.NoError(t, err)
	err = e.node.DeleteBranch(ctx, app, "side")
	require.ErrorIs(t, err, dotmesh.ErrInUse)
	require.ErrorContains(t, err, "tags s name commits of branch side")
	require.NoError(t, e.node.Tags().Delete(ctx, app, "s"))
	require.NoError(t, e.node.DeleteBranch(ctx, app, "side"))

	// Deleting the dot removes its tags: a new dot of the name has none.
	require.NoError(t, e.node.DeleteDot(ctx, app))
	_, err = e.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	tags, err := e.node.Tags().List(ctx, app)
	require.NoError(t, err)
	require.Empty(t, tags)
	kvs, err := e.st.List(ctx, "tags/")
	require.NoError(t, err)
	require.Empty(t, kvs)
}

func TestRenameBranch(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	_, err := e.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	c1 := e.commitChange("", "one")
	_, err = e.node.CreateBranch(ctx, app, "feature", "")
	require.NoError(t, err)
	f1 := e.commitChange("feature", "f-one")
	e.write("app@feature.db", "wip", "uncommitted")

	// Renaming the current branch: the dot follows; data stays in place.
	b, err := e.node.RenameBranch(ctx, app, "master", "main")
	require.NoError(t, err)
	require.Equal(t, "main", b.Name)
	require.Equal(t, "master", b.StorageName())
	d, err := e.node.Dot(ctx, app)
	require.NoError(t, err)
	require.Equal(t, "main", d.Current)
	_, err = e.node.ResolveRef(ctx, app, "master", "HEAD")
	require.ErrorIs(t, err, dotmesh.ErrNotFound)
	require.Equal(t, "one", e.read("app@main.db", "f"))
	c2 := e.commitChange("main", "two")
	require.Equal(t, []dotmesh.CommitID{c2.ID, c1.ID}, historyIDs(t, e, "", "main"))

	// A new branch may take the old name: it gets storage of its own.
	nb, err := e.node.CreateBranch(ctx, app, "master", "HEAD^")
	require.NoError(t, err)
	require.NotEqual(t, "master", nb.StorageName())
	m1 := e.commitChange("master", "m-one")
	require.Equal(t, "two", e.read("app@main.db", "f"))
	require.Equal(t, "m-one", e.read("app@master.db", "f"))
	require.Equal(t, []dotmesh.CommitID{m1.ID, c1.ID}, historyIDs(t, e, "", "master"))

	// Renaming a non-current branch keeps its uncommitted work.
	_, err = e.node.RenameBranch(ctx, app, "feature", "topic")
	require.NoError(t, err)
	require.Equal(t, "uncommitted", e.read("app@topic.db", "wip"))
	_, err = e.node.RenameBranch(ctx, app, "topic", "main")
	require.ErrorIs(t, err, dotmesh.ErrAlreadyExists)
	_, err = e.node.RenameBranch(ctx, app, "nosuch", "x")
	require.ErrorIs(t, err, dotmesh.ErrNotFound)
	_, err = e.node.RenameBranch(ctx, app, "topic", "-x")
	require.ErrorIs(t, err, dotmesh.ErrInvalidName)

	// Reset and checkout work on the renamed branch.
	_, err = e.node.Reset(ctx, app, "topic", "HEAD^", dotmesh.ResetOptions{Hard: true})
	require.NoError(t, err)
	require.Equal(t, "one", e.read("app@topic.db", "f"))
	_, err = e.node.Checkout(ctx, app, "topic", dotmesh.CheckoutOptions{})
	require.NoError(t, err)
	require.Equal(t, "one", e.read("app.db", "f"))
	_ = f1

	// Rename back, and everything survives a restart (reconcile keeps
	// renamed branches' storage).
	_, err = e.node.RenameBranch(ctx, app, "topic", "feature")
	require.NoError(t, err)
	e.reopen()
	require.Equal(t, "two", e.read("app@main.db", "f"))
	require.Equal(t, "one", e.read("app@feature.db", "f"))
	require.Equal(t, "m-one", e.read("app@master.db", "f"))
	bs, err := e.node.Branches(ctx, app)
	require.NoError(t, err)
	var names []string
	for _, b := range bs {
		names = append(names, b.Name)
	}
	require.Equal(t, []string{"feature", "main", "master"}, names)

	// Deleting the renamed branch and the new one removes their storage.
	_, err = e.node.Checkout(ctx, app, "main", dotmesh.CheckoutOptions{})
	require.NoError(t, err)
	require.NoError(t, e.node.DeleteBranch(ctx, app, "feature"))
	require.NoError(t, e.node.DeleteBranch(ctx, app, "master"))
	refs, err := e.be.Branches(ctx)
	require.NoError(t, err)
	require.Len(t, refs, 1)
	require.Equal(t, "master", refs[0].Branch, "main keeps the storage it had as master")
}

func tagNames(t *testing.T, e *env) map[string]dotmesh.CommitID {
	tags, err := e.node.Tags().List(context.Background(), app)
	require.NoError(t, err)
	out := map[string]dotmesh.CommitID{}
	for _, tg := range tags {
		out[tg.Name] = tg.Commit
	}
	return out
}

func TestTagsTravel(t *testing.T) {
	ctx := context.Background()
	a, b := newEnv(t), newEnv(t)
	_, err := a.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	c1 := a.commitChange("", "one")
	c2 := a.commitChange("", "two")
	_, err = a.node.Tags().Create(ctx, app, "v1", dotmesh.TagOptions{Ref: "HEAD^", Author: "alice", Message: "first"})
	require.NoError(t, err)
	// Tags on commits of other branches stay home.
	_, err = a.node.CreateBranch(ctx, app, "side", "")
	require.NoError(t, err)
	s1 := a.commitChange("side", "s")
	_, err = a.node.Tags().Create(ctx, app, "side-tag", dotmesh.TagOptions{Ref: string(s1.ID)})
	require.NoError(t, err)

	// A push that creates the dot brings the tags of its history.
	res, err := a.node.Push(ctx, app, "", dotmesh.LocalTransport(b.node), dotmesh.TransferOptions{})
	require.NoError(t, err)
	require.Equal(t, []string{"v1"}, res.Tags)
	require.Equal(t, map[string]dotmesh.CommitID{"v1": c1.ID}, tagNames(t, b))
	bt, err := b.node.Tags().List(ctx, app)
	require.NoError(t, err)
	require.Equal(t, "alice", bt[0].Author)
	require.Equal(t, "first", bt[0].Message)

	// A tag made after the commit was pushed travels with the next push,
	// which has no commit to send.
	_, err = a.node.Tags().Create(ctx, app, "v2", dotmesh.TagOptions{})
	require.NoError(t, err)
	res, err = a.node.Push(ctx, app, "", dotmesh.LocalTransport(b.node), dotmesh.TransferOptions{})
	require.NoError(t, err)
	require.True(t, res.UpToDate)
	require.Equal(t, []string{"v2"}, res.Tags)
	require.Equal(t, map[string]dotmesh.CommitID{"v1": c1.ID, "v2": c2.ID}, tagNames(t, b))

	// A tag of the same name at another commit on the receiver is kept
	// and reported; the same tag at the same commit is fine.
	require.NoError(t, b.node.Tags().Delete(ctx, app, "v2"))
	_, err = b.node.Tags().Create(ctx, app, "v2", dotmesh.TagOptions{Ref: string(c1.ID)})
	require.NoError(t, err)
	c3 := a.commitChange("", "three")
	res, err = a.node.Push(ctx, app, "", dotmesh.LocalTransport(b.node), dotmesh.TransferOptions{})
	require.NoError(t, err)
	require.Equal(t, 1, res.Commits)
	require.Empty(t, res.Tags)
	require.Equal(t, []string{"v2"}, res.SkippedTags)
	require.Equal(t, c1.ID, tagNames(t, b)["v2"])

	// Pull and clone bring tags too.
	_, err = b.node.Tags().Create(ctx, app, "from-b", dotmesh.TagOptions{Ref: string(c3.ID)})
	require.NoError(t, err)
	res, err = a.node.Pull(ctx, app, "", dotmesh.LocalTransport(b.node), dotmesh.TransferOptions{})
	require.NoError(t, err)
	require.Equal(t, []string{"from-b"}, res.Tags)
	require.Equal(t, []string{"v2"}, res.SkippedTags)
	require.Equal(t, c3.ID, tagNames(t, a)["from-b"])
	c := newEnv(t)
	res, err = c.node.Clone(ctx, app, "", dotmesh.LocalTransport(b.node), dotmesh.TransferOptions{})
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"from-b", "v1", "v2"}, res.Tags)
	require.Equal(t, map[string]dotmesh.CommitID{"from-b": c3.ID, "v1": c1.ID, "v2": c1.ID}, tagNames(t, c))
	got, err := c.node.ResolveRef(ctx, app, "", "from-b^")
	require.NoError(t, err)
	require.Equal(t, c2.ID, got.ID)

	// A receiver branch of a tag's name keeps the name: the tag is skipped.
	_, err = a.node.Tags().Create(ctx, app, "feature", dotmesh.TagOptions{})
	require.NoError(t, err)
	_, err = b.node.CreateBranch(ctx, app, "feature", "")
	require.NoError(t, err)
	res, err = a.node.Push(ctx, app, "", dotmesh.LocalTransport(b.node), dotmesh.TransferOptions{})
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"feature", "v2"}, res.SkippedTags)
}

func TestRenamedBranchTransfers(t *testing.T) {
	ctx := context.Background()
	a, b := newEnv(t), newEnv(t)
	_, err := a.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	a.commitChange("", "one")
	_, err = a.node.CreateBranch(ctx, app, "feature", "")
	require.NoError(t, err)
	a.commitChange("feature", "f1")
	_, err = a.node.Push(ctx, app, "", dotmesh.LocalTransport(b.node), dotmesh.TransferOptions{})
	require.NoError(t, err)
	_, err = a.node.Push(ctx, app, "feature", dotmesh.LocalTransport(b.node), dotmesh.TransferOptions{})
	require.NoError(t, err)

	// Renamed on both sides, the branch keeps transferring both ways.
	_, err = a.node.RenameBranch(ctx, app, "feature", "topic")
	require.NoError(t, err)
	_, err = b.node.RenameBranch(ctx, app, "feature", "topic")
	require.NoError(t, err)
	f2 := a.commitChange("topic", "f2")
	res, err := a.node.Push(ctx, app, "topic", dotmesh.LocalTransport(b.node), dotmesh.TransferOptions{})
	require.NoError(t, err)
	require.Equal(t, 1, res.Commits)
	require.Equal(t, "f2", b.read("app@topic.db", "f"))
	b.write("app@topic.db", "f", "f3")
	f3, err := b.node.Commit(ctx, app, "topic", dotmesh.CommitOptions{Message: "f3"})
	require.NoError(t, err)
	_, err = a.node.Pull(ctx, app, "topic", dotmesh.LocalTransport(b.node), dotmesh.TransferOptions{})
	require.NoError(t, err)
	require.Equal(t, "f3", a.read("app@topic.db", "f"))
	require.Equal(t, []dotmesh.CommitID{f3.ID, f2.ID}, historyIDs(t, a, "", "topic")[:2])

	// A push of a renamed branch to a receiver that has the old name
	// makes a new branch there, under the new name.
	_, err = a.node.RenameBranch(ctx, app, "master", "main")
	require.NoError(t, err)
	res, err = a.node.Push(ctx, app, "main", dotmesh.LocalTransport(b.node), dotmesh.TransferOptions{})
	require.NoError(t, err)
	require.True(t, res.Created)
	require.Equal(t, "one", b.read("app@main.db", "f"))
	require.Equal(t, "one", b.read("app@master.db", "f"))

	// A rename is refused while a transfer into the branch (old or new
	// name) is unfinished: its record and Finish name the branch.
	x1 := a.commitChange("topic", "x1")
	var stream bytes.Buffer
	require.NoError(t, a.node.TransferPeer().Send(ctx, app, x1.ID, nil, dotmesh.FormatNative+"dump", &stream))
	require.NoError(t, b.node.TransferPeer().Receive(ctx, app, "topic", *x1, nil, dotmesh.FormatNative+"dump", &stream))
	_, err = b.node.RenameBranch(ctx, app, "topic", "other")
	require.ErrorIs(t, err, dotmesh.ErrInUse)
	require.ErrorContains(t, err, "incoming transfer")
	_, err = b.node.RenameBranch(ctx, app, "main", "topic")
	require.ErrorIs(t, err, dotmesh.ErrAlreadyExists)
	_, err = a.node.Push(ctx, app, "topic", dotmesh.LocalTransport(b.node), dotmesh.TransferOptions{})
	require.NoError(t, err)
	_, err = b.node.RenameBranch(ctx, app, "topic", "other")
	require.NoError(t, err)
	require.Equal(t, "x1", b.read("app@other.db", "f"))
}

// TestRebuildKeepsTagsAndRenames: the backend's record copies hold tags
// and a renamed branch's storage name, so a rebuilt registry has both.
func TestRebuildKeepsTagsAndRenames(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	_, err := e.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	c1 := e.commitChange("", "one")
	e.commitChange("", "two")
	_, err = e.node.Tags().Create(ctx, app, "v1", dotmesh.TagOptions{Ref: "HEAD^", Message: "first"})
	require.NoError(t, err)
	_, err = e.node.Tags().Create(ctx, app, "gone", dotmesh.TagOptions{})
	require.NoError(t, err)
	require.NoError(t, e.node.Tags().Delete(ctx, app, "gone"))
	_, err = e.node.RenameBranch(ctx, app, "master", "main")
	require.NoError(t, err)
	want := e.view()
	wantTags, err := e.node.Tags().List(ctx, app)
	require.NoError(t, err)

	require.NoError(t, e.node.Close())
	reg := filepath.Join(e.dir, "registry.db")
	require.NoError(t, os.Remove(reg))
	st, err := bboltstore.Open(reg, bboltstore.Options{})
	require.NoError(t, err)
	be, err := dump.Open(filepath.Join(e.dir, "dump"), dump.Options{})
	require.NoError(t, err)
	stats, err := dotmesh.RebuildRegistry(ctx, st, []dotmesh.StorageBackend{be})
	require.NoError(t, err)
	require.Equal(t, dotmesh.RebuildStats{Dots: 1, Branches: 1, Commits: 2}, stats)
	require.NoError(t, be.Close())
	require.NoError(t, st.Close())

	e.open(nil)
	require.Equal(t, want, e.view())
	tags, err := e.node.Tags().List(ctx, app)
	require.NoError(t, err)
	require.Equal(t, wantTags, tags)
	got, err := e.node.ResolveRef(ctx, app, "", "v1")
	require.NoError(t, err)
	require.Equal(t, c1.ID, got.ID)
	require.Equal(t, "two", e.read("app@main.db", "f"))
}
