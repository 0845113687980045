package backendtest

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// diffTests check Node.Changes on the backend: the same changes whether
// a commit is compared with the next commit or with the working state,
// and the same as git and diff say for random trees.
var diffTests = []backendTest{
	{"Cases", testDiffCases},
	{"Status", testDiffStatus},
	{"AgainstGit", testDiffAgainstGit},
	{"NothingToCommit", testNothingToCommit},
	{"OldFiles", testDiffOldFiles},
}

// testDiffOldFiles: files older than their commit, where an InodeKeeper's
// inode ids prove files unchanged, still show every change: bytes
// rewritten at the same size and mtime, a file renamed over another, a
// file removed and made anew with the same bytes but another mode.
func testDiffOldFiles(f *fixture) {
	t := f.t
	n := f.diffNode()
	dot, root := f.diffDot(n, "oldfiles")
	WriteTree(t, root, Tree{
		"s/same": File(0o644, "same\n"), "s/edit": File(0o644, "aaaa\n"),
		"s/x": File(0o644, "xxxx\n"), "s/y": File(0o644, "yyyy\n"), "s/new": File(0o644, "nnnn\n"),
	})
	// Older than the commit by more than the proof's margin (100 ms) on
	// filesystems with sub-second ctimes: the edit below may fall in the
	// second the files were written.
	time.Sleep(300 * time.Millisecond)
	f.nodeCommit(n, dot, "before")
	edit := filepath.Join(root, "s/edit")
	info, err := os.Stat(edit)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(edit, []byte("bbbb\n"), 0o644))
	require.NoError(t, os.Chtimes(edit, info.ModTime(), info.ModTime()))
	require.NoError(t, os.Rename(filepath.Join(root, "s/x"), filepath.Join(root, "s/y")))
	require.NoError(t, os.Remove(filepath.Join(root, "s/new")))
	WriteTree(t, root, Tree{"s/new": File(0o600, "nnnn\n")})
	f.nodeCommit(n, dot, "after")
	want := []string{"modified s/edit", "modified s/new", "removed s/x", "modified s/y"}
	d, err := n.Changes().Diff(f.ctx, dot, dotmesh.DiffOptions{From: "HEAD^", To: "HEAD"})
	require.NoError(t, err)
	require.Equal(t, want, nameStatus(d))
	// Once more with that state older than the margin anywhere (1.1 s
	// with whole-second ctimes): files unchanged since are proven so,
	// and a rewrite and a chmod are still seen.
	time.Sleep(1200 * time.Millisecond)
	WriteTree(t, root, Tree{"s/z": File(0o644, "z\n")})
	f.nodeCommit(n, dot, "z")
	info, err = os.Stat(edit)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(edit, []byte("cccc\n"), 0o644))
	require.NoError(t, os.Chtimes(edit, info.ModTime(), info.ModTime()))
	require.NoError(t, os.Chmod(filepath.Join(root, "s/same"), 0o600))
	// The working state descends from HEAD: the proof holds against it
	// too, and sees the same changes.
	d, err = n.Changes().Diff(f.ctx, dot, dotmesh.DiffOptions{})
	require.NoError(t, err)
	require.Equal(t, []string{"modified s/edit", "modified s/same"}, nameStatus(d), "working state against HEAD")
	d, err = n.Changes().Diff(f.ctx, dot, dotmesh.DiffOptions{From: "HEAD^"})
	require.NoError(t, err)
	require.Equal(t, []string{"modified s/edit", "modified s/same", "added s/z"}, nameStatus(d), "working state against HEAD^")
	st, err := n.Changes().Status(f.ctx, dot, dotmesh.StatusOptions{})
	require.NoError(t, err)
	require.False(t, st.Clean)
	f.nodeCommit(n, dot, "mode")
	d, err = n.Changes().Diff(f.ctx, dot, dotmesh.DiffOptions{From: "HEAD^", To: "HEAD"})
	require.NoError(t, err)
	require.Equal(t, []string{"modified s/edit", "modified s/same"}, nameStatus(d))
	changes, _, err := n.Files().Changes(f.ctx, dot, "", "HEAD", 10)
	require.NoError(t, err)
	var got []string
	for _, c := range changes {
		got = append(got, c.Kind+" "+c.Path)
	}
	require.Equal(t, []string{"modified s/edit", "modified s/same"}, got, "Files.Changes against the parent")
	d, err = n.Changes().Diff(f.ctx, dot, dotmesh.DiffOptions{From: "HEAD~3", To: "HEAD"})
	require.NoError(t, err)
	require.Equal(t, []string{"modified s/edit", "modified s/new", "modified s/same", "removed s/x", "modified s/y", "added s/z"}, nameStatus(d))
}

