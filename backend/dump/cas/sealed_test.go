package cas

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/internal/seal"
)

// testSealing, when set, makes openStore open sealed stores.
var testSealing *Sealing

func newSealing(t *testing.T, cipherName string) *Sealing {
	t.Helper()
	aead, err := seal.NewAEAD(cipherName, seal.NewMaster())
	if err != nil {
		t.Fatal(err)
	}
	sl := &Sealing{AEAD: aead}
	copy(sl.Name[:], seal.NewMaster())
	return sl
}

// TestSealedStore runs the store's tests again on a sealed store.
func TestSealedStore(t *testing.T) {
	for _, c := range []string{seal.CipherAES256GCM, seal.CipherXChaCha20Poly1305} {
		testSealing = newSealing(t, c)
		for name, fn := range map[string]func(*testing.T){
			"PutGet": TestPutGet, "Dedup": TestDedup, "BatchInvisibleUntilCommit": TestBatchInvisibleUntilCommit,
			"CorruptionDetected": TestCorruptionDetected, "ReopenFindsPublishedOnly": TestReopenFindsPublishedOnly,
			"DamagedIndexRebuilt": TestDamagedIndexRebuilt, "ImportLoose": TestImportLoose,
			"MissingIsNotFound": TestMissingIsNotFound, "PutStoredVerifies": TestPutStoredVerifies,
			"DecodeIsBounded": TestDecodeIsBounded, "Prune": TestPrune, "ConcurrentStage": TestConcurrentStage,
			"PruneLeavesDamagedPack": TestPruneLeavesDamagedPack, "PruneMergesSmallPacks": TestPruneMergesSmallPacks,
			"PruneMergesWithTheRewrittenPack": TestPruneMergesWithTheRewrittenPack,
			"HidesContent":                    testSealedHidesContent,
		} {
			t.Run(c+"/"+name, fn)
		}
		testSealing = nil
	}
}

// testSealedHidesContent: no file of a sealed store holds an object's
// plaintext, its hash (hex or raw) or its compressed form.
func testSealedHidesContent(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	data := []byte(strings.Repeat("MARKER-plaintext-7f3a ", 3000))
	h := put(t, s, data)
	comp := s.Compress(data, nil)
	s.Close()
	needles := [][]byte{[]byte("MARKER-plaintext-7f3a"), h[:], []byte(h.String()), comp[:32]}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range needles {
			if bytes.Contains(b, n) {
				t.Errorf("%s holds %q", p, hex.EncodeToString(n[:min(len(n), 16)]))
			}
		}
		return nil
	})
	s2 := openStore(t, dir)
	if got, err := s2.Get(h, nil); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("reopened sealed store: %v", err)
	}
}

// TestSealedModeMismatch: a sealed store opened without its key, with
// another key, or a plain one opened with a key, fails and changes
// nothing on disk.
func TestSealedModeMismatch(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	sealedDir, plainDir := t.TempDir(), t.TempDir()
	key := newSealing(t, seal.CipherAES256GCM)
	for _, d := range []struct {
		dir string
		sl  *Sealing
	}{{sealedDir, key}, {plainDir, nil}} {
		s, err := Open(d.dir, Options{Logger: quiet, Seal: d.sl})
		if err != nil {
			t.Fatal(err)
		}
		put(t, s, []byte("content"))
		s.Close()
	}
	snapshot := func(dir string) map[string]string {
		m := map[string]string{}
		filepath.WalkDir(filepath.Join(dir, packsDir), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				b, _ := os.ReadFile(p)
				m[p] = string(b)
			}
			return err
		})
		return m
	}
	for name, c := range map[string]struct {
		dir string
		sl  *Sealing
	}{
		"sealed without key": {sealedDir, nil},
		"sealed, other key":  {sealedDir, newSealing(t, seal.CipherAES256GCM)},
		"plain with key":     {plainDir, key},
	} {
		before := snapshot(c.dir)
		s, err := Open(c.dir, Options{Logger: quiet, Seal: c.sl})
		if err == nil {
			s.Close()
			t.Fatalf("%s: opened", name)
		}
		if !errors.Is(err, dotmesh.ErrCorrupt) {
			t.Fatalf("%s: %v, want ErrCorrupt", name, err)
		}
		after := snapshot(c.dir)
		if len(after) != len(before) {
			t.Fatalf("%s: files changed", name)
		}
		for p, b := range before {
			if after[p] != b {
				t.Fatalf("%s: %s changed", name, p)
			}
		}
	}
}

// FuzzDecodeSealedIndex: a sealed index file from disk.
func FuzzDecodeSealedIndex(f *testing.F) {
	aead, _ := seal.NewAEAD(seal.CipherAES256GCM, bytes.Repeat([]byte{9}, 32))
	s := &Store{seal: &Sealing{AEAD: aead}}
	f.Add(s.encodeIndexOf("p", []entry{{h: Sum([]byte("a")), off: 44, n: 10}}), int64(200))
	f.Add([]byte(sealedIndexMagic+"short"), int64(8))
	f.Fuzz(func(t *testing.T, b []byte, size int64) {
		es, err := s.decodeIndexOf("p", b, size)
		if err == nil && len(es) > 0 && es[0].off+int64(es[0].n) > size {
			t.Fatalf("entry outside the pack: %+v", es[0])
		}
	})
}
