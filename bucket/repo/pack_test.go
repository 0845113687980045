package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dotmesh-io/dotmesh/bucket"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func flush(t testing.TB, r *Repo) {
	t.Helper()
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// packOf is the pack object holding blob id, as r's index says, and
// where in it the blob lies.
func packOf(t testing.TB, r *Repo, id ID) (string, packEntry) {
	t.Helper()
	name, off, n, err := r.BlobLocation(context.Background(), id)
	if err != nil || !strings.HasPrefix(name, packsDir) {
		t.Fatalf("blob %s is in no pack: %s, %v", id, name, err)
	}
	return name, packEntry{ID: id, Offset: uint32(off), Length: uint32(n)}
}

// openSmallPacks opens st's repository with packs of size bytes.
func openSmallPacks(t *testing.T, st bucket.Store, size int) *Repo {
	t.Helper()
	r, err := Open(context.Background(), st, []byte("secret one"), Options{PackSize: size})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// faulty fails Puts and Deletes of objects under a prefix (a writer
// killed there: nothing of it is stored) once armed.
type faulty struct {
	bucket.Store
	prefix  string
	after   atomic.Int32 // calls that still succeed
	armed   atomic.Bool
	deletes bool
}

var errKilled = errors.New("killed")

func (f *faulty) hit(name string) bool {
	return f.armed.Load() && strings.HasPrefix(name, f.prefix) && f.after.Add(-1) < 0
}

func (f *faulty) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	if !f.deletes && f.hit(name) {
		return errKilled
	}
	return f.Store.Put(ctx, name, r, size)
}

func (f *faulty) Delete(ctx context.Context, name string) error {
	if f.deletes && f.hit(name) {
		return errKilled
	}
	return f.Store.Delete(ctx, name)
}

// TestPacks: blobs go into packs of about PackSize, are present to other
// readers only once flushed, read back one by one and in coalesced runs,
// and take ~1 object per pack plus an index instead of one per blob.
func TestPacks(t *testing.T) {
	forEachStore(t, func(t *testing.T, st bucket.Store) {
		ctx := context.Background()
		initRepo(t, st, false)
		w := openSmallPacks(t, st, 64<<10)
		other := openRepo(t, st, "secret one")
		var ids []ID
		var blobs [][]byte
		for i := range 100 {
			b := randomData(1000 + i*37)
			id, stored, err := w.PutBlob(ctx, b)
			if err != nil || !stored {
				t.Fatalf("PutBlob: %v, %v", stored, err)
			}
			ids, blobs = append(ids, id), append(blobs, b)
		}
		// Pending: readable by the writer, not yet present to others.
		if got, err := w.GetBlob(ctx, ids[99]); err != nil || !bytes.Equal(got, blobs[99]) {
			t.Fatalf("GetBlob of a pending blob: %v", err)
		}
		if _, stored, _ := w.PutBlob(ctx, blobs[99]); stored {
			t.Fatal("a pending blob was stored twice")
		}
		other.ReloadIndex()
		if has, _ := other.HasBlobs(ctx, ids[99:]); has[0] {
			t.Fatal("a blob not flushed is present")
		}
		flush(t, w)
		other.ReloadIndex()
		has, err := other.HasBlobs(ctx, ids)
		if err != nil || slices.Contains(has, false) {
			t.Fatalf("HasBlobs after Flush: %v, %v", has, err)
		}
		packs, index := objectNames(t, st, packsDir), objectNames(t, st, indexDir)
		total := 0
		for _, b := range blobs {
			total += len(b)
		}
		if len(packs) < total/(64<<10) || len(packs) > total/(64<<10)+2 || len(index) == 0 || len(index) > len(packs)/indexEvery+2 {
			t.Fatalf("%d bytes of blobs in %d packs and %d index objects; want about %d packs", total, len(packs), len(index), total/(64<<10)+1)
		}
		if n := len(objectNames(t, st, dataDir)); n != 0 {
			t.Fatalf("%d loose blobs written", n)
		}
		// Coalesced: every blob, shuffled, with a duplicate.
		order := rand.Perm(len(ids))
		want := make([]ID, 0, len(ids)+1)
		for _, i := range order {
			want = append(want, ids[i])
		}
		want = append(want, ids[0])
		got, err := other.GetBlobs(ctx, want)
		if err != nil {
			t.Fatal(err)
		}
		for i, id := range want {
			j := slices.Index(ids, id)
			if !bytes.Equal(got[i], blobs[j]) {
				t.Fatalf("GetBlobs: blob %d differs", i)
			}
		}
		res, err := other.Check(ctx, CheckOptions{ReadData: true})
		if err != nil || res.Err() != nil || res.Blobs != 100 || res.BlobsRead != 100 || res.Packs != len(packs) || res.Unindexed != 0 {
			t.Fatalf("Check: %+v, %v, %v", res, err, res.Err())
		}
	})
}