// testNothingToCommit: what the Node's refusal of an empty commit stands
// on. DirtyChecker says what Usage says; a ChangeCommitter keeps a
// changed commit and removes an unchanged one.
func testNothingToCommit(f *fixture) {
	b := f.newBranch()
	f.write(b, Tree{"s/a": File(0o644, "one")})
	c1 := f.commit(b)
	dirty := func(want bool, when string) {
		f.t.Helper()
		if u := f.usage(b, &c1); u.Dirty != want {
			f.t.Errorf("%s: Usage says dirty %v", when, u.Dirty)
		}
		if dc, ok := f.be.(dotmesh.DirtyChecker); ok {
			u, err := dc.Dirty(f.ctx, b, &c1)
			f.fatalIf(err, "Dirty(%s)", b)
			if u.Dirty != want {
				f.t.Errorf("%s: Dirty says dirty %v", when, u.Dirty)
			}
		}
	}
	dirty(false, "after the commit")
	cc, ok := f.be.(dotmesh.ChangeCommitter)
	if ok {
		c2 := newCommitRef(b)
		_, changed, err := cc.CommitIfChanged(f.ctx, c2, c1)
		f.fatalIf(err, "CommitIfChanged(%s)", c2)
		if changed {
			f.t.Errorf("CommitIfChanged of an unchanged state says changed")
		}
		f.assertCommits(b, c1)
	}
	f.write(b, Tree{"s/a": File(0o644, "two")})
	dirty(true, "after a write")
	if ok {
		c3 := newCommitRef(b)
		_, changed, err := cc.CommitIfChanged(f.ctx, c3, c1)
		f.fatalIf(err, "CommitIfChanged(%s)", c3)
		if !changed {
			f.t.Errorf("CommitIfChanged of a changed state says unchanged")
		}
		f.assertCommits(b, c1, c3)
		f.assertCommitTree(c3, Tree{"s": Dir(0o755), "s/a": File(0o644, "two")})
	}
}

