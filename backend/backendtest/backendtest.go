// Package backendtest is the conformance suite for dotmesh.StorageBackend.
//
// Every backend runs it from its own package:
//
//	func TestConformance(t *testing.T) {
//		backendtest.Run(t, func(t *testing.T) dotmesh.StorageBackend {
//			b, err := mybackend.Open(t.TempDir(), ...)
//			if err != nil {
//				t.Fatal(err)
//			}
//			return b
//		})
//	}
//
// Each call of open must return a fresh backend with its own, empty data
// directory, as users get it (behind backend/internal/guard for the
// product backends: the Lifecycle group checks the guard's behaviour); the
// suite closes it when the subtest ends. Some subtests open
// two backends (sender and receiver). The suite writes real files into the
// paths SubdotPath returns and compares whole trees (type, permission bits,
// content, symlink targets; not owners or times).
//
// The helpers WriteTree, ReadTree, AssertTree and DiffTrees are exported for
// backend-specific tests.
package backendtest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Run runs the conformance suite against backends made by open.
func Run(t *testing.T, open func(t *testing.T) dotmesh.StorageBackend) {
	t.Helper()
	groups := []struct {
		name  string
		tests []backendTest
	}{
		{"Branch", branchTests},
		{"Commit", commitTests},
		{"Branching", branchingTests},
		{"Adopt", adoptTests},
		{"Usage", usageTests},
		{"Transfer", transferTests},
		{"Errors", errorTests},
		{"Concurrency", concurrencyTests},
		{"Records", recordTests},
		{"Tree", treeTests},
		{"Diff", diffTests},
		{"StoreStats", storeStatsTests},
		{"Lifecycle", lifecycleTests},
		{"Paths", pathTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) { tc.fn(newFixture(t, open)) })
			}
		})
	}
}

type backendTest struct {
	name string
	fn   func(f *fixture)
}

// fixture is one subtest's backend plus helpers that fail the test on
// unexpected errors.
type fixture struct {
	t    *testing.T
	be   dotmesh.StorageBackend
	ctx  context.Context
	open func(t *testing.T) dotmesh.StorageBackend
}

func newFixture(t *testing.T, open func(t *testing.T) dotmesh.StorageBackend) *fixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	f := &fixture{t: t, ctx: ctx, open: open}
	f.be = f.openBackend()
	return f
}

// another returns a fixture on a second fresh backend in the same subtest.
func (f *fixture) another() *fixture {
	return &fixture{t: f.t, ctx: f.ctx, open: f.open, be: f.openBackend()}
}

func (f *fixture) openBackend() dotmesh.StorageBackend {
	f.t.Helper()
	be := f.open(f.t)
	if be == nil {
		f.t.Fatal("open returned a nil backend")
	}
	f.t.Cleanup(func() {
		if err := be.Close(); err != nil {
			f.t.Errorf("Close: %v", err)
		}
	})
	return be
}

func newBranchRef() dotmesh.BranchRef {
	return dotmesh.BranchRef{Dot: dotmesh.NewDotID(), Branch: dotmesh.DefaultBranch}
}

func newCommitRef(b dotmesh.BranchRef) dotmesh.CommitRef {
	return dotmesh.CommitRef{BranchRef: b, ID: dotmesh.NewCommitID()}
}

func (f *fixture) fatalIf(err error, format string, args ...any) {
	f.t.Helper()
	if err != nil {
		f.t.Fatalf(format+": %v", append(args, err)...)
	}
}

func (f *fixture) create(b dotmesh.BranchRef, from *dotmesh.CommitRef) {
	f.t.Helper()
	f.fatalIf(f.be.CreateBranch(f.ctx, b, from), "CreateBranch(%s, %v)", b, from)
}

// newBranch creates a branch of a new dot, empty or from a commit.
func (f *fixture) newBranch() dotmesh.BranchRef {
	f.t.Helper()
	b := newBranchRef()
	f.create(b, nil)
	return b
}

func (f *fixture) subdot(b dotmesh.BranchRef, s string) string {
	f.t.Helper()
	p, err := f.be.SubdotPath(f.ctx, b, s)
	f.fatalIf(err, "SubdotPath(%s, %s)", b, s)
	fi, err := os.Stat(p)
	f.fatalIf(err, "SubdotPath(%s, %s) returned %s", b, s, p)
	if !fi.IsDir() {
		f.t.Fatalf("SubdotPath(%s, %s) = %s, which is not a directory", b, s, p)
	}
	return p
}

func (f *fixture) root(b dotmesh.BranchRef) string {
	f.t.Helper()
	return f.subdot(b, dotmesh.RootSubdot)
}

func (f *fixture) write(b dotmesh.BranchRef, tree Tree) {
	f.t.Helper()
	WriteTree(f.t, f.root(b), tree)
}

func (f *fixture) assertTree(b dotmesh.BranchRef, want Tree) {
	f.t.Helper()
	AssertTree(f.t, f.root(b), want)
}

func (f *fixture) commit(b dotmesh.BranchRef) dotmesh.CommitRef {
	f.t.Helper()
	c := newCommitRef(b)
	_, err := f.be.Commit(f.ctx, c)
	f.fatalIf(err, "Commit(%s)", c)
	return c
}

func (f *fixture) rollback(b dotmesh.BranchRef, c dotmesh.CommitRef) {
	f.t.Helper()
	f.fatalIf(f.be.Rollback(f.ctx, b, c), "Rollback(%s, %s)", b, c)
}

func (f *fixture) commits(b dotmesh.BranchRef) []dotmesh.CommitID {
	f.t.Helper()
	ids, err := f.be.Commits(f.ctx, b)
	f.fatalIf(err, "Commits(%s)", b)
	slices.Sort(ids)
	return ids
}

