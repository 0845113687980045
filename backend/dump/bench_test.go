package dump

import (
	"path/filepath"
	"testing"
)

// BenchmarkCommitUnchanged is a commit that stores nothing (the tree is
// as committed), so mostly the work of every call: the guard, the branch
// lock, the scan and the record.
func BenchmarkCommitUnchanged(b *testing.B) {
	be := openTest(b)
	br := newBranch(b, be)
	writeFile(b, filepath.Join(treeOf(b, be, br), "f"), []byte("x"), 0o644)
	for b.Loop() {
		commit(b, be, br)
	}
}

// BenchmarkCommits lists a branch's commits: a call that does little
// storage work, to show what each call costs besides.
func BenchmarkCommits(b *testing.B) {
	be := openTest(b)
	br := newBranch(b, be)
	commit(b, be, br)
	for b.Loop() {
		if _, err := be.Commits(ctx, br); err != nil {
			b.Fatal(err)
		}
	}
}