// diffNode is a Node on the fixture's backend with the real bbolt store.
func (f *fixture) diffNode() *dotmesh.Node {
	t := f.t
	st, err := bboltstore.Open(filepath.Join(t.TempDir(), "registry.db"), bboltstore.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	n, err := dotmesh.NewNode(f.ctx, dotmesh.Options{Store: st, Backends: []dotmesh.StorageBackend{f.be}})
	require.NoError(t, err)
	t.Cleanup(func() { n.Close() })
	return n
}

// diffDot creates a dot on n and returns it with its working tree root.
func (f *fixture) diffDot(n *dotmesh.Node, name string) (dotmesh.DotName, string) {
	dot := dotmesh.DotName{Namespace: dotmesh.DefaultNamespace, Name: name}
	_, err := n.CreateDot(f.ctx, dot, dotmesh.CreateDotOptions{Backend: f.be.Name()})
	require.NoError(f.t, err)
	root, err := n.SubdotPath(f.ctx, dotmesh.VolumeName{Dot: dot, Subdot: dotmesh.RootSubdot})
	require.NoError(f.t, err)
	return dot, root
}

func (f *fixture) nodeCommit(n *dotmesh.Node, dot dotmesh.DotName, msg string) {
	f.t.Helper()
	_, err := n.Commit(f.ctx, dot, "", dotmesh.CommitOptions{Message: msg, Author: "test"})
	require.NoError(f.t, err, "commit %s", msg)
}

// nameStatus is a diff as "KIND PATH" lines.
func nameStatus(d *dotmesh.Diff) []string {
	out := []string{}
	for _, fd := range d.Files {
		out = append(out, fd.Kind+" "+fd.Path)
	}
	return out
}

type diffCase struct {
	name   string
	before Tree
	change func(t *testing.T, root string)
	want   []string
}

var diffCases = []diffCase{
	{"Create", Tree{"s/a": File(0o644, "one\n")}, func(t *testing.T, r string) {
		WriteTree(t, r, Tree{"s/b": File(0o644, "bee\n")})
	}, []string{"added s/b"}},
	{"Modify", Tree{"s/a": File(0o644, "one\n")}, func(t *testing.T, r string) {
		WriteTree(t, r, Tree{"s/a": File(0o644, "two\n")})
	}, []string{"modified s/a"}},
	{"Delete", Tree{"s/a": File(0o644, "one\n"), "s/b": File(0o644, "b")}, func(t *testing.T, r string) {
		require.NoError(t, os.Remove(filepath.Join(r, "s/a")))
	}, []string{"removed s/a"}},
	{"Rename", Tree{"s/a": File(0o644, "one\n")}, func(t *testing.T, r string) {
		require.NoError(t, os.Rename(filepath.Join(r, "s/a"), filepath.Join(r, "s/c")))
	}, []string{"removed s/a", "added s/c"}},
	{"Mode", Tree{"s/a": File(0o644, "one\n")}, func(t *testing.T, r string) {
		require.NoError(t, os.Chmod(filepath.Join(r, "s/a"), 0o755))
	}, []string{"modified s/a"}},
	{"SymlinkRetarget", Tree{"s/l": Symlink("x")}, func(t *testing.T, r string) {
		WriteTree(t, r, Tree{"s/l": Symlink("y")})
	}, []string{"modified s/l"}},
	{"FileToSymlink", Tree{"s/a": File(0o644, "one\n")}, func(t *testing.T, r string) {
		WriteTree(t, r, Tree{"s/a": Symlink("b")})
	}, []string{"type_changed s/a"}},
	{"EmptyDirAdded", Tree{"s/a": File(0o644, "one\n")}, func(t *testing.T, r string) {
		require.NoError(t, os.Mkdir(filepath.Join(r, "s/e"), 0o755))
	}, []string{"added s/e"}},
	{"EmptyDirRemoved", Tree{"s/a": File(0o644, "one\n"), "s/e": Dir(0o755)}, func(t *testing.T, r string) {
		require.NoError(t, os.Remove(filepath.Join(r, "s/e")))
	}, []string{"removed s/e"}},
	{"FileToDirectory", Tree{"s/a": File(0o644, "one\n")}, func(t *testing.T, r string) {
		require.NoError(t, os.Remove(filepath.Join(r, "s/a")))
		WriteTree(t, r, Tree{"s/a/x": File(0o644, "x\n")})
	}, []string{"type_changed s/a", "added s/a/x"}},
}

// testDiffCases: each kind of change, between the working state and its
// head, and then between the two commits.
func testDiffCases(f *fixture) {
	n := f.diffNode()
	for i, tc := range diffCases {
		f.t.Run(tc.name, func(t *testing.T) {
			dot, root := f.diffDot(n, fmt.Sprintf("diff%d", i))
			WriteTree(t, root, tc.before)
			f.nodeCommit(n, dot, "before")
			tc.change(t, root)
			working, err := n.Changes().Diff(f.ctx, dot, dotmesh.DiffOptions{})
			require.NoError(t, err)
			require.Equal(t, tc.want, nameStatus(working), "working state against HEAD")
			require.Equal(t, "HEAD", working.From.Ref)
			require.Equal(t, dotmesh.DefaultBranch, working.To.Branch)
			f.nodeCommit(n, dot, "after")
			commits, err := n.Changes().Diff(f.ctx, dot, dotmesh.DiffOptions{From: "HEAD^", To: "HEAD"})
			require.NoError(t, err)
			require.Equal(t, tc.want, nameStatus(commits), "HEAD^ against HEAD")
			require.Equal(t, working.Stat, commits.Stat)
			for i := range working.Files {
				w, c := working.Files[i], commits.Files[i]
				require.Equal(t, w.OldMode&(fs.ModeType|fs.ModePerm), c.OldMode&(fs.ModeType|fs.ModePerm), w.Path)
				require.Equal(t, w.NewMode&(fs.ModeType|fs.ModePerm), c.NewMode&(fs.ModeType|fs.ModePerm), w.Path)
				w.OldMode, w.NewMode, c.OldMode, c.NewMode = 0, 0, 0, 0
				require.Equal(t, w, c)
			}
			clean, err := n.Changes().Diff(f.ctx, dot, dotmesh.DiffOptions{})
			require.NoError(t, err)
			require.Empty(t, clean.Files, "nothing differs right after a commit")
			back, err := n.Changes().Diff(f.ctx, dot, dotmesh.DiffOptions{From: "HEAD", To: "HEAD^"})
			require.NoError(t, err)
			require.Len(t, back.Files, len(tc.want), "the reverse diff has as many changes")
		})
	}
	f.t.Run("Patch", func(t *testing.T) {
		dot, root := f.diffDot(n, "patch")
		WriteTree(t, root, Tree{"s/t": File(0o644, "1\n2\n3\n4\n5\n6\n7\n8\n"), "s/bin": File(0o644, "a\x00b")})
		f.nodeCommit(n, dot, "before")
		WriteTree(t, root, Tree{"s/t": File(0o644, "1\n2\n3\n4\nfive\n6\n7\n8\n"), "s/bin": File(0o644, "a\x00c"), "s/new": File(0o644, "n\n")})
		d, err := n.Changes().Diff(f.ctx, dot, dotmesh.DiffOptions{Content: true, Context: 1})
		require.NoError(t, err)
		require.Equal(t, []string{"modified s/bin", "added s/new", "modified s/t"}, nameStatus(d))
		require.True(t, d.Files[0].Binary)
		require.Empty(t, d.Files[0].Patch)
		require.Equal(t, "--- /dev/null\n+++ b/s/new\n@@ -0,0 +1 @@\n+n\n", d.Files[1].Patch)
		require.Equal(t, "--- a/s/t\n+++ b/s/t\n@@ -4,3 +4,3 @@\n 4\n-5\n+five\n 6\n", d.Files[2].Patch)
		require.Equal(t, 2, d.Stat.Insertions)
		require.Equal(t, 1, d.Stat.Deletions)
		one, err := n.Changes().Diff(f.ctx, dot, dotmesh.DiffOptions{Content: true, MaxFiles: 1, MaxPatchBytes: 20, Paths: []string{"s/t", "s/new"}})
		require.NoError(t, err)
		require.Equal(t, []string{"added s/new"}, nameStatus(one))
		require.True(t, one.FilesTruncated)
		require.True(t, one.Files[0].PatchTruncated)
		require.Equal(t, "--- /dev/null\n", one.Files[0].Patch)
		require.Equal(t, 2, one.Stat.Added+one.Stat.Modified, "the stat counts what is not listed")
		_, err = n.Changes().Diff(f.ctx, dot, dotmesh.DiffOptions{Paths: []string{"s/nothing"}})
		require.ErrorIs(t, err, dotmesh.ErrNotFound)
		require.ErrorContains(t, err, "s/nothing")
		_, err = n.Changes().Diff(f.ctx, dot, dotmesh.DiffOptions{Paths: []string{"../x"}})
		require.ErrorIs(t, err, dotmesh.ErrInvalidArgument)
		_, err = n.Changes().Diff(f.ctx, dot, dotmesh.DiffOptions{Context: -1})
		require.ErrorIs(t, err, dotmesh.ErrInvalidArgument)
		_, err = n.Changes().Diff(f.ctx, dot, dotmesh.DiffOptions{From: "HEAD~3"})
		require.ErrorIs(t, err, dotmesh.ErrNotFound)
	})
	// Scratch storage the Node reads commits through (zfs) is kept for
	// the next diff, and goes before the dot's data does.
	for i := range diffCases {
		require.NoError(f.t, n.DeleteDot(f.ctx, dotmesh.DotName{Namespace: dotmesh.DefaultNamespace, Name: fmt.Sprintf("diff%d", i)}))
	}
	require.NoError(f.t, n.DeleteDot(f.ctx, dotmesh.DotName{Namespace: dotmesh.DefaultNamespace, Name: "patch"}))
	require.Empty(f.t, f.branches(), "deleting the dots leaves no scratch storage behind")
}

// testDiffStatus: the working state per subdot, before and after a commit.
func testDiffStatus(f *fixture) {
	t := f.t
	n := f.diffNode()
	dot, root := f.diffDot(n, "status")
	WriteTree(t, root, Tree{"web/index.html": File(0o644, "hi\n"), "db/x": File(0o644, "x")})
	st, err := n.Changes().Status(f.ctx, dot, dotmesh.StatusOptions{})
	require.NoError(t, err)
	require.False(t, st.Clean)
	require.Empty(t, st.Head)
	require.Len(t, st.Subdots, 2)
	require.Equal(t, "db", st.Subdots[0].Subdot)
	require.Equal(t, []string{"added db", "added db/x"}, nameStatus(&dotmesh.Diff{Files: st.Subdots[0].Files}))
	f.nodeCommit(n, dot, "one")
	st, err = n.Changes().Status(f.ctx, dot, dotmesh.StatusOptions{})
	require.NoError(t, err)
	require.True(t, st.Clean)
	require.NotEmpty(t, st.Head)
	require.Equal(t, "files", st.Subdots[1].Kind)
	require.NoError(t, os.WriteFile(filepath.Join(root, "web/index.html"), []byte("hello\n"), 0o644))
	st, err = n.Changes().Status(f.ctx, dot, dotmesh.StatusOptions{})
	require.NoError(t, err)
	require.False(t, st.Clean)
	require.False(t, st.Subdots[0].Changed)
	require.True(t, st.Subdots[1].Changed)
	require.Equal(t, []dotmesh.FileDiff{{Path: "web/index.html", Kind: dotmesh.ChangeModified, OldSize: 3, NewSize: 6, OldMode: 0o644, NewMode: 0o644}}, st.Subdots[1].Files)
}

// testDiffAgainstGit: random trees and random changes, committed; the
// diff of the two commits names the same files as git diff --no-index
// and the same directories as diff -rq, on copies of the two states.
func testDiffAgainstGit(f *fixture) {
	t := f.t
	for _, tool := range []string{"git", "diff"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed to check diffs against a reference: %v", tool, err)
		}
	}
	n := f.diffNode()
	for round := range 8 {
		seed := rand.Uint64()
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, uint64(round)))
			dot, root := f.diffDot(n, fmt.Sprintf("prop%d", round))
			WriteTree(t, root, randomTree(rng))
			f.nodeCommit(n, dot, "one")
			tmp := t.TempDir()
			before := filepath.Join(tmp, "a")
			copyTree(t, root, before)
			randomChanges(t, rng, root)
			after := filepath.Join(tmp, "b")
			copyTree(t, root, after)
			_, err := n.Commit(f.ctx, dot, "", dotmesh.CommitOptions{Message: "two", AllowEmpty: true})
			require.NoError(t, err)
			d, err := n.Changes().Diff(f.ctx, dot, dotmesh.DiffOptions{From: "HEAD^", To: "HEAD", MaxFiles: 1 << 20})
			require.NoError(t, err)
			files, dirs := []string{}, []string{}
			letter := map[string]string{dotmesh.ChangeAdded: "A", dotmesh.ChangeRemoved: "D", dotmesh.ChangeModified: "M", dotmesh.ChangeTypeChanged: "T"}
			for _, fd := range d.Files {
				oldDir, newDir := fd.OldMode.IsDir(), fd.NewMode.IsDir()
				switch {
				case fd.Kind == dotmesh.ChangeTypeChanged && (oldDir || newDir):
					// git sees a file added or removed, diff -rq a directory.
					if oldDir {
						files = append(files, "A "+fd.Path)
						dirs = append(dirs, "D "+fd.Path)
					} else {
						files = append(files, "D "+fd.Path)
						dirs = append(dirs, "A "+fd.Path)
					}
				case oldDir || newDir:
					if fd.Kind != dotmesh.ChangeModified { // git and diff -rq ignore directory modes
						dirs = append(dirs, letter[fd.Kind]+" "+fd.Path)
					}
				default:
					files = append(files, letter[fd.Kind]+" "+fd.Path)
				}
			}
			slices.Sort(files)
			slices.Sort(dirs)
			require.Equal(t, gitNameStatus(t, before, after), files, "seed %d: files against git diff --no-index --name-status", seed)
			require.Equal(t, diffRQDirs(t, before, after), dirs, "seed %d: directories against diff -rq", seed)
		})
	}
}