func (f *fixture) assertCommits(b dotmesh.BranchRef, want ...dotmesh.CommitRef) {
	f.t.Helper()
	var ids []dotmesh.CommitID
	for _, c := range want {
		ids = append(ids, c.ID)
	}
	slices.Sort(ids)
	if got := f.commits(b); !slices.Equal(got, ids) {
		f.t.Errorf("Commits(%s) = %v, want %v", b, got, ids)
	}
}

// assertNoCommit checks that c is not listed on c.Branch (which may not
// exist at all).
func (f *fixture) assertNoCommit(c dotmesh.CommitRef) {
	f.t.Helper()
	ids, err := f.be.Commits(f.ctx, c.BranchRef)
	if err != nil && !errors.Is(err, dotmesh.ErrNotFound) {
		f.t.Fatalf("Commits(%s): %v", c.BranchRef, err)
	}
	if slices.Contains(ids, c.ID) {
		f.t.Errorf("commit %s is listed by Commits although it should not exist", c)
	}
}

func (f *fixture) usage(b dotmesh.BranchRef, head *dotmesh.CommitRef) dotmesh.Usage {
	f.t.Helper()
	u, err := f.be.Usage(f.ctx, b, head)
	f.fatalIf(err, "Usage(%s)", b)
	return u
}

func (f *fixture) assertClean(b dotmesh.BranchRef, head *dotmesh.CommitRef, when string) {
	f.t.Helper()
	if u := f.usage(b, head); u.Dirty {
		f.t.Errorf("%s: Usage(%s, %v) = %+v, want Dirty false", when, b, head, u)
	}
}

func (f *fixture) branches() []dotmesh.BranchRef {
	f.t.Helper()
	bs, err := f.be.Branches(f.ctx)
	f.fatalIf(err, "Branches")
	return bs
}

func (f *fixture) send(c dotmesh.CommitRef, base *dotmesh.CommitRef) []byte {
	f.t.Helper()
	var buf bytes.Buffer
	f.fatalIf(f.be.Send(f.ctx, c, base, &buf), "Send(%s, base %v)", c, base)
	if buf.Len() == 0 {
		f.t.Fatalf("Send(%s) wrote an empty stream", c)
	}
	return buf.Bytes()
}

func (f *fixture) receive(c dotmesh.CommitRef, base *dotmesh.CommitRef, data []byte) error {
	return f.be.Receive(f.ctx, c, base, bytes.NewReader(data))
}

func wantErr(t *testing.T, what string, err, sentinel error) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Errorf("%s: got %v, want an error wrapping %v", what, err, sentinel)
	}
}

func sortedNames(names []string) []string {
	names = slices.Clone(names)
	slices.Sort(names)
	return names
}

// richTree has every kind of entry the backends must keep, in two subdots.
// outside is a directory outside the tree that a symlink points to.
func richTree(outside string) Tree {
	return Tree{
		"db":                     Dir(0o755),
		"db/data.bin":            File(0o600, "database pages v1"),
		"db/run.sh":              File(0o755, "#!/bin/sh\necho v1\n"),
		"db/empty":               Dir(0o700),
		"db/nested":              Dir(0o755),
		"db/nested/a":            Dir(0o750),
		"db/nested/a/b":          Dir(0o755),
		"db/nested/a/b/deep.txt": File(0o644, "deep"),
		"db/nested/a/ro":         Dir(0o555),
		"db/nested/a/ro/ro.txt":  File(0o444, "read only"),
		"db/zero":                File(0o644, ""),
		"db/link-rel":            Symlink("data.bin"),
		"db/link-dangling":       Symlink("does/not/exist"),
		"db/link-out":            Symlink(outside),
		"db/link-dir":            Symlink("nested/a"),
		"web":                    Dir(0o755),
		"web/index.html":         File(0o644, "<h1>v1</h1>"),
		"web/to-be-deleted.txt":  File(0o640, "gone soon"),
		"web/dir-to-file":        Dir(0o755),
		"web/dir-to-file/x.txt":  File(0o644, "x"),
		"web/link-retarget":      Symlink("index.html"),
		"web/random.bin":         RandomFile(0o644, 300<<10, 1),
	}
}

// ---- Branch ----

