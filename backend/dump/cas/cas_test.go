package cas

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/klauspost/compress/zstd"
)

func openStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
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

func TestStaleStagingRemovedOnOpen(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	b, _ := s.NewBatch()
	b.Put([]byte("torn"))
	s.Close() // a crash: the batch never finished
	s2 := openStore(t, dir)
	if ents, _ := os.ReadDir(filepath.Join(dir, stagingDir)); len(ents) != 0 {
		t.Fatalf("open left %d stale staging entries", len(ents))
	}
	if n := countObjects(t, s2); n != 0 {
		t.Fatalf("%d objects after an unfinished batch", n)
	}
}

func TestCorruptionDetected(t *testing.T) {
	s := openStore(t, t.TempDir())
	data := make([]byte, 100000)
	rand.New(rand.NewSource(1)).Read(data)
	h := put(t, s, data)
	p := s.path(h)
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)/2] ^= 0x01
	os.Chmod(p, 0o644)
	if err := os.WriteFile(p, raw, 0o444); err != nil {
		t.Fatal(err)
	}
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

func TestRemoveAndList(t *testing.T) {
	s := openStore(t, t.TempDir())
	a := put(t, s, []byte("a"))
	bb := put(t, s, []byte("b"))
	if n := countObjects(t, s); n != 2 {
		t.Fatalf("%d objects", n)
	}
	if _, err := s.Remove(a); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Remove(a); err != nil {
		t.Fatalf("removing a missing object: %v", err)
	}
	if ok, _ := s.Has(a); ok {
		t.Fatal("removed object still there")
	}
	if ok, _ := s.Has(bb); !ok {
		t.Fatal("other object gone")
	}
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
