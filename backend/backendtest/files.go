package backendtest

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/stretchr/testify/require"

	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// treeTests check what Node.Files stands on: a backend's TreeReader
// answers exactly what the commit holds, a CommitViewer's directory holds
// exactly the commit, and a backend with neither gives the Node a
// scratch branch equal to the commit, which it then removes.
// InfoAddedBytes, when a backend reports it, is a byte count.
var treeTests = []backendTest{
	{"CommitTreeIsTheCommit", testCommitTree},
	{"ReadCommitFile", testReadCommitFile},
	{"OpenCommitFile", testOpenCommitFile},
	{"ContentIdentifiesBytes", testContentIDs},
	{"AddedBytes", testAddedBytes},
	{"NodeFiles", testNodeFiles},
}

// commitTreeOf reads commit c as the Node does: from the TreeReader,
// from the CommitViewer's directory, or from a scratch branch made from c
// (removed afterwards).
func (f *fixture) commitTreeOf(c dotmesh.CommitRef) Tree {
	f.t.Helper()
	tr, ok := f.be.(dotmesh.TreeReader)
	if cv, isViewer := f.be.(dotmesh.CommitViewer); !ok && isViewer {
		dir, err := cv.CommitDir(f.ctx, c)
		f.fatalIf(err, "CommitDir(%s)", c)
		_, err = cv.CommitDir(f.ctx, newCommitRef(c.BranchRef))
		wantErr(f.t, "CommitDir of a missing commit", err, dotmesh.ErrNotFound)
		return ReadTree(f.t, dir)
	}
	if !ok {
		tmp := dotmesh.BranchRef{Dot: c.Dot, Branch: "_files-test"}
		f.create(tmp, &c)
		got := ReadTree(f.t, f.root(tmp))
		f.fatalIf(f.be.DeleteBranch(f.ctx, tmp), "DeleteBranch(%s)", tmp)
		if slices.Contains(f.branches(), tmp) {
			f.t.Errorf("scratch branch %s is still listed after DeleteBranch", tmp)
		}
		return got
	}
	entries, err := tr.CommitTree(f.ctx, c)
	f.fatalIf(err, "CommitTree(%s)", c)
	got := Tree{}
	for _, e := range entries {
		te := Entry{Mode: e.Mode & (fs.ModeType | fs.ModePerm), Target: e.Target}
		switch {
		case e.Mode.IsRegular():
			data, more, err := tr.ReadCommitFile(f.ctx, c, e.Path, e.Size)
			f.fatalIf(err, "ReadCommitFile(%s, %s)", c, e.Path)
			if more || int64(len(data)) != e.Size {
				f.t.Errorf("%s: ReadCommitFile gave %d bytes (more: %v), CommitTree says %d", e.Path, len(data), more, e.Size)
			}
			te.Data = data
		case e.Mode&fs.ModeSymlink != 0:
			te.Mode = fs.ModeSymlink
			if e.Size != 0 {
				f.t.Errorf("%s: a symlink with size %d", e.Path, e.Size)
			}
		}
		if _, dup := got[e.Path]; dup {
			f.t.Errorf("CommitTree lists %s twice", e.Path)
		}
		got[e.Path] = te
	}
	return got
}

// testCommitTree: the tree read is the commit's, not the working state
// changed since.
func testCommitTree(f *fixture) {
	b := f.newBranch()
	want := richTree(f.t.TempDir())
	f.write(b, want)
	c := f.commit(b)
	f.write(b, Tree{"web/index.html": File(0o644, "<h1>v2</h1>"), "later": File(0o644, "later")})
	if diffs := DiffTrees(f.commitTreeOf(c), want); len(diffs) > 0 {
		f.t.Errorf("the tree of commit %s differs from what was committed:\n  %v", c, diffs)
	}
}