var branchTests = []backendTest{
	{"Name", func(f *fixture) {
		if f.be.Name() == "" {
			f.t.Error("Name() is empty")
		}
	}},
	{"CreateEmpty", func(f *fixture) {
		b := f.newBranch()
		f.assertTree(b, Tree{})
		if s, err := f.be.Subdots(f.ctx, b); err != nil || len(s) != 0 {
			f.t.Errorf("Subdots of a new branch = %q, %v; want none", s, err)
		}
		if ids := f.commits(b); len(ids) != 0 {
			f.t.Errorf("Commits of a new branch = %v, want none", ids)
		}
		f.write(b, Tree{"db": Dir(0o755), "db/f": File(0o644, "keep me")})
		wantErr(f.t, "second CreateBranch", f.be.CreateBranch(f.ctx, b, nil), dotmesh.ErrAlreadyExists)
		f.assertTree(b, Tree{"db": Dir(0o755), "db/f": File(0o644, "keep me")})
	}},
	{"SubdotPath", func(f *fixture) {
		b := f.newBranch()
		db := f.subdot(b, "db")
		if again := f.subdot(b, "db"); again != db {
			f.t.Errorf("SubdotPath twice: %s then %s", db, again)
		}
		def := f.subdot(b, dotmesh.DefaultSubdot)
		if def == db {
			f.t.Errorf("subdots db and %s share the path %s", dotmesh.DefaultSubdot, db)
		}
		// The root is the parent of the subdots, both ways.
		WriteTree(f.t, f.root(b), Tree{"web": Dir(0o755), "web/x": File(0o644, "via root")})
		WriteTree(f.t, db, Tree{"y": File(0o600, "via subdot")})
		AssertTree(f.t, f.subdot(b, "web"), Tree{"x": File(0o644, "via root")})
		WriteTree(f.t, def, Tree{"z": File(0o644, "default")})
		got := ReadTree(f.t, f.root(b))
		if e := got["db/y"]; string(e.Data) != "via subdot" {
			f.t.Errorf("file written in subdot db is not at <root>/db/y (root tree: %v)", sortedNames(keys(got)))
		}
		if e := got[dotmesh.DefaultSubdot+"/z"]; string(e.Data) != "default" {
			f.t.Errorf("file written in subdot %s is not at <root>/%s/z", dotmesh.DefaultSubdot, dotmesh.DefaultSubdot)
		}
		s, err := f.be.Subdots(f.ctx, b)
		f.fatalIf(err, "Subdots")
		if want := []string{dotmesh.DefaultSubdot, "db", "web"}; !slices.Equal(sortedNames(s), want) {
			f.t.Errorf("Subdots = %q, want %q", s, want)
		}
	}},
	{"Branches", func(f *fixture) {
		if bs := f.branches(); len(bs) != 0 {
			f.t.Errorf("Branches of a fresh backend = %v, want none", bs)
		}
		a, b := f.newBranch(), f.newBranch()
		a2 := dotmesh.BranchRef{Dot: a.Dot, Branch: "feature-2"}
		f.create(a2, nil)
		want := []string{a.String(), a2.String(), b.String()}
		var got []string
		for _, br := range f.branches() {
			got = append(got, br.String())
		}
		if !slices.Equal(sortedNames(got), sortedNames(want)) {
			f.t.Errorf("Branches = %q, want %q", got, want)
		}
	}},
	{"DotsIsolated", func(f *fixture) {
		a, b := f.newBranch(), f.newBranch() // same branch name, different dots
		f.write(a, Tree{"db": Dir(0o755), "db/a": File(0o644, "A")})
		f.write(b, Tree{"db": Dir(0o755), "db/b": File(0o644, "B")})
		f.assertTree(a, Tree{"db": Dir(0o755), "db/a": File(0o644, "A")})
		f.assertTree(b, Tree{"db": Dir(0o755), "db/b": File(0o644, "B")})
		ca := f.commit(a)
		f.assertCommits(a, ca)
		f.assertCommits(b)
	}},
	{"DeleteBranch", func(f *fixture) {
		b, other := f.newBranch(), f.newBranch()
		sibling := dotmesh.BranchRef{Dot: b.Dot, Branch: "sibling"}
		f.create(sibling, nil)
		f.write(b, Tree{"db": Dir(0o755), "db/f": File(0o644, "x")})
		f.write(sibling, Tree{"db": Dir(0o755), "db/s": File(0o644, "s")})
		c := f.commit(b)
		cs := f.commit(sibling)
		f.fatalIf(f.be.DeleteBranch(f.ctx, b), "DeleteBranch")
		for _, br := range f.branches() {
			if br == b {
				f.t.Errorf("Branches still lists %s after DeleteBranch", b)
			}
		}
		_, err := f.be.SubdotPath(f.ctx, b, "db")
		wantErr(f.t, "SubdotPath of a deleted branch", err, dotmesh.ErrNotFound)
		_, err = f.be.Commits(f.ctx, b)
		wantErr(f.t, "Commits of a deleted branch", err, dotmesh.ErrNotFound)
		wantErr(f.t, "Rollback of a deleted branch", f.be.Rollback(f.ctx, b, c), dotmesh.ErrNotFound)
		f.fatalIf(f.be.DeleteBranch(f.ctx, b), "second DeleteBranch (must not be an error)")
		f.fatalIf(f.be.DeleteBranch(f.ctx, newBranchRef()), "DeleteBranch of a branch never created (must not be an error)")
		// Other branches, of the same dot or not, are untouched.
		f.assertTree(sibling, Tree{"db": Dir(0o755), "db/s": File(0o644, "s")})
		f.assertCommits(sibling, cs)
		f.assertTree(other, Tree{})
		// The name can be used again, starting empty and without old commits.
		f.create(b, nil)
		f.assertTree(b, Tree{})
		f.assertCommits(b)
	}},
}

func keys(tr Tree) []string {
	var ks []string
	for k := range tr {
		ks = append(ks, k)
	}
	return ks
}

// ---- Commit ----