// TestPackResume: a writer killed between its packs and their index
// leaves garbage that no reader sees; a re-run stores the blobs again
// and Prune removes the garbage.
func TestPackResume(t *testing.T) {
	forEachStore(t, func(t *testing.T, st bucket.Store) {
		ctx := context.Background()
		initRepo(t, st, false)
		for _, killAt := range []string{indexDir, packsDir} {
			t.Run(strings.TrimSuffix(killAt, "/"), func(t *testing.T) {
				f := &faulty{Store: st, prefix: killAt}
				f.armed.Store(true)
				w := openSmallPacks(t, f, 32<<10)
				var blobs [][]byte
				for range 20 {
					b := randomData(5000)
					if _, _, err := w.PutBlob(ctx, b); err != nil && !errors.Is(err, errKilled) {
						t.Fatal(err)
					}
					blobs = append(blobs, b)
				}
				if err := w.Flush(ctx); !errors.Is(err, errKilled) {
					t.Fatalf("Flush of a killed writer: %v", err)
				}
				r := openRepo(t, st, "secret one")
				var ids []ID
				for _, b := range blobs {
					ids = append(ids, r.BlobID(ContentHash(b)))
				}
				has, err := r.HasBlobs(ctx, ids)
				if err != nil || slices.Contains(has, true) {
					t.Fatalf("blobs of a killed writer are present: %v, %v", has, err)
				}
				res, err := r.Check(ctx, CheckOptions{ReadData: true})
				if err != nil || res.Err() != nil {
					t.Fatalf("Check after a kill: %v, %v", err, res.Err())
				}
				if killAt == indexDir && res.Unindexed == 0 {
					t.Fatal("Check counts no unindexed pack after a kill before the index")
				}
				// The re-run stores them all (on the same Repo too: the
				// failed blobs are not pending any more).
				f.armed.Store(false)
				for _, b := range blobs {
					if _, stored, err := w.PutBlob(ctx, b); err != nil || !stored {
						t.Fatalf("re-run PutBlob: %v, %v", stored, err)
					}
				}
				flush(t, w)
				r.ReloadIndex()
				if has, _ := r.HasBlobs(ctx, ids); slices.Contains(has, false) {
					t.Fatalf("after the re-run: %v", has)
				}
				pr, err := r.Prune(ctx, func(ID) bool { return true }, PruneOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if killAt == indexDir && (pr.Bytes <= 0 || pr.Freed != pr.Bytes) {
					t.Fatalf("Prune freed %d bytes (%d) of unindexed packs", pr.Bytes, pr.Freed)
				}
				if res, _ := r.Check(ctx, CheckOptions{ReadData: true}); res.Err() != nil || res.Unindexed != 0 || res.BlobsRead < 20 {
					t.Fatalf("Check after prune: %+v, %v", res, res.Err())
				}
			})
		}
	})
}

// TestPruneProperty: for random keep sets, Prune keeps every used blob
// readable (through a fresh Open), frees bytes, and a prune killed at
// any delete leaves every used blob too.
func TestPruneProperty(t *testing.T) {
	st, err := bucket.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	initRepo(t, st, false)
	stored := func() int64 { // the packs' bytes
		var n int64
		st.List(ctx, packsDir, func(oi bucket.ObjectInfo) error { n += oi.Size; return nil })
		return n
	}
	data := map[ID][]byte{}
	for round := range 6 {
		w := openSmallPacks(t, st, 16<<10)
		for range 40 + rand.IntN(40) {
			b := randomData(500 + rand.IntN(3000))
			id, _, err := w.PutBlob(ctx, b)
			if err != nil {
				t.Fatal(err)
			}
			data[id] = b
		}
		flush(t, w)
		keepShare := rand.Float64()
		keep := map[ID]bool{}
		for id := range data {
			if rand.Float64() < keepShare {
				keep[id] = true
			}
		}
		// Killed after a few deletes: nothing kept is lost.
		f := &faulty{Store: st, prefix: "", deletes: true}
		f.after.Store(int32(rand.IntN(4)))
		f.armed.Store(true)
		killed := openSmallPacks(t, f, 16<<10)
		killed.Prune(ctx, func(id ID) bool { return keep[id] }, PruneOptions{})
		r := openSmallPacks(t, st, 16<<10)
		got, err := r.GetBlobs(ctx, slices.Collect(func(yield func(ID) bool) {
			for id := range keep {
				if !yield(id) {
					return
				}
			}
		}))
		if err != nil {
			t.Fatalf("round %d: after a killed prune: %v", round, err)
		}
		_ = got
		before := stored()
		pr, err := r.Prune(ctx, func(id ID) bool { return keep[id] }, PruneOptions{})
		if err != nil {
			t.Fatal(err)
		}
		after := stored()
		if before-after != pr.Freed || pr.Blobs > 0 && pr.Bytes <= 0 {
			t.Fatalf("round %d: Prune says it freed %d bytes (%d blobs, %d bytes); the store went from %d to %d", round, pr.Freed, pr.Blobs, pr.Bytes, before, after)
		}
		r2 := openRepo(t, st, "secret one")
		for id, b := range data {
			if !keep[id] {
				continue
			}
			if got, err := r2.GetBlob(ctx, id); err != nil || !bytes.Equal(got, b) {
				t.Fatalf("round %d: a kept blob after Prune: %v", round, err)
			}
		}
		// What stays in used-enough packs may stay; no pack is mostly
		// unused any more.
		ix, err := r2.readIndex(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		for pid, es := range ix.packs {
			var used, all int64
			for _, e := range es {
				all += int64(e.Length)
				if keep[e.ID] {
					used += int64(e.Length)
				}
			}
			if used == 0 || float64(all-used) > 0.5*float64(all) {
				t.Fatalf("round %d: pack %s keeps %d used bytes of %d", round, PackObject(pid), used, all)
			}
		}
		if res, err := r2.Check(ctx, CheckOptions{ReadData: true}); err != nil || res.Err() != nil || res.Unindexed != 0 {
			t.Fatalf("round %d: Check after prune: %v, %v, %+v", round, err, res.Err(), res)
		}
		for id := range data {
			if !keep[id] {
				delete(data, id)
			}
		}
	}
}

// TestLooseBlobs: a repository written before packs (blobs under data/)
// reads on: its blobs are present, read, checked and pruned; new blobs
// go into packs.
func TestLooseBlobs(t *testing.T) {
	forEachStore(t, func(t *testing.T, st bucket.Store) {
		ctx := context.Background()
		r := initRepo(t, st, false)
		var ids []ID
		for i := range 3 {
			b := fmt.Appendf(nil, "an old blob %d", i)
			id := r.BlobID(ContentHash(b))
			rawPut(t, st, BlobObject(id), r.codec.seal(kindBlob, BlobObject(id), b, true))
			ids = append(ids, id)
		}
		r2 := openRepo(t, st, "secret one")
		if has, err := r2.HasBlobs(ctx, ids); err != nil || slices.Contains(has, false) {
			t.Fatalf("HasBlobs of loose blobs: %v, %v", has, err)
		}
		if got, err := r2.GetBlobs(ctx, ids); err != nil || string(got[2]) != "an old blob 2" {
			t.Fatalf("GetBlobs of loose blobs: %v", err)
		}
		if _, stored, _ := r2.PutBlob(ctx, []byte("an old blob 0")); stored {
			t.Fatal("a loose blob was stored again")
		}
		r2.PutBlob(ctx, []byte("a new blob"))
		flush(t, r2)
		if n := len(objectNames(t, st, packsDir)); n != 1 {
			t.Fatalf("%d packs after a new blob", n)
		}
		res, err := r2.Check(ctx, CheckOptions{ReadData: true})
		if err != nil || res.Err() != nil || res.Blobs != 4 || res.BlobsRead != 4 {
			t.Fatalf("Check: %+v, %v, %v", res, err, res.Err())
		}
		pr, err := r2.Prune(ctx, func(id ID) bool { return id != ids[1] }, PruneOptions{})
		if err != nil || pr.Blobs != 1 || pr.Bytes <= 0 || pr.Freed != pr.Bytes {
			t.Fatalf("Prune of a loose blob: %+v, %v", pr, err)
		}
		if names := objectNames(t, st, dataDir); len(names) != 2 {
			t.Fatalf("loose blobs after Prune: %v", names)
		}
	})
}

// TestCheckPacks: a truncated pack, a flipped byte in a pack and an index
// naming a missing pack are named by Check with the blobs they lose.
func TestCheckPacks(t *testing.T) {
	for _, plain := range []bool{false, true} {
		t.Run(fmt.Sprintf("plain=%v", plain), func(t *testing.T) {
			forEachStore(t, func(t *testing.T, st bucket.Store) {
				ctx := context.Background()
				r := initRepo(t, st, plain)
				var next ID
				put := func() ID {
					id, _, err := r.PutBlob(ctx, randomData(3000))
					if err != nil {
						t.Fatal(err)
					}
					next, _, _ = r.PutBlob(ctx, randomData(3000)) // a neighbour
					flush(t, r)
					return id
				}
				a := put()
				aNext := next
				b, c := put(), put()
				pa, ea := packOf(t, r, a)
				pb, _ := packOf(t, r, b)
				pc, _ := packOf(t, r, c)
				flipped := rawGet(t, st, pa)
				flipped[ea.Offset+ea.Length/2] ^= 4
				rawPut(t, st, pa, flipped)
				whole := rawGet(t, st, pb)
				rawPut(t, st, pb, whole[:len(whole)-3])
				if err := st.Delete(ctx, pc); err != nil {
					t.Fatal(err)
				}
				res, err := r.Check(ctx, CheckOptions{ReadData: true})
				if err != nil {
					t.Fatal(err)
				}
				found := map[string][]ID{}
				for _, p := range res.Problems {
					found[p.Object] = p.Blobs
				}
				if len(found) != 3 || !slices.Equal(found[pa], []ID{a}) || !slices.Contains(found[pb], b) || !slices.Contains(found[pc], c) {
					t.Fatalf("Check found %v; want %s (blob %s), %s, %s", res.Problems, pa, a, pb, pc)
				}
				// Without reading data the flipped blob passes, the rest not.
				res, _ = r.Check(ctx, CheckOptions{})
				if len(res.Problems) != 2 {
					t.Fatalf("Check without data: %v", res.Problems)
				}
				if _, err := r.GetBlob(ctx, a); !errors.Is(err, dotmesh.ErrCorrupt) || !strings.Contains(err.Error(), pa) {
					t.Fatalf("GetBlob of a flipped blob: %v", err)
				}
				// Repacking a's pack (its neighbour goes) copies no damaged blob.
				if _, err := r.Prune(ctx, func(id ID) bool { return id != aNext }, PruneOptions{}); !errors.Is(err, dotmesh.ErrCorrupt) || !strings.Contains(err.Error(), pa) {
					t.Fatalf("Prune repacking a pack with a damaged used blob: %v", err)
				}
				if got := rawGet(t, st, pa); !bytes.Equal(got, flipped) {
					t.Fatal("a refused Prune changed the damaged pack")
				}
			})
		})
	}
}
