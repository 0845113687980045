package cas

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/klauspost/compress/zstd"
)

func openStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Seal: testSealing})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func put(t *testing.T, s *Store, data []byte) Hash {
	t.Helper()
	b, err := s.NewBatch()
	if err != nil {
		t.Fatal(err)
	}
	h, _, err := b.Put(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	return h
}

func countObjects(t *testing.T, s *Store) int {
	t.Helper()
	n := 0
	if err := s.List(func(Hash, int64) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestPutGet(t *testing.T) {
	s := openStore(t, t.TempDir())
	data := bytes.Repeat([]byte("dotmesh "), 10000)
	h := put(t, s, data)
	if h != Sum(data) {
		t.Fatal("key is not the BLAKE3 of the plaintext")
	}
	got, err := s.Get(h, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("round trip changed the data")
	}
	stored, err := s.ReadStored(h)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) >= len(data)/10 {
		t.Fatalf("repetitive data stored in %d bytes: not compressed", len(stored))
	}
	// Empty objects work too.
	e := put(t, s, nil)
	if got, err := s.Get(e, nil); err != nil || len(got) != 0 {
		t.Fatalf("empty object: %v %d", err, len(got))
	}
}

func TestDedup(t *testing.T) {
	s := openStore(t, t.TempDir())
	data := []byte("same content")
	b, _ := s.NewBatch()
	_, isNew, err := b.Put(data)
	if err != nil || !isNew {
		t.Fatalf("first put: new=%v err=%v", isNew, err)
	}
	_, isNew, _ = b.Put(data)
	if isNew {
		t.Fatal("second put in the same batch stored again")
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	b2, _ := s.NewBatch()
	_, isNew, _ = b2.Put(data)
	if isNew {
		t.Fatal("put of a stored object stored again")
	}
	if n, _, _ := b2.Stats(); n != 0 {
		t.Fatalf("batch counted %d new objects", n)
	}
	b2.Commit()
	if n := countObjects(t, s); n != 1 {
		t.Fatalf("%d objects stored, want 1", n)
	}
}

func TestBatchInvisibleUntilCommit(t *testing.T) {
	s := openStore(t, t.TempDir())
	b, _ := s.NewBatch()
	h, _, err := b.Put([]byte("pending"))
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.Has(h); ok {
		t.Fatal("staged object visible before Commit")
	}
	if ok, _ := b.Has(h); !ok {
		t.Fatal("batch does not see its own object")
	}
	if got, err := b.Get(h, nil); err != nil || string(got) != "pending" {
		t.Fatalf("batch Get: %q %v", got, err)
	}
	b.Abort()
	if ok, _ := s.Has(h); ok {
		t.Fatal("aborted object became visible")
	}
	if ents, _ := os.ReadDir(filepath.Join(s.Dir(), stagingDir)); len(ents) != 0 {
		t.Fatalf("abort left %d staging entries", len(ents))
	}
}

// flip xors one byte of path at off.
func flip(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		os.Chmod(path, 0o644)
		if f, err = os.OpenFile(path, os.O_RDWR, 0); err != nil {
			t.Fatal(err)
		}
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x01
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptionDetected(t *testing.T) {
	s := openStore(t, t.TempDir())
	data := make([]byte, 100000)
	rand.New(rand.NewSource(1)).Read(data)
	h := put(t, s, data)
	other := put(t, s, []byte("a neighbour in another pack"))
	p, off, n, err := s.Location(h)
	if err != nil {
		t.Fatal(err)
	}
	flip(t, p, off+int64(n)/2)
	_, err = s.Get(h, nil)
	if !errors.Is(err, dotmesh.ErrCorrupt) {
		t.Fatalf("Get of a damaged object: %v, want ErrCorrupt", err)
	}
	if !bytes.Contains([]byte(err.Error()), []byte(h.String())) {
		t.Fatalf("error does not name the object: %v", err)
	}
	if _, _, err := s.Verify(h, nil); !errors.Is(err, dotmesh.ErrCorrupt) {
		t.Fatalf("Verify: %v", err)
	}
	// A damaged record header (here: its hash) is caught by the read.
	p, off, _, _ = s.Location(other)
	flip(t, p, off-recordHeader+3)
	if _, err := s.ReadStored(other); !errors.Is(err, dotmesh.ErrCorrupt) || !strings.Contains(err.Error(), "does not match its index") {
		t.Fatalf("ReadStored with a damaged record header: %v", err)
	}
}

func TestReopenFindsPublishedOnly(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	kept := put(t, s, []byte("published"))
	b, _ := s.NewBatch()
	torn, _, _ := b.Put([]byte("staged, never published"))
	// A pack renamed into packs/ whose index never followed it.
	if err := os.WriteFile(filepath.Join(dir, packsDir, "deadbeef.pack"), []byte(packMagic), 0o444); err != nil {
		t.Fatal(err)
	}
	s.Close() // a crash: the batch never finished
	s2 := openStore(t, dir)
	if ok, _ := s2.Has(kept); !ok {
		t.Fatal("published object lost on reopen")
	}
	if ok, _ := s2.Has(torn); ok {
		t.Fatal("unpublished object found after reopen")
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, stagingDir)); len(ents) != 0 {
		t.Fatalf("open left %d stale staging entries", len(ents))
	}
	if _, err := os.Stat(filepath.Join(dir, packsDir, "deadbeef.pack")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("unpublished pack still there: %v", err)
	}
}

func TestDamagedIndexRebuilt(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	b, _ := s.NewBatch()
	var hs []Hash
	for i := 0; i < 20; i++ {
		h, _, err := b.Put([]byte(strings.Repeat("x", i*1000+1)))
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	p, _, _, _ := s.Location(hs[0])
	s.Close()
	flip(t, strings.TrimSuffix(p, ".pack")+".idx", 50)
	s2 := openStore(t, dir)
	for _, h := range hs {
		if _, err := s2.Get(h, nil); err != nil {
			t.Fatalf("after rebuilding the index: %v", err)
		}
	}
	raw, _ := os.ReadFile(strings.TrimSuffix(p, ".pack") + ".idx")
	st, _ := os.Stat(p)
	if _, err := s2.decodeIndexOf(filepath.Base(strings.TrimSuffix(p, ".pack")), raw, st.Size()); err != nil {
		t.Fatalf("rebuilt index: %v", err)
	}
}

func TestImportLoose(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	data := []byte("kept one file each, as before packs")
	h := Sum(data)
	comp := s.Compress(data, nil)
	s.Close()
	sub := filepath.Join(dir, looseDir, h.String()[:2])
	os.MkdirAll(sub, 0o755)
	if err := os.WriteFile(filepath.Join(sub, h.String()), comp, 0o444); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, dir)
	if got, err := s2.Get(h, nil); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("imported object: %q %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(dir, looseDir)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("loose objects left after import: %v", err)
	}
}

func TestMissingIsNotFound(t *testing.T) {
	s := openStore(t, t.TempDir())
	_, err := s.Get(Sum([]byte("never stored")), nil)
	if !errors.Is(err, dotmesh.ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound", err)
	}
}

func TestPutStoredVerifies(t *testing.T) {
	s := openStore(t, t.TempDir())
	data := []byte("from a peer")
	comp := s.Compress(data, nil)
	b, _ := s.NewBatch()
	defer b.Abort()
	if _, _, err := b.PutStored(Sum([]byte("something else")), comp, nil); !errors.Is(err, dotmesh.ErrCorrupt) {
		t.Fatalf("wrong hash accepted: %v", err)
	}
	if isNew, _, err := b.PutStored(Sum(data), comp, nil); err != nil || !isNew {
		t.Fatalf("good object: new=%v err=%v", isNew, err)
	}
}

// A small input that decompresses to far more than MaxObjectSize must be
// rejected without allocating it all.
func TestDecodeIsBounded(t *testing.T) {
	s := openStore(t, t.TempDir())
	enc, _ := zstd.NewWriter(nil)
	bomb := enc.EncodeAll(make([]byte, 4*MaxObjectSize), nil)
	if len(bomb) > 1<<20 {
		t.Fatalf("bomb is %d bytes", len(bomb))
	}
	if _, err := s.Decode(Hash{}, bomb, nil); !errors.Is(err, dotmesh.ErrCorrupt) {
		t.Fatalf("oversized object: %v", err)
	}
	// Same without a declared content size (streamed encoding).
	var buf bytes.Buffer
	w, _ := zstd.NewWriter(&buf)
	w.Write(make([]byte, 2*MaxObjectSize))
	w.Close()
	if _, err := s.Decode(Hash{}, buf.Bytes(), nil); !errors.Is(err, dotmesh.ErrCorrupt) {
		t.Fatalf("oversized streamed object: %v", err)
	}
}

func packFiles(t *testing.T, s *Store) (n int, size int64) {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(s.Dir(), packsDir))
	for _, e := range ents {
		if info, err := e.Info(); err == nil {
			n++
			size += info.Size()
		}
	}
	return n, size
}

func TestPrune(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	big := bytes.Repeat([]byte("garbage "), 50000)
	b, _ := s.NewBatch()
	a, _, _ := b.Put([]byte("a"))
	c, _, _ := b.Put([]byte("c"))
	// Taken back while staged: bytes in the pack that nothing names.
	g, _, _ := b.Put(big)
	if err := b.Unstage(g, len(big), len(s.Compress(big, nil))); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	bb := put(t, s, []byte("b"))
	gone := put(t, s, []byte("only dead objects here"))
	if n := countObjects(t, s); n != 4 {
		t.Fatalf("%d objects", n)
	}
	_, before := packFiles(t, s)
	plan := s.PlanPrune(func(h Hash) bool { return h != a && h != gone })
	st, err := s.Prune(func(h Hash) bool { return h != a && h != gone })
	if err != nil {
		t.Fatal(err)
	}
	npacks, after := packFiles(t, s)
	if plan != st {
		t.Fatalf("plan %+v, prune did %+v", plan, st)
	}
	if st.Objects != 2 || st.Bytes != before-after || st.Bytes <= 0 {
		t.Fatalf("prune: %+v, files %d -> %d bytes", st, before, after)
	}
	check := func(s *Store) {
		for _, h := range []Hash{a, gone} {
			if ok, _ := s.Has(h); ok {
				t.Fatal("removed object still there")
			}
		}
		for _, h := range []Hash{c, bb} {
			if _, err := s.Get(h, nil); err != nil {
				t.Fatalf("kept object: %v", err)
			}
		}
	}
	check(s)
	// One pack rewritten (c's), one untouched (b's), one deleted: two
	// packs with their indexes.
	if npacks != 4 {
		t.Fatalf("%d pack files after prune, want 4", npacks)
	}
	if st, err := s.Prune(func(Hash) bool { return true }); err != nil || st != (PruneStats{}) {
		t.Fatalf("second prune: %+v %v", st, err)
	}
	s.Close()
	check(openStore(t, dir))
}

func TestParseHash(t *testing.T) {
	h := Sum([]byte("x"))
	got, err := ParseHash(h.String())
	if err != nil || got != h {
		t.Fatalf("round trip: %v", err)
	}
	for _, bad := range []string{"", "zz", h.String()[:63], h.String() + "0", "../" + h.String()[3:], "ABCDEF" + h.String()[6:]} {
		if _, err := ParseHash(bad); err == nil {
			t.Errorf("ParseHash(%q) accepted", bad)
		}
	}
}

// Writers stage into one batch at once; every object reads back, from
// the batch before Commit and from the store after, also after a reopen.
func TestConcurrentStage(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	b, _ := s.NewBatch()
	const writers, each = 8, 50
	hs := make([][]Hash, writers)
	errc := make(chan error, writers)
	for w := 0; w < writers; w++ {
		go func(w int) {
			r := rand.New(rand.NewSource(int64(w)))
			for i := 0; i < each; i++ {
				data := make([]byte, 1000+r.Intn(20000))
				r.Read(data[:100])
				h, _, err := b.Put(data)
				if err != nil {
					errc <- err
					return
				}
				hs[w] = append(hs[w], h)
			}
			errc <- nil
		}(w)
	}
	for w := 0; w < writers; w++ {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	check := func(get func(Hash, []byte) ([]byte, error)) {
		for _, ws := range hs {
			for _, h := range ws {
				got, err := get(h, nil)
				if err != nil || Sum(got) != h {
					t.Fatalf("object %s: %v", h.Short(), err)
				}
			}
		}
	}
	check(b.Get)
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	check(s.Get)
	if n := countObjects(t, s); n != writers*each {
		t.Fatalf("%d objects, want %d", n, writers*each)
	}
	s.Close()
	check(openStore(t, dir).Get)
}

// A pack whose kept object is damaged is not rewritten: Prune goes on
// with the others and loses nothing more.
func TestPruneLeavesDamagedPack(t *testing.T) {
	s := openStore(t, t.TempDir())
	b, _ := s.NewBatch()
	kept, _, _ := b.Put([]byte("kept, but its record gets damaged"))
	dead, _, _ := b.Put([]byte("garbage beside it"))
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	other := put(t, s, []byte("garbage elsewhere"))
	p, off, _, _ := s.Location(kept)
	flip(t, p, off-recordHeader)
	st, err := s.Prune(func(h Hash) bool { return h == kept })
	if err != nil || st.Objects != 1 {
		t.Fatalf("prune: %+v %v, want the other pack's one object", st, err)
	}
	if ok, _ := s.Has(other); ok {
		t.Fatal("garbage in the healthy pack survived")
	}
	if ok, _ := s.Has(dead); !ok {
		t.Fatal("the damaged pack was changed")
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("damaged pack removed: %v", err)
	}
}

// Many small packs (one per commit) are merged into one by Prune.
func TestPruneMergesSmallPacks(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	var hs []Hash
	for i := 0; i < mergeAt+3; i++ {
		hs = append(hs, put(t, s, []byte(fmt.Sprintf("commit %d's only chunk", i))))
	}
	plan := s.PlanPrune(func(Hash) bool { return true })
	st, err := s.Prune(func(Hash) bool { return true })
	if err != nil || st.Objects != 0 || st != plan {
		t.Fatalf("prune: %+v %v (plan %+v)", st, err, plan)
	}
	if n, _ := packFiles(t, s); n != 2 {
		t.Fatalf("%d pack files after merging, want one pack and its index", n)
	}
	if st, err := s.Prune(func(Hash) bool { return true }); err != nil || st != (PruneStats{}) {
		t.Fatalf("second prune: %+v %v", st, err)
	}
	s.Close()
	s2 := openStore(t, dir)
	for _, h := range hs {
		if _, err := s2.Get(h, nil); err != nil {
			t.Fatalf("after merging: %v", err)
		}
	}
}

// A Prune that rewrites packs holding garbage adds a pack: when that one
// makes mergeAt small packs, it merges them now, so a plan right after it
// finds nothing (the torture run's "gc left unreferenced data", seed 101).
func TestPruneMergesWithTheRewrittenPack(t *testing.T) {
	s := openStore(t, t.TempDir())
	var keep []Hash
	for i := 0; i < mergeAt-1; i++ {
		keep = append(keep, put(t, s, []byte(fmt.Sprintf("kept chunk %d", i))))
	}
	b, _ := s.NewBatch()
	live, _, _ := b.Put([]byte("live beside garbage"))
	dead, _, _ := b.Put([]byte("garbage"))
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	keepFn := func(h Hash) bool { return h != dead }
	if st, err := s.Prune(keepFn); err != nil || st.Objects != 1 {
		t.Fatalf("prune: %+v %v", st, err)
	}
	if plan := s.PlanPrune(keepFn); plan != (PruneStats{}) {
		t.Fatalf("a plan right after Prune still finds %+v", plan)
	}
	for _, h := range append(keep, live) {
		if _, err := s.Get(h, nil); err != nil {
			t.Fatalf("after prune: %v", err)
		}
	}
}