// randomTree makes a tree of a few directories, files and symlinks.
func randomTree(rng *rand.Rand) Tree {
	tr := Tree{}
	dirs := []string{"s", "s/d0", "s/d1", "t", "t/d2/d3"}
	for _, d := range dirs {
		tr[d] = Dir(0o755)
	}
	for i := range 12 + rng.IntN(12) {
		p := path.Join(dirs[rng.IntN(len(dirs))], fmt.Sprintf("f%d", i))
		switch rng.IntN(6) {
		case 0:
			tr[p] = Symlink(fmt.Sprintf("target%d", rng.IntN(3)))
		case 1:
			tr[p] = Dir(0o755)
		default:
			tr[p] = File(randomPerm(rng), randomText(rng))
		}
	}
	return tr
}

func randomPerm(rng *rand.Rand) fs.FileMode {
	// git keeps only the executable bit.
	return []fs.FileMode{0o644, 0o755}[rng.IntN(2)]
}

func randomText(rng *rand.Rand) string {
	var b strings.Builder
	for range rng.IntN(5) {
		fmt.Fprintf(&b, "line %d\n", rng.IntN(4))
	}
	return b.String()
}

// randomChanges adds, modifies, removes, retypes and renames entries.
func randomChanges(t *testing.T, rng *rand.Rand, root string) {
	var all []string
	require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		all = append(all, p)
		return nil
	}))
	for i := range 3 + rng.IntN(8) {
		p := all[rng.IntN(len(all))]
		fi, err := os.Lstat(p)
		if err != nil {
			continue // removed by an earlier change
		}
		switch rng.IntN(6) {
		case 0:
			require.NoError(t, os.RemoveAll(p))
		case 1:
			if fi.Mode().IsRegular() {
				require.NoError(t, os.WriteFile(p, []byte(randomText(rng)+"x\n"), fi.Mode().Perm()))
			}
		case 2:
			if fi.Mode().IsRegular() {
				require.NoError(t, os.Chmod(p, fi.Mode().Perm()^0o111))
			}
		case 3:
			require.NoError(t, os.RemoveAll(p))
			if rng.IntN(2) == 0 {
				require.NoError(t, os.Symlink("elsewhere", p))
			} else {
				WriteTree(t, root, Tree{mustRel(t, root, p) + "/n": File(0o644, "n\n")})
			}
		case 4:
			require.NoError(t, os.Rename(p, p+fmt.Sprintf("-moved%d", i)))
		default:
			dir := p
			if !fi.IsDir() {
				dir = filepath.Dir(p)
			}
			WriteTree(t, root, Tree{mustRel(t, root, filepath.Join(dir, fmt.Sprintf("new%d", i))): File(0o644, randomText(rng))})
		}
	}
}