var commitTests = []backendTest{
	{"RollbackRestoresEverything", func(f *fixture) {
		outside := f.t.TempDir()
		WriteTree(f.t, outside, Tree{"secret.txt": File(0o600, "outside the tree")})
		b := f.newBranch()
		v1 := richTree(outside)
		f.write(b, v1)
		c1 := f.commit(b)
		f.assertTree(b, v1) // committing leaves the working state alone

		root := f.root(b)
		p := func(rel string) string { return filepath.Join(root, filepath.FromSlash(rel)) }
		must := func(err error) { f.t.Helper(); f.fatalIf(err, "changing the working state") }
		must(os.WriteFile(p("db/data.bin"), []byte("database pages v2"), 0)) // same size
		must(os.Chmod(p("db/run.sh"), 0o644))
		must(os.WriteFile(p("db/empty/new.txt"), []byte("not empty now"), 0o644))
		must(os.Chmod(p("db/nested/a/ro"), 0o755))
		must(os.RemoveAll(p("db/nested/a")))
		must(os.Remove(p("db/link-rel")))
		must(os.WriteFile(p("db/link-rel"), []byte("a file now"), 0o644))
		must(os.Truncate(p("db/zero"), 10))
		must(appendFile(p("web/index.html"), "<p>more</p>"))
		must(os.Remove(p("web/to-be-deleted.txt")))
		must(os.RemoveAll(p("web/dir-to-file")))
		must(os.WriteFile(p("web/dir-to-file"), []byte("was a dir"), 0o644))
		must(os.Remove(p("web/link-retarget")))
		must(os.Symlink("elsewhere", p("web/link-retarget")))
		must(os.WriteFile(p("web/new-after-commit.txt"), []byte("new"), 0o644))
		must(os.WriteFile(p("web/random.bin"), RandomBytes(300<<10, 2), 0o644))
		WriteTree(f.t, f.subdot(b, "cache"), Tree{"c": File(0o644, "new subdot")})
		// Changes behind an out-of-tree symlink must not matter either.
		WriteTree(f.t, outside, Tree{"more.txt": File(0o644, "added later")})

		f.rollback(b, c1)
		f.assertTree(b, v1)
		if s, err := f.be.Subdots(f.ctx, b); err != nil || !slices.Equal(sortedNames(s), []string{"db", "web"}) {
			f.t.Errorf("Subdots after rollback = %q, %v; want [db web]", s, err)
		}
		// Still a writable working state that can be committed again.
		f.write(b, Tree{"web/after.txt": File(0o644, "after rollback")})
		c2 := f.commit(b)
		f.assertCommits(b, c1, c2)
		f.write(b, Tree{"web/later.txt": File(0o644, "later")})
		f.rollback(b, c2)
		f.assertTree(b, v1.Clone().Merge(Tree{"web/after.txt": File(0o644, "after rollback")}))
	}},
	{"RootLevelFiles", func(f *fixture) {
		// RootSubdot is the whole tree: what a user writes there outside
		// any subdot directory is committed too.
		b := f.newBranch()
		v1 := Tree{
			"top.txt":        File(0o644, "at the root"),
			".hidden":        Dir(0o700),
			".hidden/config": File(0o600, "hidden"),
			"db":             Dir(0o755),
			"db/f":           File(0o644, "f"),
		}
		f.write(b, v1)
		c := f.commit(b)
		root := f.root(b)
		f.fatalIf(os.Remove(filepath.Join(root, "top.txt")), "remove")
		f.fatalIf(os.RemoveAll(filepath.Join(root, ".hidden")), "remove")
		f.fatalIf(os.WriteFile(filepath.Join(root, "new-top.txt"), nil, 0o644), "write")
		f.rollback(b, c)
		f.assertTree(b, v1)
	}},
	{"RollbackToOlderCommit", func(f *fixture) {
		b := f.newBranch()
		v1 := Tree{"db": Dir(0o755), "db/f": File(0o644, "one")}
		f.write(b, v1)
		c1 := f.commit(b)
		f.write(b, Tree{"db/f": File(0o600, "two"), "db/g": File(0o644, "g")})
		f.commit(b)
		f.rollback(b, c1)
		f.assertTree(b, v1)
		f.write(b, Tree{"db/h": File(0o644, "h")})
		c3 := f.commit(b)
		f.write(b, Tree{"db/i": File(0o644, "i")})
		f.rollback(b, c3)
		f.assertTree(b, v1.Clone().Merge(Tree{"db/h": File(0o644, "h")}))
	}},
	{"EmptyCommit", func(f *fixture) {
		b := f.newBranch()
		c := f.commit(b)
		f.write(b, Tree{"db": Dir(0o755), "db/f": File(0o644, "x"), "top": File(0o644, "y")})
		f.rollback(b, c)
		f.assertTree(b, Tree{})
	}},
	{"LargeFile", func(f *fixture) {
		b := f.newBranch()
		v1 := Tree{"db": Dir(0o755), "db/big.bin": RandomFile(0o644, 20<<20, 42)}
		f.write(b, v1)
		c := f.commit(b)
		f.write(b, Tree{"db/big.bin": RandomFile(0o644, 20<<20, 43)})
		f.rollback(b, c)
		f.assertTree(b, v1)
	}},
	{"Commits", func(f *fixture) {
		b := f.newBranch()
		f.assertCommits(b)
		f.write(b, Tree{"db": Dir(0o755), "db/f": File(0o644, "1")})
		c1 := f.commit(b)
		f.assertCommits(b, c1)
		f.write(b, Tree{"db/f": File(0o644, "2")})
		c2 := f.commit(b)
		c3 := f.commit(b) // nothing changed: still a commit of its own
		f.assertCommits(b, c1, c2, c3)
	}},
	{"DeleteCommit", func(f *fixture) {
		b := f.newBranch()
		v1 := Tree{"db": Dir(0o755), "db/f": File(0o644, "1")}
		f.write(b, v1)
		c1 := f.commit(b)
		f.write(b, Tree{"db/f": File(0o644, "2")})
		c2 := f.commit(b)
		// As the Node does it: reset the branch, then drop the orphan.
		f.rollback(b, c1)
		f.fatalIf(f.be.DeleteCommit(f.ctx, c2), "DeleteCommit")
		f.assertCommits(b, c1)
		wantErr(f.t, "Rollback to a deleted commit", f.be.Rollback(f.ctx, b, c2), dotmesh.ErrNotFound)
		wantErr(f.t, "Send of a deleted commit", f.be.Send(f.ctx, c2, nil, io.Discard), dotmesh.ErrNotFound)
		f.assertTree(b, v1)
		f.fatalIf(f.be.DeleteCommit(f.ctx, c2), "DeleteCommit of a deleted commit (must not be an error)")
		f.fatalIf(f.be.DeleteCommit(f.ctx, newCommitRef(b)), "DeleteCommit of a commit never made (must not be an error)")
		f.write(b, Tree{"db/f": File(0o644, "3")})
		f.rollback(b, c1)
		f.assertTree(b, v1)
	}},
}

func appendFile(path, s string) error {
	fh, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = fh.WriteString(s)
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	return err
}

// ---- Branching ----

