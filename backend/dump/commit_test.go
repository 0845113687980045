package dump

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func TestUnchangedFilesAreNotReadAgain(t *testing.T) {
	b := openTest(t)
	br := newBranch(t, b)
	tree := treeOf(t, b, br)
	for i := 0; i < 20; i++ {
		writeFile(t, filepath.Join(tree, "d", string(rune('a'+i))), randomBytes(int64(i), 100<<10), 0o644)
	}
	waitTick(t, tree)
	_, facts := commit(t, b, br)
	if got := fact(t, facts, "bytes_read"); got != 20*100<<10 {
		t.Fatalf("first commit read %d bytes", got)
	}
	_, facts = commit(t, b, br)
	if got := fact(t, facts, "bytes_read"); got != 0 {
		t.Fatalf("unchanged recommit read %d bytes", got)
	}

	// Rewrite one file with the same size and put its mtime back: the
	// ctime still gives it away.
	p := filepath.Join(tree, "d", "c")
	st, _ := os.Stat(p)
	writeFile(t, p, randomBytes(999, 100<<10), 0o644)
	os.Chtimes(p, st.ModTime(), st.ModTime())
	waitTick(t, tree)
	c3, facts := commit(t, b, br)
	if got := fact(t, facts, "bytes_read"); got != 100<<10 {
		t.Fatalf("commit after one sneaky rewrite read %d bytes, want %d", got, 100<<10)
	}
	want := digest(t, tree)
	writeFile(t, p, []byte("later"), 0o644)
	if err := b.Rollback(ctx, br, c3); err != nil {
		t.Fatal(err)
	}
	sameTree(t, want, digest(t, tree))
}

// A file modified in the same timestamp tick as the commit's start must
// not be trusted by the cache afterwards.
func TestRacilyCleanFilesAreReadAgain(t *testing.T) {
	b := openTest(t)
	br := newBranch(t, b)
	tree := treeOf(t, b, br)
	p := filepath.Join(tree, "f")
	writeFile(t, p, []byte("aaaa"), 0o644)
	entries := []Entry{{Path: "f", Type: TypeFile, CTime: 100, Inode: 5}}
	forgetRacy(entries, 100)
	if entries[0].Inode != 0 || entries[0].CTime != 0 {
		t.Fatal("entry with ctime == fs clock kept its cache data")
	}
	entries = []Entry{{Path: "f", Type: TypeFile, CTime: 99, Inode: 5}}
	forgetRacy(entries, 100)
	if entries[0].Inode != 5 {
		t.Fatal("older entry lost its cache data")
	}
}