func mustRel(t *testing.T, root, p string) string {
	r, err := filepath.Rel(root, p)
	require.NoError(t, err)
	return filepath.ToSlash(r)
}

// copyTree copies a tree as it is (cp -a), for the reference tools.
func copyTree(t *testing.T, from, to string) {
	out, err := exec.Command("cp", "-a", from+"/.", to).CombinedOutput()
	if err != nil {
		require.NoError(t, os.MkdirAll(to, 0o755))
		out, err = exec.Command("cp", "-a", from+"/.", to).CombinedOutput()
	}
	require.NoError(t, err, "cp -a: %s", out)
}

// gitNameStatus is git diff --no-index --name-status of two trees, as
// sorted "LETTER PATH" lines relative to the trees.
func gitNameStatus(t *testing.T, a, b string) []string {
	cmd := exec.Command("git", "diff", "--no-index", "--name-status", "--no-renames", "-z", filepath.Base(a), filepath.Base(b))
	cmd.Dir = filepath.Dir(a) // b is beside a: relative names in the output
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+t.TempDir())
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 {
		err = nil // differences found
	}
	require.NoError(t, err, "git diff --no-index")
	fields := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	res := []string{}
	for i := 0; i+1 < len(fields); i += 2 {
		p := fields[i+1]
		p = strings.TrimPrefix(strings.TrimPrefix(p, filepath.Base(a)+"/"), filepath.Base(b)+"/")
		res = append(res, fields[i]+" "+p)
	}
	slices.Sort(res)
	return res
}