var branchingTests = []backendTest{
	{"FromCommit", func(f *fixture) {
		b1 := f.newBranch()
		v1 := richTree(f.t.TempDir())
		f.write(b1, v1)
		c1 := f.commit(b1)
		b2 := dotmesh.BranchRef{Dot: b1.Dot, Branch: "feature"}
		f.create(b2, &c1)
		f.assertTree(b2, v1)
		f.assertClean(b2, &c1, "new branch from a commit")
		wantErr(f.t, "second CreateBranch from a commit", f.be.CreateBranch(f.ctx, b2, &c1), dotmesh.ErrAlreadyExists)

		// Working states are independent both ways.
		f.write(b2, Tree{"db/b2only": File(0o644, "b2")})
		f.write(b1, Tree{"web/b1only": File(0o644, "b1")})
		v1b1 := v1.Clone().Merge(Tree{"web/b1only": File(0o644, "b1")})
		v1b2 := v1.Clone().Merge(Tree{"db/b2only": File(0o644, "b2")})
		f.assertTree(b1, v1b1)
		f.assertTree(b2, v1b2)

		// So are their commits.
		c2 := f.commit(b2)
		f.assertCommits(b2, c2)
		f.assertCommits(b1, c1)
		c3 := f.commit(b1)
		f.assertCommits(b1, c1, c3)
		f.assertCommits(b2, c2)

		f.write(b2, Tree{"db/uncommitted": File(0o644, "u")})
		f.rollback(b2, c2)
		f.assertTree(b2, v1b2)
		// Back to the origin, a commit stored on b1.
		f.rollback(b2, c1)
		f.assertTree(b2, v1)
		f.assertTree(b1, v1b1)
		f.assertCommits(b1, c1, c3)
		// And the other way: b1 back to its own first commit.
		f.rollback(b1, c1)
		f.assertTree(b1, v1)
	}},
	{"FromMissingCommit", func(f *fixture) {
		b1 := f.newBranch()
		b2 := dotmesh.BranchRef{Dot: b1.Dot, Branch: "feature"}
		missing := newCommitRef(b1)
		wantErr(f.t, "CreateBranch from a missing commit", f.be.CreateBranch(f.ctx, b2, &missing), dotmesh.ErrNotFound)
		for _, br := range f.branches() {
			if br == b2 {
				f.t.Errorf("failed CreateBranch left %s in Branches", b2)
			}
		}
		f.create(b2, nil) // nothing half-made is in the way
		f.assertTree(b2, Tree{})
	}},
	{"DeleteBranchKeepsOrigin", func(f *fixture) {
		b1 := f.newBranch()
		v1 := Tree{"db": Dir(0o755), "db/f": File(0o644, "origin")}
		f.write(b1, v1)
		c1 := f.commit(b1)
		b2 := dotmesh.BranchRef{Dot: b1.Dot, Branch: "feature"}
		f.create(b2, &c1)
		f.write(b2, Tree{"db/g": File(0o644, "g")})
		f.commit(b2)
		f.fatalIf(f.be.DeleteBranch(f.ctx, b2), "DeleteBranch")
		f.assertCommits(b1, c1)
		f.write(b1, Tree{"db/f": File(0o644, "changed")})
		f.rollback(b1, c1)
		f.assertTree(b1, v1)
		b3 := dotmesh.BranchRef{Dot: b1.Dot, Branch: "again"}
		f.create(b3, &c1)
		f.assertTree(b3, v1)
	}},
}

// ---- Usage ----

var usageTests = []backendTest{
	{"BeforeFirstCommit", func(f *fixture) {
		b := f.newBranch()
		f.assertClean(b, nil, "new empty branch")
		f.write(b, Tree{"db": Dir(0o755), "db/f": RandomFile(0o644, 100<<10, 3)})
		u := f.usage(b, nil)
		if !u.Dirty || u.DirtyBytes <= 0 {
			f.t.Errorf("Usage after writing 100 KiB before the first commit = %+v, want Dirty and DirtyBytes > 0", u)
		}
		if u.Size < 50<<10 {
			f.t.Errorf("Usage.Size = %d after writing 100 KiB", u.Size)
		}
	}},
	{"AfterCommit", func(f *fixture) {
		b := f.newBranch()
		tree := Tree{"db": Dir(0o755), "db/big": RandomFile(0o644, 1<<20, 4), "web": Dir(0o755), "web/small": File(0o644, "s")}
		f.write(b, tree)
		c := f.commit(b)
		u := f.usage(b, &c)
		if u.Dirty {
			f.t.Errorf("Usage right after Commit = %+v, want Dirty false", u)
		}
		if n := treeSize(tree); u.Size < n/2 || u.Size > 64*n {
			f.t.Errorf("Usage.Size = %d for a tree of %d bytes; want roughly the tree size", u.Size, n)
		}
	}},
	{"Changes", func(f *fixture) {
		b := f.newBranch()
		base := Tree{
			"db":       Dir(0o755),
			"db/file":  RandomFile(0o644, 64<<10, 5),
			"db/empty": Dir(0o755),
			"db/link":  Symlink("file"),
			"web":      Dir(0o755),
			"web/x":    File(0o644, "x"),
		}
		f.write(b, base)
		c := f.commit(b)
		f.assertClean(b, &c, "after commit")
		root := f.root(b)
		p := func(rel string) string { return filepath.Join(root, filepath.FromSlash(rel)) }
		changes := []struct {
			name    string
			content bool // DirtyBytes must be > 0
			do      func() error
		}{
			{"new file", true, func() error { return os.WriteFile(p("db/new"), RandomBytes(64<<10, 6), 0o644) }},
			{"append", true, func() error { return appendFile(p("db/file"), string(RandomBytes(64<<10, 7))) }},
			{"overwrite same size", true, func() error { return os.WriteFile(p("db/file"), RandomBytes(64<<10, 8), 0) }},
			{"delete file", false, func() error { return os.Remove(p("web/x")) }},
			{"delete subdot", false, func() error { return os.RemoveAll(p("web")) }},
			{"chmod", false, func() error { return os.Chmod(p("db/file"), 0o600) }},
			{"mkdir", false, func() error { return os.Mkdir(p("db/newdir"), 0o755) }},
			{"rmdir", false, func() error { return os.Remove(p("db/empty")) }},
			{"retarget symlink", false, func() error {
				if err := os.Remove(p("db/link")); err != nil {
					return err
				}
				return os.Symlink("other", p("db/link"))
			}},
		}
		for _, ch := range changes {
			f.fatalIf(ch.do(), "change %q", ch.name)
			u := f.usage(b, &c)
			if !u.Dirty {
				f.t.Errorf("after change %q: Usage = %+v, want Dirty", ch.name, u)
			}
			if ch.content && u.DirtyBytes <= 0 {
				f.t.Errorf("after change %q: Usage = %+v, want DirtyBytes > 0", ch.name, u)
			}
			f.rollback(b, c)
			f.assertClean(b, &c, "after change "+ch.name+" and Rollback")
			f.assertTree(b, base)
		}
	}},
}

