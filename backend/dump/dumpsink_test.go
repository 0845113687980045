package dump

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/dump/cas"
	"github.com/dotmesh-io/dotmesh/backend/dump/source/sourcetest"
)

// newTestSink returns a sink of b into a new batch and file dump in dir.
func newTestSink(t testing.TB, b *Guarded, dir string) (*dumpSink, *cas.Batch, *os.File) {
	t.Helper()
	batch, err := b.b.store.NewBatch()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "dump"))
	if err != nil {
		t.Fatal(err)
	}
	return b.b.newDumpSink(batch, f), batch, f
}

// TestDumpSinkRewind: whatever the writes and rewinds, the sink's chunks
// and file are those of the final bytes, cut as the commit cuts a file.
func TestDumpSinkRewind(t *testing.T) {
	var final bytes.Buffer
	for i := 0; final.Len() < 6<<20; i++ {
		fmt.Fprintf(&final, "%d\trow %d of a table %x\n", i, i*7, i*i)
	}
	want := chunksOf(t, final.Bytes(), fileChunks)
	type step struct {
		write   int   // write final up to here
		garbage int   // then this many other bytes
		rewind  int64 // then rewind here (-1: no)
	}
	for n, plan := range [][]step{
		{{6 << 20, 0, -1}},
		{{5 << 20, 0, 3<<20 + 12345}, {6 << 20, 0, -1}},
		{{1 << 20, 0, 10}, {4 << 20, 0, 2 << 20}, {5 << 20, 0, 4<<20 + 1}, {6 << 20, 0, -1}},
		{{6 << 20, 0, 0}, {6 << 20, 0, -1}},
		{{2 << 20, 3 << 20, 1 << 20}, {3 << 20, 1 << 20, 2<<20 + 7}, {6 << 20, 0, -1}},
		{{6 << 20, 1 << 20, 5 << 20}, {6 << 20, 0, -1}}, // ends shorter than it was before the rewind
	} {
		b := openTest(t)
		s, batch, f := newTestSink(t, b, t.TempDir())
		data := final.Bytes()
		var pos int
		for _, st := range plan {
			end := min(st.write, len(data))
			for pos < end { // odd write sizes
				k := min(end-pos, 77777)
				if _, err := s.Write(data[pos : pos+k]); err != nil {
					t.Fatal(err)
				}
				pos += k
			}
			if st.garbage > 0 {
				junk := randomBytes(int64(n), st.garbage)
				if _, err := s.Write(junk); err != nil {
					t.Fatal(err)
				}
			}
			if st.rewind >= 0 {
				// What is read back before the rewind is what went in.
				back := make([]byte, int64(pos)-st.rewind)
				if k, err := s.ReadAt(back, st.rewind); err != nil || k != len(back) || !bytes.Equal(back, data[st.rewind:pos]) {
					t.Fatalf("plan %d: read back %d bytes at %d: %d, %v", n, len(back), st.rewind, k, err)
				}
				if err := s.Rewind(st.rewind, back); err != nil {
					t.Fatal(err)
				}
				pos = int(st.rewind)
			}
		}
		if _, err := s.Write(data[pos:]); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ReadAt(make([]byte, 2), int64(len(data))-1); err == nil {
			t.Fatalf("plan %d: read back past the end", n)
		}
		chunks, size, err := s.Close()
		if err != nil {
			t.Fatal(err)
		}
		if size != int64(len(data)) || !chunksEqual(chunks, want) {
			t.Fatalf("plan %d: size %d of %d, %d chunks, want %d (equal %v)", n, size, len(data), len(chunks), len(want), chunksEqual(chunks, want))
		}
		got, _ := os.ReadFile(f.Name())
		if !bytes.Equal(got, data) {
			t.Fatalf("plan %d: the file differs from the dump", n)
		}
		fresh := map[cas.Hash]bool{}
		for _, c := range chunks {
			if ok, _ := b.b.store.Has(c.Hash); !ok {
				fresh[c.Hash] = true
			}
		}
		if objects, _, plain := batch.Stats(); objects != int64(len(fresh)) {
			t.Fatalf("plan %d: %d objects staged (%d bytes), %d new chunks kept", n, objects, plain, len(fresh))
		}
		if err := batch.Commit(); err != nil {
			t.Fatal(err)
		}
		for _, c := range chunks {
			if ok, _ := b.b.store.Has(c.Hash); !ok {
				t.Fatalf("plan %d: chunk %s not stored", n, c.Hash.Short())
			}
		}
		f.Close()
	}
}

