package cas

import (
	"math/rand"
	"os"
	"path/filepath"
	"testing"
)

// punchingStore opens a store in dir, which must punch holes.
func punchingStore(t *testing.T, dir string) *Store {
	t.Helper()
	s := openStore(t, dir)
	if !s.canPunch() {
		t.Fatal("the test directory's file system does not punch holes (fallocate PUNCH_HOLE); run the tests on ext4, xfs, btrfs or tmpfs")
	}
	return s
}

// bigPack commits n random objects of size bytes each in one pack.
func bigPack(t *testing.T, s *Store, n, size int, seed int64) []Hash {
	t.Helper()
	rng := rand.New(rand.NewSource(seed))
	b, err := s.NewBatch()
	if err != nil {
		t.Fatal(err)
	}
	var hs []Hash
	for i := 0; i < n; i++ {
		data := make([]byte, size)
		rng.Read(data)
		h, _, err := b.Put(data)
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	return hs
}

// allocatedPacks sums the bytes the pack files hold on disk.
func allocatedPacks(t *testing.T, s *Store) int64 {
	t.Helper()
	var total int64
	ents, _ := os.ReadDir(filepath.Join(s.Dir(), packsDir))
	for _, e := range ents {
		n, _, err := allocated(filepath.Join(s.Dir(), packsDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	return total
}

// A large pack with garbage loses it in place: the pack stays, its dead
// objects are gone (also after a reopen), the disk holds their bytes no
// more, and a plan right after finds nothing.
func TestPrunePunchesLargePack(t *testing.T) {
	dir := t.TempDir()
	s := punchingStore(t, dir)
	hs := bigPack(t, s, 40, 256<<10, 1)
	dead := map[Hash]bool{}
	for i, h := range hs {
		if i%3 == 1 {
			dead[h] = true
		}
	}
	keep := func(h Hash) bool { return !dead[h] }
	path, _, _, _ := s.Location(hs[0])
	before := allocatedPacks(t, s)
	plan := s.PlanPrune(keep)
	st, err := s.Prune(keep)
	if err != nil {
		t.Fatal(err)
	}
	after := allocatedPacks(t, s)
	if st.Objects != int64(len(dead)) || st.Bytes < int64(len(dead))*(256<<10-8192) {
		t.Fatalf("prune: %+v, want %d objects of 256 KiB", st, len(dead))
	}
	if d := before - after - st.Bytes; d < -8192 || d > 8192 {
		t.Fatalf("prune says %d bytes freed, the disk %d", st.Bytes, before-after)
	}
	if plan.Objects != st.Objects || plan.Bytes < st.Bytes-16384 || plan.Bytes > st.Bytes+16384 {
		t.Fatalf("plan %+v, prune did %+v", plan, st)
	}
	if p2, _, _, _ := s.Location(hs[0]); p2 != path {
		t.Fatalf("the pack was rewritten (%s, was %s), not punched", p2, path)
	}
	if again := s.PlanPrune(keep); again != (PruneStats{}) {
		t.Fatalf("a plan right after Prune finds %+v", again)
	}
	check := func(s *Store) {
		t.Helper()
		for _, h := range hs {
			ok, _ := s.Has(h)
			if ok == dead[h] {
				t.Fatalf("object %s: present %v, dead %v", h.Short(), ok, dead[h])
			}
			if !dead[h] {
				if _, err := s.Get(h, nil); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	check(s)
	s.Close()
	s2 := openStore(t, dir)
	check(s2)
	if again := s2.PlanPrune(keep); again != (PruneStats{}) {
		t.Fatalf("a plan after a reopen finds %+v", again)
	}
}

// Bytes no index names in a large pack (taken back while staged, or
// garbage whose holes a crash lost) are found by their allocated blocks
// and punched.
func TestPrunePunchesUnindexedBytes(t *testing.T) {
	s := punchingStore(t, t.TempDir())
	rng := rand.New(rand.NewSource(2))
	b, _ := s.NewBatch()
	var hs []Hash
	for i := 0; i < 30; i++ {
		data := make([]byte, 256<<10)
		rng.Read(data)
		h, _, err := b.Put(data)
		if err != nil {
			t.Fatal(err)
		}
		if i == 10 || i == 20 {
			if err := b.Unstage(h, len(data), len(s.Compress(data, nil))); err != nil {
				t.Fatal(err)
			}
			continue
		}
		hs = append(hs, h)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	all := func(Hash) bool { return true }
	st, err := s.Prune(all)
	if err != nil || st.Objects != 0 || st.Bytes < 2*(256<<10-8192) {
		t.Fatalf("prune: %+v %v, want two objects' bytes freed", st, err)
	}
	if again := s.PlanPrune(all); again != (PruneStats{}) {
		t.Fatalf("a plan right after Prune finds %+v", again)
	}
	for _, h := range hs {
		if _, err := s.Get(h, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// A damaged index of a punched pack is rebuilt past the holes.
func TestRescanPunchedPack(t *testing.T) {
	dir := t.TempDir()
	s := punchingStore(t, dir)
	hs := bigPack(t, s, 30, 200<<10, 3)
	dead := map[Hash]bool{hs[0]: true, hs[7]: true, hs[8]: true, hs[29]: true}
	if _, err := s.Prune(func(h Hash) bool { return !dead[h] }); err != nil {
		t.Fatal(err)
	}
	path, _, _, _ := s.Location(hs[1])
	s.Close()
	idx := path[:len(path)-len(".pack")] + ".idx"
	flip(t, idx, 20)
	s2 := openStore(t, dir)
	for _, h := range hs {
		if dead[h] {
			continue
		}
		if _, err := s2.Get(h, nil); err != nil {
			t.Fatalf("object %s after the rebuild: %v", h.Short(), err)
		}
	}
}

// A batch over packTarget writes several packs; every object reads back
// from the batch, the store, and after a reopen, and a pack whose objects
// all die goes whole.
func TestBatchBoundedPacks(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	hs := bigPack(t, s, packTarget/(4<<20)+8, 4<<20, 4)
	n, _ := packFiles(t, s)
	if n < 4 {
		t.Fatalf("%d pack files for %d MiB, want at least two packs with their indexes", n, len(hs)*4)
	}
	check := func(s *Store, dead map[Hash]bool) {
		t.Helper()
		for _, h := range hs {
			if dead[h] {
				continue
			}
			if _, err := s.Get(h, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	check(s, nil)
	first, _, _, _ := s.Location(hs[0])
	dead := map[Hash]bool{}
	for _, h := range hs {
		if p, _, _, _ := s.Location(h); p == first {
			dead[h] = true
		}
	}
	st, err := s.Prune(func(h Hash) bool { return !dead[h] })
	if err != nil || st.Objects != int64(len(dead)) {
		t.Fatalf("prune: %+v %v, want %d objects", st, err, len(dead))
	}
	if _, err := os.Stat(first); !os.IsNotExist(err) {
		t.Fatalf("the wholly dead pack is still there: %v", err)
	}
	s.Close()
	check(openStore(t, dir), dead)
}