// ---- Transfer ----

// transferSource makes a branch with two commits and returns them with
// their trees and streams (full of c1, incremental c1..c2).
func transferSource(f *fixture) (c1, c2 dotmesh.CommitRef, v1, v2 Tree, full, incr []byte) {
	f.t.Helper()
	b := f.newBranch()
	v1 = richTree(f.t.TempDir())
	f.write(b, v1)
	c1 = f.commit(b)
	root := f.root(b)
	data := v1["web/random.bin"].Data
	changed := slices.Clone(data)
	copy(changed[len(changed)/2:], "a small change in a big file")
	f.fatalIf(os.WriteFile(filepath.Join(root, "web/random.bin"), changed, 0), "write")
	f.fatalIf(os.Remove(filepath.Join(root, "web/to-be-deleted.txt")), "remove")
	f.fatalIf(os.Chmod(filepath.Join(root, "db/run.sh"), 0o700), "chmod")
	f.write(b, Tree{"web/new.txt": File(0o644, "new in v2")})
	v2 = v1.Clone()
	v2["web/random.bin"] = Entry{Mode: 0o644, Data: changed}
	delete(v2, "web/to-be-deleted.txt")
	v2["db/run.sh"] = File(0o700, string(v1["db/run.sh"].Data))
	v2["web/new.txt"] = File(0o644, "new in v2")
	c2 = f.commit(b)
	full = f.send(c1, nil)
	incr = f.send(c2, &c1)
	f.t.Logf("stream sizes: full %d bytes, incremental %d bytes", len(full), len(incr))
	return
}

// assertCommitTree branches from c on f's backend and compares the tree.
func (f *fixture) assertCommitTree(c dotmesh.CommitRef, want Tree) {
	f.t.Helper()
	check := dotmesh.BranchRef{Dot: c.Dot, Branch: "check-" + string(c.ID[:8])}
	f.create(check, &c)
	f.assertTree(check, want)
}

var transferTests = []backendTest{
	{"SendReceive", func(f *fixture) {
		c1, c2, v1, v2, full, incr := transferSource(f)
		dst := f.another()
		f.fatalIf(dst.receive(c1, nil, full), "Receive full stream of %s", c1)
		dst.assertCommits(c1.BranchRef, c1)
		dst.assertCommitTree(c1, v1)
		f.fatalIf(dst.receive(c2, &c1, incr), "Receive incremental stream of %s from %s", c2, c1)
		dst.assertCommits(c2.BranchRef, c1, c2)
		dst.assertCommitTree(c2, v2)
		// Sending changed nothing on the sender.
		f.assertCommits(c1.BranchRef, c1, c2)
		f.assertTree(c1.BranchRef, v2)
	}},
	{"ReceiveCorrupt", func(f *fixture) {
		c1, c2, v1, v2, full, incr := transferSource(f)
		flip := func(b []byte) []byte {
			b = slices.Clone(b)
			b[len(b)/2] ^= 0x55
			return b
		}
		dst := f.another()
		err := dst.receive(c1, nil, flip(full))
		wantErr(f.t, "Receive of a full stream with a flipped byte", err, dotmesh.ErrCorrupt)
		dst.assertNoCommit(c1)
		f.fatalIf(dst.receive(c1, nil, full), "Receive of the intact stream after a corrupt one")
		dst.assertCommitTree(c1, v1)

		err = dst.receive(c2, &c1, flip(incr))
		wantErr(f.t, "Receive of an incremental stream with a flipped byte", err, dotmesh.ErrCorrupt)
		dst.assertNoCommit(c2)
		f.fatalIf(dst.receive(c2, &c1, incr), "Receive of the intact incremental stream after a corrupt one")
		dst.assertCommitTree(c2, v2)
	}},
	{"ReceiveTruncated", func(f *fixture) {
		c1, c2, v1, v2, full, incr := transferSource(f)
		dst := f.another()
		for _, n := range []int{0, len(full) / 2, len(full) - 1} {
			err := dst.receive(c1, nil, full[:n])
			wantErr(f.t, "Receive of a full stream cut to "+strconv.Itoa(n)+" of "+strconv.Itoa(len(full))+" bytes", err, dotmesh.ErrCorrupt)
			dst.assertNoCommit(c1)
		}
		f.fatalIf(dst.receive(c1, nil, full), "Receive of the whole stream after truncated ones")
		dst.assertCommitTree(c1, v1)
		for _, n := range []int{len(incr) / 2, len(incr) - 1} {
			err := dst.receive(c2, &c1, incr[:n])
			wantErr(f.t, "Receive of an incremental stream cut to "+strconv.Itoa(n)+" of "+strconv.Itoa(len(incr))+" bytes", err, dotmesh.ErrCorrupt)
			dst.assertNoCommit(c2)
		}
		f.fatalIf(dst.receive(c2, &c1, incr), "Receive of the whole incremental stream after truncated ones")
		dst.assertCommitTree(c2, v2)
	}},
	{"ReceiveWithoutBase", func(f *fixture) {
		c1, c2, _, _, _, incr := transferSource(f)
		dst := f.another()
		if err := dst.receive(c2, &c1, incr); err == nil {
			f.t.Error("Receive of an incremental stream whose base the receiver lacks succeeded")
		}
		dst.assertNoCommit(c2)
	}},
	{"ReceiveCanceled", func(f *fixture) {
		c1, _, _, _, full, _ := transferSource(f)
		dst := f.another()
		ctx, cancel := context.WithCancel(f.ctx)
		cancel()
		if err := dst.be.Receive(ctx, c1, nil, bytes.NewReader(full)); err == nil {
			f.t.Error("Receive with a canceled context succeeded")
		}
		dst.assertNoCommit(c1)
	}},
}