// After a rewind, output that repeats the bytes taken back (here: with
// rows inserted before them, as the postgres normalizer's merge writes)
// is recognised chunk by chunk, and the chunks and file are still those
// of the final bytes; bytes taken back that are wrong or missing only
// cost the recognition.
func TestDumpSinkRecognisesRepeats(t *testing.T) {
	rows := func(from, to int) []byte {
		var b bytes.Buffer
		for i := from; i < to; i++ {
			fmt.Fprintf(&b, "%d\trow %d of a table %x\n", i, i*7, i*i)
		}
		return b.Bytes()
	}
	head, inserted, rest := rows(0, 50000), rows(50000, 52000), rows(52000, 400000)
	damaged := slices.Clone(rest)
	damaged[len(damaged)/2] ^= 1
	for name, c := range map[string]struct {
		taken        []byte
		again        []byte // written after inserted
		minRepeated  int
		mostRepeated bool
	}{
		"taken back":     {rest, rest, 1, true},
		"damaged taken":  {damaged, rest, 1, false},
		"output differs": {rest, damaged, 1, false},
		"nothing handed": {nil, rest, 0, false},
		"wrong length":   {rest[1:], rest, 0, false},
	} {
		final := slices.Concat(head, inserted, c.again)
		want := chunksOf(t, final, fileChunks)
		b := openTest(t)
		s, batch, f := newTestSink(t, b, t.TempDir())
		write := func(p []byte) {
			for len(p) > 0 {
				k := min(len(p), 300000)
				if _, err := s.Write(p[:k]); err != nil {
					t.Fatal(err)
				}
				p = p[k:]
			}
		}
		write(head)
		write(rest)
		if err := s.Rewind(int64(len(head)), c.taken); err != nil {
			t.Fatal(err)
		}
		write(inserted)
		write(c.again)
		chunks, size, err := s.Close()
		if err != nil {
			t.Fatal(err)
		}
		if size != int64(len(final)) || !chunksEqual(chunks, want) {
			t.Fatalf("%s: size %d of %d, %d chunks, want %d", name, size, len(final), len(chunks), len(want))
		}
		if got, _ := os.ReadFile(f.Name()); !bytes.Equal(got, final) {
			t.Fatalf("%s: the file differs from the dump", name)
		}
		// Taken back were the chunks of rest cut by the rewind: all but
		// the last maximal chunk's worth. All but the first few (cut
		// before the output resynchronises) can be recognised.
		var cut int
		var pos int64
		for _, ch := range chunksOf(t, slices.Concat(head, rest), fileChunks) {
			if pos >= int64(len(head)) && int64(len(head)+len(rest))-pos >= int64(fileChunks.Max) {
				cut++
			}
			pos += int64(ch.Size)
		}
		if r := s.redo.repeated; r < c.minRepeated || c.minRepeated == 0 && r != 0 || c.mostRepeated && r < cut-4 {
			t.Fatalf("%s: %d chunks recognised of the %d taken back", name, r, cut)
		}
		t.Logf("%s: %d of %d chunks recognised", name, s.redo.repeated, cut)
		batch.Abort()
		f.Close()
	}
}

// BenchmarkDumpSink: a first commit's work per dump byte (writing the
// file, cutting, hashing, compressing, staging), in the pieces the
// postgres normalizer hands over.
func BenchmarkDumpSink(b *testing.B) {
	data := sourcetest.PgbenchRows(300000)
	be := openTest(b)
	dir := b.TempDir()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		s, batch, f := newTestSink(b, be, dir)
		for p := data; len(p) > 0; {
			k := min(len(p), 256<<10)
			if _, err := s.Write(p[:k]); err != nil {
				b.Fatal(err)
			}
			p = p[k:]
		}
		if _, _, err := s.Close(); err != nil {
			b.Fatal(err)
		}
		batch.Abort() // the next round stores every chunk again
		f.Close()
		os.Remove(f.Name())
	}
}

// The sink cuts a chunk as soon as its boundary is written, not only
// once a maximal chunk's worth is uncut: little is left for Close, which
// the commit waits for after the tool has exited, and the chunks are
// still those of the whole file.
func TestDumpSinkCutsEagerly(t *testing.T) {
	data := sourcetest.PgbenchRows(150000)
	b := openTest(t)
	s, batch, f := newTestSink(t, b, t.TempDir())
	defer f.Close()
	defer batch.Abort()
	for p := data; len(p) > 0; {
		k := min(len(p), 64<<10)
		if _, err := s.Write(p[:k]); err != nil {
			t.Fatal(err)
		}
		p = p[k:]
	}
	if left := s.off - s.cutEnd; left >= 2<<20 {
		t.Fatalf("%d of %d bytes left uncut for Close, want under 2 MiB", left, len(data))
	}
	chunks, size, err := s.Close()
	if err != nil {
		t.Fatal(err)
	}
	if want := chunksOf(t, data, fileChunks); size != int64(len(data)) || !chunksEqual(chunks, want) {
		t.Fatalf("size %d of %d, %d chunks, want %d", size, len(data), len(chunks), len(want))
	}
}