// testReadCommitFile: limits, and refusals by kind and by name.
func testReadCommitFile(f *fixture) {
	tr, ok := f.be.(dotmesh.TreeReader)
	if !ok {
		f.t.Logf("backend %s has no TreeReader: the Node reads the commit's directory or a scratch branch (CommitTreeIsTheCommit)", f.be.Name())
		return
	}
	b := f.newBranch()
	f.write(b, richTree(f.t.TempDir()))
	c := f.commit(b)
	data, more, err := tr.ReadCommitFile(f.ctx, c, "db/data.bin", 8)
	f.fatalIf(err, "ReadCommitFile")
	if string(data) != "database" || !more {
		f.t.Errorf("ReadCommitFile(max 8) = %q, more %v; want \"database\", true", data, more)
	}
	data, more, err = tr.ReadCommitFile(f.ctx, c, "db/zero", 8)
	f.fatalIf(err, "ReadCommitFile of an empty file")
	if len(data) != 0 || more {
		f.t.Errorf("ReadCommitFile(empty file) = %q, more %v", data, more)
	}
	big := richTree("")["web/random.bin"].Data
	data, more, err = tr.ReadCommitFile(f.ctx, c, "web/random.bin", int64(len(big))+1)
	f.fatalIf(err, "ReadCommitFile of a multi-chunk file")
	if string(data) != string(big) || more {
		f.t.Errorf("ReadCommitFile(web/random.bin) gave %d bytes, more %v; want all %d", len(data), more, len(big))
	}
	other := newCommitRef(b)
	for _, tc := range []struct {
		c    dotmesh.CommitRef
		path string
		max  int64
		want error
	}{
		{c, "db", 10, dotmesh.ErrInvalidArgument},
		{c, "db/link-rel", 10, dotmesh.ErrInvalidArgument},
		{c, "db/nope", 10, dotmesh.ErrNotFound},
		{c, "../db/data.bin", 10, dotmesh.ErrInvalidArgument},
		{c, "/db/data.bin", 10, dotmesh.ErrInvalidArgument},
		{c, "db/data.bin", -1, dotmesh.ErrInvalidArgument},
		{other, "db/data.bin", 10, dotmesh.ErrNotFound},
	} {
		_, _, err := tr.ReadCommitFile(f.ctx, tc.c, tc.path, tc.max)
		wantErr(f.t, "ReadCommitFile("+tc.path+", "+strconv.FormatInt(tc.max, 10)+")", err, tc.want)
	}
	_, err = tr.CommitTree(f.ctx, other)
	wantErr(f.t, "CommitTree of a missing commit", err, dotmesh.ErrNotFound)
}

// testOpenCommitFile: a TreeFileOpener streams the bytes ReadCommitFile
// gives, and refuses what it refuses.
func testOpenCommitFile(f *fixture) {
	fo, ok := f.be.(dotmesh.TreeFileOpener)
	if !ok {
		f.t.Logf("backend %s has no TreeFileOpener: neutral streams read its commits' directories or scratch branches", f.be.Name())
		return
	}
	b := f.newBranch()
	f.write(b, richTree(f.t.TempDir()))
	c := f.commit(b)
	big := richTree("")["web/random.bin"].Data
	rc, err := fo.OpenCommitFile(f.ctx, c, "web/random.bin")
	f.fatalIf(err, "OpenCommitFile")
	data, err := io.ReadAll(rc)
	f.fatalIf(err, "reading an opened commit file")
	f.fatalIf(rc.Close(), "closing an opened commit file")
	if string(data) != string(big) {
		f.t.Errorf("OpenCommitFile(web/random.bin) gave %d bytes; want its %d", len(data), len(big))
	}
	for _, tc := range []struct {
		c    dotmesh.CommitRef
		path string
		want error
	}{
		{c, "db", dotmesh.ErrInvalidArgument},
		{c, "db/link-rel", dotmesh.ErrInvalidArgument},
		{c, "db/nope", dotmesh.ErrNotFound},
		{c, "../db/data.bin", dotmesh.ErrInvalidArgument},
		{newCommitRef(b), "db/data.bin", dotmesh.ErrNotFound},
	} {
		rc, err := fo.OpenCommitFile(f.ctx, tc.c, tc.path)
		if err == nil {
			rc.Close()
		}
		wantErr(f.t, "OpenCommitFile("+tc.path+")", err, tc.want)
	}
}

// testContentIDs: equal bytes give equal Content, changed bytes of the
// same size a different one.
func testContentIDs(f *fixture) {
	tr, ok := f.be.(dotmesh.TreeReader)
	if !ok {
		f.t.Logf("backend %s has no TreeReader: the Node compares bytes", f.be.Name())
		return
	}
	b := f.newBranch()
	f.write(b, Tree{"s": Dir(0o755), "s/a": File(0o644, "same"), "s/b": File(0o644, "old!"), "s/c": File(0o644, "same")})
	c1 := f.commit(b)
	f.write(b, Tree{"s/b": File(0o644, "new!")})
	c2 := f.commit(b)
	content := func(c dotmesh.CommitRef) map[string]string {
		es, err := tr.CommitTree(f.ctx, c)
		f.fatalIf(err, "CommitTree(%s)", c)
		m := map[string]string{}
		for _, e := range es {
			m[e.Path] = e.Content
		}
		return m
	}
	m1, m2 := content(c1), content(c2)
	if m1["s/a"] == "" || m1["s/a"] != m1["s/c"] || m1["s/a"] != m2["s/a"] {
		f.t.Errorf("equal bytes, different Content: %q %q %q", m1["s/a"], m1["s/c"], m2["s/a"])
	}
	if m1["s/b"] == m2["s/b"] {
		f.t.Errorf("changed bytes kept Content %q", m1["s/b"])
	}
}

