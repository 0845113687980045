package dump

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
	"golang.org/x/sys/unix"
)

// buildRichTree makes a tree with everything a manifest records.
func buildRichTree(t *testing.T, tree string) {
	t.Helper()
	writeFile(t, filepath.Join(tree, "__default__", "big"), randomBytes(1, 5<<20+123), 0o644)
	writeFile(t, filepath.Join(tree, "__default__", "small"), []byte("hello\n"), 0o600)
	writeFile(t, filepath.Join(tree, "__default__", "empty"), nil, 0o640)
	writeFile(t, filepath.Join(tree, "__default__", "exec"), []byte("#!/bin/sh\n"), 0o755)
	writeFile(t, filepath.Join(tree, "db", "deep", "er", "est", "file"), randomBytes(2, 300<<10), 0o644)
	writeFile(t, filepath.Join(tree, "db", "dup1"), randomBytes(3, 1<<20), 0o644)
	writeFile(t, filepath.Join(tree, "db", "dup2"), randomBytes(3, 1<<20), 0o644)
	for _, d := range []string{"emptydir", "db/emptysub", "private"} {
		if err := os.MkdirAll(filepath.Join(tree, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(tree, "private", "secret"), []byte("s"), 0o400)
	os.Chmod(filepath.Join(tree, "private"), 0o700)
	os.Mkdir(filepath.Join(tree, "readonly"), 0o755)
	writeFile(t, filepath.Join(tree, "readonly", "f"), []byte("ro"), 0o444)
	os.Symlink("small", filepath.Join(tree, "__default__", "rel-link"))
	os.Symlink("/etc/passwd", filepath.Join(tree, "abs-link"))
	os.Symlink("does/not/exist", filepath.Join(tree, "dangling"))
	os.Symlink("db", filepath.Join(tree, "dir-link"))
	// Distinct mtimes, with nanoseconds, on files, symlinks and dirs.
	base := time.Date(2020, 1, 2, 3, 4, 5, 678901234, time.UTC).UnixNano()
	i := int64(0)
	filepath.Walk(tree, func(p string, info os.FileInfo, err error) error {
		if p == tree || err != nil {
			return err
		}
		i++
		ts := []unix.Timespec{unix.NsecToTimespec(base + i*1001), unix.NsecToTimespec(base + i*1000003)}
		return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
	})
	// Directory mtimes last, deepest first, as they move when touched.
	os.Chmod(filepath.Join(tree, "readonly"), 0o555)
	setMTime(filepath.Join(tree, "readonly"), base-1)
}

// scramble changes the tree in every way a restore must undo.
func scramble(t *testing.T, tree string) {
	t.Helper()
	os.Chmod(filepath.Join(tree, "readonly"), 0o755)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// content change, same size
	f, err := os.OpenFile(filepath.Join(tree, "__default__", "big"), os.O_WRONLY, 0)
	must(err)
	f.WriteAt([]byte("CHANGED"), 3<<20)
	f.Close()
	must(os.Remove(filepath.Join(tree, "__default__", "small")))                          // deleted
	writeFile(t, filepath.Join(tree, "__default__", "new"), []byte("added"), 0o644)       // added
	must(os.Chmod(filepath.Join(tree, "__default__", "exec"), 0o600))                     // mode
	must(os.RemoveAll(filepath.Join(tree, "emptydir")))                                   // dir deleted
	writeFile(t, filepath.Join(tree, "emptydir"), []byte("now a file"), 0o644)            // dir -> file
	must(os.Remove(filepath.Join(tree, "db", "dup1")))                                    // file -> dir
	writeFile(t, filepath.Join(tree, "db", "dup1", "inner"), []byte("x"), 0o644)          //
	must(os.Remove(filepath.Join(tree, "abs-link")))                                      // symlink retarget
	must(os.Symlink("/elsewhere", filepath.Join(tree, "abs-link")))                       //
	must(os.Remove(filepath.Join(tree, "dangling")))                                      // symlink -> file
	writeFile(t, filepath.Join(tree, "dangling"), []byte("file"), 0o644)                  //
	must(os.RemoveAll(filepath.Join(tree, "db", "deep")))                                 // subtree gone
	writeFile(t, filepath.Join(tree, "extra", "tree", "of", "files"), []byte("x"), 0o644) // subtree added
	must(unix.Mkfifo(filepath.Join(tree, "fifo"), 0o644))                                 // special file
	must(os.Chtimes(filepath.Join(tree, "db", "dup2"), time.Now(), time.Unix(12345, 0)))  // mtime only
	writeFile(t, filepath.Join(tree, "readonly", "intruder"), []byte("x"), 0o644)         // in a r/o dir
	must(os.Chmod(filepath.Join(tree, "private"), 0o755))                                 // dir mode
	writeFile(t, filepath.Join(tree, ".dmtmp-leftover"), []byte("crash debris"), 0o644)   // debris
}

func TestRollbackRestoresExactly(t *testing.T) {
	b := openTest(t)
	br := newBranch(t, b)
	tree := treeOf(t, b, br)
	buildRichTree(t, tree)
	want := digest(t, tree)
	c, _ := commit(t, b, br)
	if got := digest(t, tree); len(got) != len(want) {
		t.Fatal("commit changed the tree")
	}

	scramble(t, tree)
	if err := b.Rollback(ctx, br, c); err != nil {
		t.Fatal(err)
	}
	sameTree(t, want, digest(t, tree))

	// A second rollback of an intact tree writes nothing and keeps it.
	if err := b.Rollback(ctx, br, c); err != nil {
		t.Fatal(err)
	}
	sameTree(t, want, digest(t, tree))

	// Scramble without the change cache (as after a lost synced file).
	scramble(t, tree)
	os.Remove(b.b.syncedPath(br))
	if err := b.Rollback(ctx, br, c); err != nil {
		t.Fatal(err)
	}
	sameTree(t, want, digest(t, tree))
}

func TestCreateBranchFromCommit(t *testing.T) {
	b := openTest(t)
	br := newBranch(t, b)
	tree := treeOf(t, b, br)
	buildRichTree(t, tree)
	want := digest(t, tree)
	c, _ := commit(t, b, br)
	scramble(t, tree) // the origin moves on; the new branch must not care

	nb := dotmesh.BranchRef{Dot: br.Dot, Branch: "feature"}
	if err := b.CreateBranch(ctx, nb, &c); err != nil {
		t.Fatal(err)
	}
	sameTree(t, want, digest(t, treeOf(t, b, nb)))
	if err := b.CreateBranch(ctx, nb, &c); err == nil {
		t.Fatal("creating an existing branch succeeded")
	}

	// The new branch is independent and committable; its unchanged
	// files are not read again (synced from the restore).
	waitTick(t, b.b.branchDir(nb))
	before := b.b.bytesRead.Load()
	_, facts := commit(t, b, nb)
	if read := b.b.bytesRead.Load() - before; read != 0 {
		t.Fatalf("commit right after CreateBranch read %d bytes", read)
	}
	if n := fact(t, facts, "new_bytes_stored"); n != 0 {
		t.Fatalf("commit of an unchanged restored tree stored %d bytes", n)
	}
	u, err := b.Usage(ctx, nb, &c)
	if err != nil || u.Dirty {
		t.Fatalf("fresh branch dirty against its origin: %+v %v", u, err)
	}
}

func TestRollbackAcrossCommits(t *testing.T) {
	b := openTest(t)
	br := newBranch(t, b)
	tree := treeOf(t, b, br)
	var commits []dotmesh.CommitRef
	var digests [][]string
	for i := 0; i < 4; i++ {
		writeFile(t, filepath.Join(tree, "f"), randomBytes(int64(i), 1<<20), 0o644)
		writeFile(t, filepath.Join(tree, "gen", "g"+string(rune('0'+i))), []byte{byte(i)}, 0o644)
		c, _ := commit(t, b, br)
		commits = append(commits, c)
		digests = append(digests, digest(t, tree))
	}
	for _, i := range []int{0, 3, 1, 2, 0} {
		if err := b.Rollback(ctx, br, commits[i]); err != nil {
			t.Fatal(err)
		}
		sameTree(t, digests[i], digest(t, tree))
	}
}

// A rollback between commits that differ in a few chunks of big files
// patches those files in place (same inode, only the changed chunks
// written), grows and shrinks them, and leaves hard-linked files, whose
// other names a patch would change too, to be written whole.
func TestRollbackPatchesInPlace(t *testing.T) {
	b := openTest(t)
	br := newBranch(t, b)
	tree := treeOf(t, b, br)
	big := randomBytes(7, 8<<20)
	writeFile(t, filepath.Join(tree, "big"), big, 0o644)
	writeFile(t, filepath.Join(tree, "grow"), big[:3<<20], 0o644)
	writeFile(t, filepath.Join(tree, "shrink"), big[:6<<20], 0o600)
	writeFile(t, filepath.Join(tree, "linked"), big[:4<<20], 0o644)
	c1, _ := commit(t, b, br)
	want1 := digest(t, tree)

	overwrite := func(name string, off int64, data []byte) {
		t.Helper()
		f, err := os.OpenFile(filepath.Join(tree, name), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(data, off); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	overwrite("big", 5<<20+77, randomBytes(8, 100<<10))
	overwrite("grow", 3<<20, randomBytes(9, 2<<20))
	if err := os.Truncate(filepath.Join(tree, "shrink"), 5<<20); err != nil {
		t.Fatal(err)
	}
	overwrite("linked", 1<<20, randomBytes(10, 64<<10))
	c2, _ := commit(t, b, br)
	want2 := digest(t, tree)

	inode := func(name string) uint64 {
		t.Helper()
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(tree, name), &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	// Back to c1: the synced manifest (of c2) vouches for every file.
	waitTick(t, tree)
	if err := os.Link(filepath.Join(tree, "linked"), filepath.Join(b.b.dir, "tmp", "other-name")); err != nil {
		t.Fatal(err)
	}
	before := map[string]uint64{}
	for _, n := range []string{"big", "grow", "shrink", "linked"} {
		before[n] = inode(n)
	}
	if err := b.Rollback(ctx, br, c1); err != nil {
		t.Fatal(err)
	}
	sameTree(t, want1, digest(t, tree))
	for _, n := range []string{"big", "grow", "shrink"} {
		if inode(n) != before[n] {
			t.Errorf("%s was rewritten, not patched in place", n)
		}
	}
	if inode("linked") == before["linked"] {
		t.Error("a hard-linked file was patched in place")
	}
	if got, err := os.ReadFile(filepath.Join(b.b.dir, "tmp", "other-name")); err != nil || !bytes.Equal(got, want2Linked(big)) {
		t.Errorf("the other name of a hard-linked file changed (%v)", err)
	}
	u, err := b.Usage(ctx, br, &c1)
	if err != nil || u.Dirty {
		t.Fatalf("tree dirty right after the rollback: %+v %v", u, err)
	}
	// And forth to c2, then a commit reads nothing (the cache is whole).
	if err := b.Rollback(ctx, br, c2); err != nil {
		t.Fatal(err)
	}
	sameTree(t, want2, digest(t, tree))
	waitTick(t, b.b.branchDir(br))
	readBefore := b.b.bytesRead.Load()
	if _, facts := commit(t, b, br); fact(t, facts, "new_bytes_stored") != 0 || b.b.bytesRead.Load() != readBefore {
		t.Fatalf("commit after a patching rollback stored %s bytes, read %d", facts["new_bytes_stored"], b.b.bytesRead.Load()-readBefore)
	}
}

// want2Linked is "linked" as committed in c2.
func want2Linked(big []byte) []byte {
	out := append([]byte(nil), big[:4<<20]...)
	copy(out[1<<20:], randomBytes(10, 64<<10))
	return out
}
