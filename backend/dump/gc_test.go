package dump

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/dump/cas"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func objectSet(t *testing.T, b *Guarded) map[cas.Hash]bool {
	t.Helper()
	set := map[cas.Hash]bool{}
	if err := b.b.store.List(func(h cas.Hash, _ int64) error { set[h] = true; return nil }); err != nil {
		t.Fatal(err)
	}
	return set
}

// commitManifest is commit c's manifest.
func commitManifest(t *testing.T, b *Guarded, c dotmesh.CommitRef) *storedManifest {
	t.Helper()
	_, root, err := b.b.readRecord(c)
	if err != nil {
		t.Fatal(err)
	}
	sm, err := loadManifest(b.b.store, root)
	if err != nil {
		t.Fatal(err)
	}
	return sm
}

func commitObjects(t *testing.T, b *Guarded, c dotmesh.CommitRef) map[cas.Hash]bool {
	t.Helper()
	sm := commitManifest(t, b, c)
	set := map[cas.Hash]bool{}
	sm.objects(func(h cas.Hash) error { set[h] = true; return nil })
	return set
}

func TestGarbageCollection(t *testing.T) {
	b := openTest(t)
	br := newBranch(t, b)
	tree := treeOf(t, b, br)
	writeFile(t, filepath.Join(tree, "keep"), randomBytes(1, 2<<20), 0o644)
	writeFile(t, filepath.Join(tree, "old"), randomBytes(2, 2<<20), 0o644)
	c1, _ := commit(t, b, br)
	os.Remove(filepath.Join(tree, "old"))
	writeFile(t, filepath.Join(tree, "new"), randomBytes(3, 1<<20), 0o644)
	c2, _ := commit(t, b, br)
	want := digest(t, tree)

	// Nothing is garbage while both commits exist.
	if st, err := b.CollectGarbage(ctx); err != nil || st.ObjectsRemoved != 0 {
		t.Fatalf("GC with everything referenced: %+v %v", st, err)
	}
	only1 := commitObjects(t, b, c1)
	keep := commitObjects(t, b, c2)
	for h := range keep {
		delete(only1, h)
	}
	if err := b.DeleteCommit(ctx, c1); err != nil {
		t.Fatal(err)
	}
	st, err := b.CollectGarbage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.ObjectsRemoved != int64(len(only1)) || st.BytesRemoved < 2<<20 {
		t.Fatalf("GC removed %+v, want the %d objects only c1 used", st, len(only1))
	}
	left := objectSet(t, b)
	for h := range keep {
		if !left[h] {
			t.Fatalf("GC removed object %s of a live commit", h)
		}
	}
	if err := b.Check(ctx); err != nil {
		t.Fatalf("Check after GC: %v", err)
	}
	writeFile(t, filepath.Join(tree, "keep"), []byte("x"), 0o644)
	if err := b.Rollback(ctx, br, c2); err != nil {
		t.Fatal(err)
	}
	sameTree(t, want, digest(t, tree))

	// The working tree's synced manifest is a root too: with every commit
	// gone, an unchanged file's chunks must survive for the cache to reuse.
	b.DeleteCommit(ctx, c2)
	if _, err := b.CollectGarbage(ctx); err != nil {
		t.Fatal(err)
	}
	c3, _ := commit(t, b, br)
	writeFile(t, filepath.Join(tree, "keep"), []byte("x"), 0o644)
	if err := b.Rollback(ctx, br, c3); err != nil {
		t.Fatalf("rollback to a commit made from cached chunk lists after GC: %v", err)
	}
	sameTree(t, want, digest(t, tree))

	// Deleting the branch makes everything garbage.
	b.DeleteBranch(ctx, br)
	if _, err := b.CollectGarbage(ctx); err != nil {
		t.Fatal(err)
	}
	if left := objectSet(t, b); len(left) != 0 {
		t.Fatalf("%d objects left with no branch", len(left))
	}
}

// GC running while commits happen must never remove an object a commit
// relies on.
func TestGarbageCollectionDuringCommits(t *testing.T) {
	b := openTest(t)
	var brs []dotmesh.BranchRef
	for i := 0; i < 3; i++ {
		br := newBranch(t, b)
		writeFile(t, filepath.Join(treeOf(t, b, br), "shared"), randomBytes(5, 1<<20), 0o644)
		brs = append(brs, br)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var commits []dotmesh.CommitRef
	for i, br := range brs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tree := treeOf(t, b, br)
			for j := 0; j < 5; j++ {
				writeFile(t, filepath.Join(tree, "f"), randomBytes(int64(100*i+j), 300<<10), 0o644)
				c := dotmesh.CommitRef{BranchRef: br, ID: dotmesh.NewCommitID()}
				if _, err := b.Commit(ctx, c); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				commits = append(commits, c)
				mu.Unlock()
				if j%2 == 0 {
					b.DeleteCommit(ctx, c) // some garbage for the collector
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for k := 0; k < 10; k++ {
			if _, err := b.CollectGarbage(ctx); err != nil {
				t.Error(err)
			}
		}
	}()
	wg.Wait()
	if err := b.Check(ctx); err != nil {
		t.Fatalf("store damaged by concurrent GC: %v", err)
	}
	for _, c := range commits {
		if _, _, err := b.b.readRecord(c); err != nil {
			continue // deleted on purpose
		}
		nb := dotmesh.BranchRef{Dot: c.Dot, Branch: "check-" + string(c.ID[:8])}
		if err := b.CreateBranch(ctx, nb, &c); err != nil {
			t.Fatalf("restore %s: %v", c, err)
		}
	}
}

func TestCheckFindsCorruption(t *testing.T) {
	b := openTest(t)
	br := newBranch(t, b)
	writeFile(t, filepath.Join(treeOf(t, b, br), "f"), randomBytes(1, 1<<20), 0o644)
	c, _ := commit(t, b, br)
	if err := b.Check(ctx); err != nil {
		t.Fatalf("Check of a healthy store: %v", err)
	}
	var victim cas.Hash
	for h := range commitObjects(t, b, c) {
		victim = h
		break
	}
	p, off, n, err := b.b.store.Location(victim)
	if err != nil {
		t.Fatal(err)
	}
	flipByte(t, p, off+int64(n)-1)
	err = b.Check(ctx)
	if !errors.Is(err, dotmesh.ErrCorrupt) {
		t.Fatalf("Check missed a flipped bit: %v", err)
	}
	if !strings.Contains(err.Error(), victim.String()) {
		t.Fatalf("Check does not name the damaged object: %v", err)
	}
	// GC refuses to work from a damaged commit rather than guess.
	if _, err := b.CollectGarbage(ctx); err == nil {
		// Only a damaged manifest object stops GC; a damaged file chunk
		// does not change what is reachable.
		t.Log("GC ran: the damaged object was a file chunk")
	}
	// Missing objects are reported too.
	os.Remove(p)
	if err := b.Check(ctx); !errors.Is(err, dotmesh.ErrCorrupt) {
		t.Fatalf("Check missed a missing object: %v", err)
	}
}