// testAddedBytes: a backend that reports InfoAddedBytes counts new data
// and adds (almost) nothing for an unchanged tree.
func testAddedBytes(f *fixture) {
	b := f.newBranch()
	f.write(b, Tree{"d": Dir(0o755), "d/r": RandomFile(0o644, 1<<20, 7)})
	info, err := f.be.Commit(f.ctx, newCommitRef(b))
	f.fatalIf(err, "Commit")
	v, ok := info[dotmesh.InfoAddedBytes]
	if !ok {
		f.t.Logf("backend %s does not report %s (documented on Commit.Info)", f.be.Name(), dotmesh.InfoAddedBytes)
		return
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1<<20 {
		f.t.Errorf("%s = %q after 1 MiB of random data; want at least %d", dotmesh.InfoAddedBytes, v, 1<<20)
	}
	info, err = f.be.Commit(f.ctx, newCommitRef(b))
	f.fatalIf(err, "Commit of an unchanged tree")
	if n, err := strconv.ParseInt(info[dotmesh.InfoAddedBytes], 10, 64); err != nil || n > 64<<10 {
		f.t.Errorf("%s = %q for an unchanged tree; want (almost) nothing", dotmesh.InfoAddedBytes, info[dotmesh.InfoAddedBytes])
	}
}

// testNodeFiles: Node.Files over this backend, whichever way it reads
// trees, lists, reads and compares commits, and leaves no scratch
// storage behind once the dot is deleted.
func testNodeFiles(f *fixture) {
	t, ctx := f.t, f.ctx
	st, err := bboltstore.Open(filepath.Join(t.TempDir(), "registry.db"), bboltstore.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	n, err := dotmesh.NewNode(ctx, dotmesh.Options{Store: st, Backends: []dotmesh.StorageBackend{f.be}})
	require.NoError(t, err)
	t.Cleanup(func() { n.Close() })
	app := dotmesh.DotName{Namespace: dotmesh.DefaultNamespace, Name: "files"}
	_, err = n.CreateDot(ctx, app, dotmesh.CreateDotOptions{Backend: f.be.Name()})
	require.NoError(t, err)
	dir, err := n.SubdotPath(ctx, dotmesh.VolumeName{Dot: app, Subdot: "db"})
	require.NoError(t, err)
	write := func(name, data string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644))
	}
	write("a", "one")
	write("b", "bee")
	commit := func(msg string) {
		_, err := n.Commit(ctx, app, "", dotmesh.CommitOptions{Message: msg, Author: "test"})
		require.NoError(t, err)
	}
	commit("c1")
	write("a", "two")
	require.NoError(t, os.Remove(filepath.Join(dir, "b")))
	write("c", "sea")
	commit("c2")

	files := n.Files()
	page, err := files.List(ctx, app, "", "HEAD", "db", "", 10)
	require.NoError(t, err)
	var got []string
	for _, e := range page.Entries {
		got = append(got, e.Path)
	}
	require.Equal(t, []string{"db/a", "db/c"}, got)
	data, more, err := files.Read(ctx, app, "", "HEAD^", "db/a", 10)
	require.NoError(t, err)
	require.Equal(t, "one", string(data))
	require.False(t, more)
	changes, more, err := files.Changes(ctx, app, "", "HEAD", 10)
	require.NoError(t, err)
	require.False(t, more)
	require.Equal(t, []dotmesh.FileChange{
		{Path: "db/a", Kind: dotmesh.ChangeModified, OldSize: 3, NewSize: 3},
		{Path: "db/b", Kind: dotmesh.ChangeRemoved, OldSize: 3},
		{Path: "db/c", Kind: dotmesh.ChangeAdded, NewSize: 3},
	}, changes)
	_, _, err = files.Read(ctx, app, "", "HEAD", "../etc/passwd", 10)
	require.ErrorIs(t, err, dotmesh.ErrInvalidArgument)
	// A scratch branch the Node reads commits through (zfs) is kept for
	// the next read, and goes before the dot's data does.
	require.NoError(t, n.DeleteDot(ctx, app))
	require.Empty(t, f.branches(), "deleting the dot leaves no scratch storage behind")
}
