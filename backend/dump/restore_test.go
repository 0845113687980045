package dump

import (
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
	os.Remove(b.syncedPath(br))
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
	waitTick(t, b.branchDir(nb))
	before := b.bytesRead.Load()
	_, facts := commit(t, b, nb)
	if read := b.bytesRead.Load() - before; read != 0 {
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
