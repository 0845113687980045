package neutral

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func opener(b []byte) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

// patchStream is a delta stream against base "c1" of one patch record of
// file f, from old to new.
func patchStream(t testing.TB, old, new []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewDeltaWriter(&buf, "c1")
	if err != nil {
		t.Fatal(err)
	}
	e := Entry{Kind: KindFile, Path: "f", Mode: 0o640, MTime: time.Unix(7, 8), Size: int64(len(new))}
	if err := w.AddPatch(e, opener(old), opener(new)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// applyTo writes old as f in a fresh directory, applies the stream and
// returns f's content after.
func applyTo(t testing.TB, old, stream []byte) ([]byte, error) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), old, 0o644); err != nil {
		t.Fatal(err)
	}
	err := ApplyDelta(bytes.NewReader(stream), dir, func(string) error { return nil })
	got, rerr := os.ReadFile(filepath.Join(dir, "f"))
	if rerr != nil {
		t.Fatal(rerr)
	}
	if err == nil {
		st, _ := os.Stat(filepath.Join(dir, "f"))
		if st.Mode().Perm() != 0o640 || !st.ModTime().Equal(time.Unix(7, 8)) {
			t.Fatalf("patched file has mode %v, time %v", st.Mode(), st.ModTime())
		}
		ents, _ := os.ReadDir(dir)
		if len(ents) != 1 {
			t.Fatalf("patching left %d entries", len(ents))
		}
	}
	return got, err
}

func TestPatchSizes(t *testing.T) {
	const size = 3 << 20
	old := randomBytes(1, size)
	cases := map[string]struct {
		new     func() []byte
		maxWire int
	}{
		"2 bytes changed": {func() []byte {
			b := bytes.Clone(old)
			b[1<<20] ^= 1
			b[1<<20+1] ^= 0xff
			return b
		}, 200},
		"unchanged": {func() []byte { return bytes.Clone(old) }, 100},
		"100 bytes inserted": {func() []byte {
			return append(append(bytes.Clone(old[:2<<20]), randomBytes(2, 100)...), old[2<<20:]...)
		}, 400},
		"4 KiB deleted": {func() []byte {
			return append(bytes.Clone(old[:1<<20]), old[1<<20+4096:]...)
		}, 300},
		"appended":  {func() []byte { return append(bytes.Clone(old), randomBytes(3, 1000)...) }, 1300},
		"truncated": {func() []byte { return bytes.Clone(old[:size-5000]) }, 200},
		"three runs of 64 KiB": {func() []byte {
			b := bytes.Clone(old)
			for _, at := range []int{10, 1<<20 + 7, 3<<20 - (64 << 10)} {
				copy(b[at:], randomBytes(uint64(at), 64<<10))
			}
			return b
		}, 3*64<<10 + 400},
		"rewritten": {func() []byte { return randomBytes(4, size) }, size + 200},
		"to empty":  {func() []byte { return nil }, 100},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			new := c.new()
			s := patchStream(t, old, new)
			if len(s) > c.maxWire {
				t.Errorf("the stream is %d bytes, want at most %d", len(s), c.maxWire)
			}
			got, err := applyTo(t, old, s)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, new) {
				t.Fatalf("patched content differs (%d bytes, want %d)", len(got), len(new))
			}
		})
	}
}