func TestDedupFigures(t *testing.T) {
	b := openTest(t)
	br := newBranch(t, b)
	tree := treeOf(t, b, br)
	// A 20 MiB tree: one 16 MiB file and 64 small ones.
	const bigSize = 16 << 20
	writeFile(t, filepath.Join(tree, "data", "big"), randomBytes(1, bigSize), 0o644)
	for i := 0; i < 64; i++ {
		writeFile(t, filepath.Join(tree, "small", strconv.Itoa(i)), randomBytes(int64(100+i), 64<<10), 0o644)
	}
	const treeSize = bigSize + 64*64<<10
	waitTick(t, tree)
	_, facts := commit(t, b, br)
	first := fact(t, facts, "new_bytes_stored")
	if first < treeSize || first > treeSize*101/100 {
		t.Fatalf("first commit stored %d bytes of %d bytes of random data", first, treeSize)
	}

	_, facts = commit(t, b, br)
	if n := fact(t, facts, "new_bytes_stored"); n != 0 {
		t.Fatalf("unchanged recommit stored %d bytes (%v)", n, facts)
	}
	if n := fact(t, facts, "new_chunks"); n != 0 {
		t.Fatalf("unchanged recommit stored %d objects", n)
	}

	// Overwrite 1% of the big file in the middle.
	f, err := os.OpenFile(filepath.Join(tree, "data", "big"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt(randomBytes(77, bigSize/100), bigSize/2)
	f.Close()
	waitTick(t, tree)
	_, facts = commit(t, b, br)
	n := fact(t, facts, "new_bytes_stored")
	t.Logf("1%% change of a %d-byte file stored %d bytes", bigSize, n)
	if n > bigSize/5 {
		t.Fatalf("a 1%% change stored %d bytes of a %d-byte file", n, bigSize)
	}

	// The same content under another name (another subdot) is free.
	data, _ := os.ReadFile(filepath.Join(tree, "data", "big"))
	writeFile(t, filepath.Join(tree, "copy", "big"), data, 0o644)
	_, facts = commit(t, b, br)
	if n := fact(t, facts, "new_bytes_stored"); n > 64<<10 {
		t.Fatalf("a copy of a stored file stored %d bytes", n)
	}
}

func TestCommitErrors(t *testing.T) {
	b := openTest(t)
	br := newBranch(t, b)
	c, _ := commit(t, b, br)
	if _, err := b.Commit(ctx, c); !errors.Is(err, dotmesh.ErrAlreadyExists) {
		t.Fatalf("recommit of the same id: %v", err)
	}
	missing := dotmesh.CommitRef{BranchRef: dotmesh.BranchRef{Dot: br.Dot, Branch: "nope"}, ID: dotmesh.NewCommitID()}
	if _, err := b.Commit(ctx, missing); !errors.Is(err, dotmesh.ErrNotFound) {
		t.Fatalf("commit on a missing branch: %v", err)
	}
	if err := b.Rollback(ctx, br, missing); !errors.Is(err, dotmesh.ErrNotFound) {
		t.Fatalf("rollback to a missing commit: %v", err)
	}
	bad := dotmesh.CommitRef{BranchRef: dotmesh.BranchRef{Dot: br.Dot, Branch: "../x"}, ID: c.ID}
	if _, err := b.Commit(ctx, bad); !errors.Is(err, dotmesh.ErrInvalidName) {
		t.Fatalf("commit with a bad branch name: %v", err)
	}
	ids, err := b.Commits(ctx, br)
	if err != nil || len(ids) != 1 || ids[0] != c.ID {
		t.Fatalf("Commits = %v, %v", ids, err)
	}
	if err := b.DeleteCommit(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteCommit(ctx, c); err != nil {
		t.Fatalf("deleting a missing commit: %v", err)
	}
	if ids, _ := b.Commits(ctx, br); len(ids) != 0 {
		t.Fatalf("deleted commit still listed: %v", ids)
	}
}

func TestSubdotPaths(t *testing.T) {
	b := openTest(t)
	br := newBranch(t, b)
	root := treeOf(t, b, br)
	p, err := b.SubdotPath(ctx, br, "db")
	if err != nil || p != filepath.Join(root, "db") {
		t.Fatalf("SubdotPath = %q, %v", p, err)
	}
	if st, err := os.Stat(p); err != nil || !st.IsDir() || st.Mode().Perm() != 0o755 {
		t.Fatalf("subdot dir: %v %v", st, err)
	}
	for _, bad := range []string{"../x", "a/b", "_private", "", ".", "x y"} {
		if _, err := b.SubdotPath(ctx, br, bad); !errors.Is(err, dotmesh.ErrInvalidName) {
			t.Errorf("SubdotPath(%q): %v", bad, err)
		}
	}
	os.Symlink("/etc", filepath.Join(root, "evil"))
	if _, err := b.SubdotPath(ctx, br, "evil"); err == nil {
		t.Error("a symlinked subdot was handed out")
	}
	b.SubdotPath(ctx, br, dotmesh.DefaultSubdot)
	subs, err := b.Subdots(ctx, br)
	if err != nil || len(subs) != 2 || subs[0] != "__default__" || subs[1] != "db" {
		t.Fatalf("Subdots = %v, %v", subs, err)
	}
	if _, err := b.SubdotPath(ctx, dotmesh.BranchRef{Dot: br.Dot, Branch: "nope"}, "db"); !errors.Is(err, dotmesh.ErrNotFound) {
		t.Fatalf("SubdotPath of a missing branch: %v", err)
	}
}

func TestUsage(t *testing.T) {
	b := openTest(t)
	br := newBranch(t, b)
	tree := treeOf(t, b, br)
	usage := func(head *dotmesh.CommitRef) dotmesh.Usage {
		t.Helper()
		u, err := b.Usage(ctx, br, head)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	if u := usage(nil); u.Dirty || u.Size != 0 {
		t.Fatalf("empty branch: %+v", u)
	}
	b.SubdotPath(ctx, br, "db")
	if u := usage(nil); u.Dirty {
		t.Fatalf("empty subdot dir makes a new branch dirty: %+v", u)
	}
	writeFile(t, filepath.Join(tree, "db", "f"), make([]byte, 1000), 0o644)
	writeFile(t, filepath.Join(tree, "db", "g"), make([]byte, 500), 0o644)
	if u := usage(nil); !u.Dirty || u.Size != 1500 || u.DirtyBytes != 1500 {
		t.Fatalf("new branch with files: %+v", u)
	}
	waitTick(t, tree)
	c, _ := commit(t, b, br)
	if u := usage(&c); u.Dirty || u.DirtyBytes != 0 || u.Size != 1500 {
		t.Fatalf("just committed: %+v", u)
	}
	writeFile(t, filepath.Join(tree, "db", "f"), make([]byte, 1200), 0o644)
	if u := usage(&c); !u.Dirty || u.DirtyBytes != 1200 {
		t.Fatalf("changed file: %+v", u)
	}
	os.Remove(filepath.Join(tree, "db", "g"))
	if u := usage(&c); !u.Dirty || u.DirtyBytes != 1700 {
		t.Fatalf("changed and deleted: %+v", u)
	}
	if err := b.Rollback(ctx, br, c); err != nil {
		t.Fatal(err)
	}
	if u := usage(&c); u.Dirty {
		t.Fatalf("after rollback: %+v", u)
	}
	os.Chmod(filepath.Join(tree, "db", "g"), 0o600)
	if u := usage(&c); !u.Dirty || u.DirtyBytes != 0 {
		t.Fatalf("mode change: %+v", u)
	}
	b.Rollback(ctx, br, c)
	os.Symlink("x", filepath.Join(tree, "l"))
	if u := usage(&c); !u.Dirty {
		t.Fatalf("new symlink: %+v", u)
	}
	b.Rollback(ctx, br, c)
	os.Mkdir(filepath.Join(tree, "newdir"), 0o755)
	if u := usage(&c); !u.Dirty {
		t.Fatalf("new directory: %+v", u)
	}

	// Against an older head, with the tree synced to a newer commit.
	b.Rollback(ctx, br, c)
	writeFile(t, filepath.Join(tree, "db", "h"), make([]byte, 300), 0o644)
	c2, _ := commit(t, b, br)
	if u := usage(&c2); u.Dirty {
		t.Fatalf("clean against the new head: %+v", u)
	}
	if u := usage(&c); !u.Dirty || u.DirtyBytes != 300 {
		t.Fatalf("against the older head: %+v", u)
	}
}

func TestDeleteBranch(t *testing.T) {
	b := openTest(t)
	br := newBranch(t, b)
	writeFile(t, filepath.Join(treeOf(t, b, br), "x", "f"), []byte("data"), 0o644)
	os.Chmod(filepath.Join(treeOf(t, b, br), "x"), 0o555)
	commit(t, b, br)
	if err := b.DeleteBranch(ctx, br); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteBranch(ctx, br); err != nil {
		t.Fatalf("deleting a missing branch: %v", err)
	}
	brs, _ := b.Branches(ctx)
	if len(brs) != 0 {
		t.Fatalf("Branches = %v", brs)
	}
	if ids, _ := b.Commits(ctx, br); len(ids) != 0 {
		t.Fatalf("commits survive their branch: %v", ids)
	}
	if err := b.CreateBranch(ctx, br, nil); err != nil {
		t.Fatalf("recreate: %v", err)
	}
	if ents, _ := os.ReadDir(treeOf(t, b, br)); len(ents) != 0 {
		t.Fatal("recreated branch is not empty")
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	b, err := Open(dir, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{Logger: testLogger(t)}); !errors.Is(err, dotmesh.ErrInUse) {
		t.Fatalf("second Open of a directory in use: %v", err)
	}
	br := newBranch(t, b)
	writeFile(t, filepath.Join(treeOf(t, b, br), "f"), []byte("persist"), 0o644)
	c, _ := commit(t, b, br)
	want := digest(t, treeOf(t, b, br))
	b.Close()
	if _, err := b.Commits(ctx, br); !errors.Is(err, dotmesh.ErrUnavailable) {
		t.Fatalf("use after Close: %v", err)
	}

	b2, err := Open(dir, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	ids, _ := b2.Commits(ctx, br)
	if len(ids) != 1 || ids[0] != c.ID {
		t.Fatalf("commits after reopen: %v", ids)
	}
	writeFile(t, filepath.Join(treeOf(t, b2, br), "f"), []byte("other"), 0o644)
	if err := b2.Rollback(ctx, br, c); err != nil {
		t.Fatal(err)
	}
	sameTree(t, want, digest(t, treeOf(t, b2, br)))
}