// diffRQDirs lists the directories diff -rq says exist on one side only,
// with everything under them, as sorted "A PATH" and "D PATH" lines.
func diffRQDirs(t *testing.T, a, b string) []string {
	out, err := exec.Command("diff", "-rq", "--no-dereference", a, b).Output()
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 {
		err = nil
	}
	require.NoError(t, err, "diff -rq")
	res := []string{}
	for line := range strings.SplitSeq(string(out), "\n") {
		var side, dir, name string
		if rest, ok := strings.CutPrefix(line, "Only in "); ok {
			dir, name, _ = strings.Cut(rest, ": ")
		} else if strings.Contains(line, " is a directory while file ") || strings.Contains(line, " while file ") && strings.HasSuffix(line, " is a directory") {
			// "File A/x is a directory while file B/x is a regular file"
			fields := strings.Split(strings.TrimPrefix(line, "File "), " while file ")
			pa, pb := cutKind(fields[0]), cutKind(fields[1])
			for _, p := range []string{pa, pb} {
				if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
					dir, name = filepath.Dir(p), filepath.Base(p)
				}
			}
		}
		if dir == "" {
			continue
		}
		full := filepath.Join(dir, name)
		fi, err := os.Lstat(full)
		if err != nil || !fi.IsDir() {
			continue
		}
		base, letter := a, "D"
		if strings.HasPrefix(full, b+"/") {
			base, letter = b, "A"
		}
		side = letter
		require.NoError(t, filepath.WalkDir(full, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				res = append(res, side+" "+mustRel(t, base, p))
			}
			return err
		}))
	}
	slices.Sort(res)
	return res
}

// cutKind drops " is a directory" / " is a regular file" from a path.
func cutKind(s string) string {
	if i := strings.LastIndex(s, " is a "); i >= 0 {
		return s[:i]
	}
	return s
}