// ---- Errors ----

var errorTests = []backendTest{
	{"MissingBranch", func(f *fixture) {
		missing := newBranchRef()
		other := f.newBranch()
		f.write(other, Tree{"db": Dir(0o755), "db/f": File(0o644, "f")})
		otherCommit := f.commit(other)
		ctx := f.ctx
		_, err := f.be.SubdotPath(ctx, missing, "db")
		wantErr(f.t, "SubdotPath", err, dotmesh.ErrNotFound)
		_, err = f.be.SubdotPath(ctx, missing, dotmesh.RootSubdot)
		wantErr(f.t, "SubdotPath of the root", err, dotmesh.ErrNotFound)
		_, err = f.be.Subdots(ctx, missing)
		wantErr(f.t, "Subdots", err, dotmesh.ErrNotFound)
		_, err = f.be.Usage(ctx, missing, nil)
		wantErr(f.t, "Usage", err, dotmesh.ErrNotFound)
		_, err = f.be.Commit(ctx, newCommitRef(missing))
		wantErr(f.t, "Commit", err, dotmesh.ErrNotFound)
		_, err = f.be.Commits(ctx, missing)
		wantErr(f.t, "Commits", err, dotmesh.ErrNotFound)
		wantErr(f.t, "Rollback", f.be.Rollback(ctx, missing, otherCommit), dotmesh.ErrNotFound)
		from := newCommitRef(missing)
		wantErr(f.t, "CreateBranch from a commit on a missing branch", f.be.CreateBranch(ctx, newBranchRef(), &from), dotmesh.ErrNotFound)
		wantErr(f.t, "Send", f.be.Send(ctx, newCommitRef(missing), nil, io.Discard), dotmesh.ErrNotFound)
		if bs := f.branches(); len(bs) != 1 || bs[0] != other {
			f.t.Errorf("Branches = %v after operations on a missing branch; want only %s", bs, other)
		}
	}},
	{"MissingCommit", func(f *fixture) {
		b := f.newBranch()
		v1 := Tree{"db": Dir(0o755), "db/f": File(0o644, "f")}
		f.write(b, v1)
		c1 := f.commit(b)
		missing := newCommitRef(b)
		wantErr(f.t, "Rollback to a missing commit", f.be.Rollback(f.ctx, b, missing), dotmesh.ErrNotFound)
		f.assertTree(b, v1)
		wantErr(f.t, "Send of a missing commit", f.be.Send(f.ctx, missing, nil, io.Discard), dotmesh.ErrNotFound)
		wantErr(f.t, "Send with a missing base", f.be.Send(f.ctx, c1, &missing, io.Discard), dotmesh.ErrNotFound)
	}},
	{"InvalidRefs", func(f *fixture) {
		ctx := f.ctx
		good := f.newBranch()
		goodCommit := f.commit(good)
		stream := f.send(goodCommit, nil)
		badBranches := []dotmesh.BranchRef{
			{Dot: "nothex", Branch: "master"},
			{Dot: "..", Branch: "master"},
			{Dot: "../x", Branch: "master"},
			{Dot: "", Branch: "master"},
			{Dot: dotmesh.DotID(strings.ToUpper(string(dotmesh.NewDotID()))), Branch: "master"},
			{Dot: good.Dot, Branch: "../x"},
			{Dot: good.Dot, Branch: ".."},
			{Dot: good.Dot, Branch: "."},
			{Dot: good.Dot, Branch: ""},
			{Dot: good.Dot, Branch: "a/b"},
		}
		for _, b := range badBranches {
			what := func(op string) string { return op + "(" + strconv.Quote(b.String()) + ")" }
			c := dotmesh.CommitRef{BranchRef: b, ID: dotmesh.NewCommitID()}
			wantErr(f.t, what("CreateBranch"), f.be.CreateBranch(ctx, b, nil), dotmesh.ErrInvalidName)
			wantErr(f.t, what("CreateBranch from a good commit"), f.be.CreateBranch(ctx, b, &goodCommit), dotmesh.ErrInvalidName)
			wantErr(f.t, what("DeleteBranch"), f.be.DeleteBranch(ctx, b), dotmesh.ErrInvalidName)
			_, err := f.be.SubdotPath(ctx, b, dotmesh.RootSubdot)
			wantErr(f.t, what("SubdotPath"), err, dotmesh.ErrInvalidName)
			_, err = f.be.Subdots(ctx, b)
			wantErr(f.t, what("Subdots"), err, dotmesh.ErrInvalidName)
			_, err = f.be.Usage(ctx, b, nil)
			wantErr(f.t, what("Usage"), err, dotmesh.ErrInvalidName)
			_, err = f.be.Commit(ctx, c)
			wantErr(f.t, what("Commit"), err, dotmesh.ErrInvalidName)
			_, err = f.be.Commits(ctx, b)
			wantErr(f.t, what("Commits"), err, dotmesh.ErrInvalidName)
			wantErr(f.t, what("Rollback"), f.be.Rollback(ctx, b, goodCommit), dotmesh.ErrInvalidName)
			wantErr(f.t, what("Rollback to a commit on it"), f.be.Rollback(ctx, good, c), dotmesh.ErrInvalidName)
			wantErr(f.t, what("DeleteCommit"), f.be.DeleteCommit(ctx, c), dotmesh.ErrInvalidName)
			wantErr(f.t, what("Send"), f.be.Send(ctx, c, nil, io.Discard), dotmesh.ErrInvalidName)
			wantErr(f.t, what("Receive"), f.be.Receive(ctx, c, nil, bytes.NewReader(stream)), dotmesh.ErrInvalidName)
			if f.t.Failed() {
				break
			}
		}
		badIDs := []dotmesh.CommitID{"", "../x", "..", dotmesh.CommitID(strings.ToUpper(string(dotmesh.NewCommitID()))),
			dotmesh.NewCommitID()[:31], dotmesh.NewCommitID() + "0", "0123456789abcdef0123456789abcdeg"}
		for _, id := range badIDs {
			c := dotmesh.CommitRef{BranchRef: good, ID: id}
			what := func(op string) string { return op + "(commit id " + strconv.Quote(string(id)) + ")" }
			_, err := f.be.Commit(ctx, c)
			wantErr(f.t, what("Commit"), err, dotmesh.ErrInvalidName)
			wantErr(f.t, what("Rollback"), f.be.Rollback(ctx, good, c), dotmesh.ErrInvalidName)
			wantErr(f.t, what("DeleteCommit"), f.be.DeleteCommit(ctx, c), dotmesh.ErrInvalidName)
			wantErr(f.t, what("Send"), f.be.Send(ctx, c, nil, io.Discard), dotmesh.ErrInvalidName)
			wantErr(f.t, what("Send with it as base"), f.be.Send(ctx, goodCommit, &c, io.Discard), dotmesh.ErrInvalidName)
			wantErr(f.t, what("Receive"), f.be.Receive(ctx, c, nil, bytes.NewReader(stream)), dotmesh.ErrInvalidName)
			wantErr(f.t, what("Receive with it as base"), f.be.Receive(ctx, newCommitRef(good), &c, bytes.NewReader(stream)), dotmesh.ErrInvalidName)
			wantErr(f.t, what("CreateBranch from it"), f.be.CreateBranch(ctx, newBranchRef(), &c), dotmesh.ErrInvalidName)
			if f.t.Failed() {
				break
			}
		}
		// Nothing was made or broken.
		if bs := f.branches(); len(bs) != 1 || bs[0] != good {
			f.t.Errorf("Branches = %v after invalid calls; want only %s", bs, good)
		}
		f.assertCommits(good, goodCommit)
		f.assertTree(good, Tree{})
	}},
	{"InvalidSubdots", func(f *fixture) {
		b := f.newBranch()
		root := f.root(b)
		parent := filepath.Dir(root)
		before := dirNames(f.t, parent)
		for _, s := range []string{"", ".", "..", "../x", "a/b", "/abs", "_reserved", "__other__", "x y", "a.b", strings.Repeat("a", 65)} {
			p, err := f.be.SubdotPath(f.ctx, b, s)
			if !errors.Is(err, dotmesh.ErrInvalidName) {
				f.t.Errorf("SubdotPath(%q) = %q, %v; want an error wrapping ErrInvalidName", s, p, err)
			}
		}
		f.assertTree(b, Tree{})
		if after := dirNames(f.t, parent); !slices.Equal(before, after) {
			f.t.Errorf("invalid SubdotPath calls changed %s: %q -> %q", parent, before, after)
		}
	}},
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// ---- Concurrency ----

var concurrencyTests = []backendTest{
	{"ParallelCommits", func(f *fixture) {
		a := f.newBranch()
		a2 := dotmesh.BranchRef{Dot: a.Dot, Branch: "second"}
		f.create(a2, nil)
		b := f.newBranch()
		branches := []dotmesh.BranchRef{a, a2, b}
		trees := make([]Tree, len(branches))
		for i, br := range branches {
			trees[i] = Tree{"db": Dir(0o755), "db/data": RandomFile(0o644, 2<<20, uint64(100+i)), "db/name": File(0o644, br.String())}
			f.write(br, trees[i])
		}
		run := func(op func(i int, br dotmesh.BranchRef) error) {
			f.t.Helper()
			var wg sync.WaitGroup
			errs := make([]error, len(branches))
			start := make(chan struct{})
			for i, br := range branches {
				wg.Go(func() {
					<-start
					errs[i] = op(i, br)
				})
			}
			close(start)
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					f.t.Fatalf("on %s in parallel: %v", branches[i], err)
				}
			}
		}
		commits := make([]dotmesh.CommitRef, len(branches))
		run(func(i int, br dotmesh.BranchRef) error {
			commits[i] = newCommitRef(br)
			_, err := f.be.Commit(f.ctx, commits[i])
			return err
		})
		for i, br := range branches {
			f.assertCommits(br, commits[i])
			f.write(br, Tree{"db/data": File(0o644, "overwritten")})
		}
		run(func(i int, br dotmesh.BranchRef) error { return f.be.Rollback(f.ctx, br, commits[i]) })
		for i, br := range branches {
			f.assertTree(br, trees[i])
		}
		clones := make([]dotmesh.BranchRef, len(branches))
		run(func(i int, br dotmesh.BranchRef) error {
			clones[i] = dotmesh.BranchRef{Dot: br.Dot, Branch: "clone-" + br.Branch}
			return f.be.CreateBranch(f.ctx, clones[i], &commits[i])
		})
		for i := range branches {
			f.assertTree(clones[i], trees[i])
		}
	}},
}