// A patch applied to a base other than the sender's, or damaged where
// the stream's own checksum cannot see it, is refused: the content sum
// catches it.
func TestPatchRefused(t *testing.T) {
	old := randomBytes(5, 1<<20)
	new := bytes.Clone(old)
	new[500000] ^= 0x55
	s := patchStream(t, old, new)
	other := bytes.Clone(old)
	other[10] ^= 1
	if _, err := applyTo(t, other, s); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a patch against another base: %v", err)
	}
	// Flip the literal byte and read unchecked, so that only the content
	// sum guards it.
	var ub bytes.Buffer
	w, _ := NewDeltaWriter(UncheckedWriter(&ub), "c1")
	if err := w.AddPatch(Entry{Kind: KindFile, Path: "f", Mode: 0o640, MTime: time.Unix(7, 8), Size: int64(len(new))}, opener(old), opener(new)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	bad := bytes.Clone(ub.Bytes())
	// The one changed byte goes as a literal op of length 1 (uvarint 2).
	idx := bytes.LastIndex(bad, []byte{2, new[500000]})
	if idx < 0 {
		t.Fatal("the literal byte is not in the stream")
	}
	idx++
	bad[idx] ^= 0xff
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f"), old, 0o644)
	if err := ApplyDelta(UncheckedReader(bytes.NewReader(bad)), dir, func(string) error { return nil }); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a damaged literal: %v", err)
	}
	// A patch of a path that is no file in the base.
	dir = t.TempDir()
	os.Mkdir(filepath.Join(dir, "f"), 0o755)
	if err := ApplyDelta(bytes.NewReader(s), dir, func(string) error { return nil }); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a patch of a directory: %v", err)
	}
	// ScanDelta's callers never see a patch.
	if err := ScanDelta(bytes.NewReader(s), nil, func(Entry, io.Reader) error { return nil }); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("ScanDelta took a patch: %v", err)
	}
}

// A file that differs everywhere goes whole (a plain file record).
func TestPatchNotWorth(t *testing.T) {
	old, new := randomBytes(6, 1<<20), randomBytes(7, 1<<20)
	s := patchStream(t, old, new)
	if err := ScanDelta(bytes.NewReader(s), nil, func(e Entry, _ io.Reader) error {
		if e.Kind != KindFile {
			t.Errorf("record of kind %q", e.Kind)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// FuzzPatch: whatever the two versions, the patch rebuilds the new one
// from the old.
func FuzzPatch(f *testing.F) {
	f.Add(randomBytes(8, 70000), uint32(100), uint32(5), []byte("xy"))
	f.Add(randomBytes(9, 5000), uint32(0), uint32(0), []byte("inserted"))
	f.Fuzz(func(t *testing.T, old []byte, at, cut uint32, ins []byte) {
		a := int(at) % (len(old) + 1)
		c := min(int(cut)%(len(old)+1), len(old)-a)
		new := append(append(bytes.Clone(old[:a]), ins...), old[a+c:]...)
		s := patchStream(t, old, new)
		got, err := applyTo(t, old, s)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, new) {
			t.Fatal("patched content differs")
		}
	})
}

// FuzzApplyPatch: a delta with patch records applied to a tree holding
// the base file either fails with ErrCorrupt or succeeds; a failed patch
// leaves no temporary file.
func FuzzApplyPatch(f *testing.F) {
	old := randomBytes(10, 40000)
	ins := bytes.Clone(old)
	ins = append(append(ins[:20000:20000], "inserted"...), old[20000:]...)
	flip := bytes.Clone(old)
	flip[30000] ^= 1
	f.Add(patchStream(f, old, ins))
	f.Add(patchStream(f, old, flip))
	f.Add(patchStream(f, old, old[:10000]))
	f.Fuzz(func(t *testing.T, data []byte) {
		outer := t.TempDir()
		dir := filepath.Join(outer, "in")
		os.Mkdir(dir, 0o755)
		if err := os.WriteFile(filepath.Join(dir, "f"), old, 0o644); err != nil {
			t.Fatal(err)
		}
		err := ApplyDelta(UncheckedReader(bytes.NewReader(data)), dir, func(string) error { return nil })
		if ents, _ := os.ReadDir(outer); len(ents) != 1 {
			t.Fatalf("the delta wrote outside its directory: %v", ents)
		}
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("a bad patch gave %v, not ErrCorrupt", err)
		}
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if bytes.Contains([]byte(e.Name()), []byte(".dmpatch-")) {
				t.Fatalf("a patch left %s", e.Name())
			}
		}
	})
}
