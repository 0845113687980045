package bboltstore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// healthyRegistry writes a registry of several pages and returns its bytes.
func healthyRegistry(t testing.TB, keys int) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "registry.db")
	s, err := bboltstore.Open(path, bboltstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range keys {
		if _, err := s.Put(ctx, fmt.Sprintf("commits/dot/%04d", i), bytes.Repeat([]byte{byte(i)}, 300)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// kvRoot finds the page that holds the root of the store's kv bucket.
func kvRoot(t *testing.T, data []byte) int64 {
	t.Helper()
	path := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var root int64
	err = db.View(func(tx *bolt.Tx) error {
		root = int64(tx.Bucket([]byte("kv")).Root())
		return nil
	})
	if err != nil || root < 2 {
		t.Fatalf("kv bucket root: %d, %v", root, err)
	}
	return root
}

// assertRefused opens a damaged file: one ErrCorrupt error naming the
// file, no crash, and the file unchanged; Validate finds the damage too.
func assertRefused(t *testing.T, data []byte) {
	t.Helper()
	path := assertOpenRefused(t, data)
	if verr := bboltstore.Validate(path); !errors.Is(verr, dotmesh.ErrCorrupt) {
		t.Fatalf("Validate: %v, want ErrCorrupt", verr)
	}
}

// assertOpenRefused is assertRefused for damage only Open finds: records
// inside a sound page tree. It returns the file's path.
func assertOpenRefused(t *testing.T, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "registry.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	before := sha256.Sum256(data)
	s, err := bboltstore.Open(path, bboltstore.Options{})
	if err == nil {
		s.Close()
		t.Fatal("Open accepted a damaged registry")
	}
	if !errors.Is(err, dotmesh.ErrCorrupt) || !strings.Contains(err.Error(), path) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("Open: %v; want one line wrapping ErrCorrupt naming %s", err, path)
	}
	after, rerr := os.ReadFile(path)
	if rerr != nil || sha256.Sum256(after) != before {
		t.Fatalf("the damaged file was changed (%v)", rerr)
	}
	t.Logf("refused: %v", err)
	return path
}

func TestDamagedRegistryRefused(t *testing.T) {
	data := healthyRegistry(t, 300)
	if len(data) <= 16<<10 {
		t.Fatalf("the test registry has only %d bytes", len(data))
	}
	t.Run("Truncated16KiB", func(t *testing.T) { assertRefused(t, data[:16<<10]) })
	t.Run("Truncated0", func(t *testing.T) { assertRefused(t, nil) })
	t.Run("PageOverwritten", func(t *testing.T) {
		d := bytes.Clone(data)
		at := kvRoot(t, data) * 4096
		rng := rand.New(rand.NewPCG(1, 2))
		for i := at; i < at+4096; i++ {
			d[i] = byte(rng.Uint32())
		}
		assertRefused(t, d)
	})
	t.Run("BothMetasDamaged", func(t *testing.T) {
		d := bytes.Clone(data)
		d[16+60], d[4096+16+60] = d[16+60]^1, d[4096+16+60]^1
		assertRefused(t, d)
	})
}

// TestEveryPageOverwritten overwrites each page in turn with garbage: the
// store opens (a free page) or refuses, never crashes; pages in use are
// refused.
func TestEveryPageOverwritten(t *testing.T) {
	data := healthyRegistry(t, 300)
	rng := rand.New(rand.NewPCG(3, 4))
	refused := 0
	for pg := 0; pg < len(data)/4096; pg++ {
		d := bytes.Clone(data)
		for i := pg * 4096; i < (pg+1)*4096; i++ {
			d[i] = byte(rng.Uint32())
		}
		path := filepath.Join(t.TempDir(), "registry.db")
		if err := os.WriteFile(path, d, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := bboltstore.Open(path, bboltstore.Options{NoSync: true})
		if err != nil {
			if !errors.Is(err, dotmesh.ErrCorrupt) {
				t.Fatalf("page %d: %v, want ErrCorrupt", pg, err)
			}
			refused++
			continue
		}
		if _, err := s.List(context.Background(), ""); err != nil {
			t.Errorf("page %d: the store opened but List failed: %v", pg, err)
		}
		s.Close()
	}
	if refused < 2 {
		t.Fatalf("only %d of %d overwritten pages refused", refused, len(data)/4096)
	}
	t.Logf("%d of %d overwritten pages refused", refused, len(data)/4096)
}

// TestDamagedRecordsRefused writes records whose page tree is sound but
// whose contents the store cannot decode: Open refuses each, rather than
// failing in List or panicking in the lease goroutine later.
func TestDamagedRecordsRefused(t *testing.T) {
	cases := map[string]func(tx *bolt.Tx) error{
		"EmptyRecord": func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("kv")).Put([]byte("commits/dot/0000"), nil)
		},
		"ShortRecord": func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("kv")).Put([]byte("commits/dot/0001"), []byte("short"))
		},
		"NestedBucket": func(tx *bolt.Tx) error {
			_, err := tx.Bucket([]byte("kv")).CreateBucket([]byte("dots/x"))
			return err
		},
		"ShortLease": func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("leases")).Put(bytes.Repeat([]byte{0}, 8), []byte{1, 2, 3})
		},
		"ShortLeaseKey": func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("lease_keys")).Put([]byte{1}, nil)
		},
	}
	for name, damage := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "registry.db")
			if err := os.WriteFile(path, healthyRegistry(t, 20), 0o600); err != nil {
				t.Fatal(err)
			}
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(damage); err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			assertOpenRefused(t, data)
		})
	}
}

func TestValidateAcceptsHealthyAndMissing(t *testing.T) {
	dir := t.TempDir()
	if err := bboltstore.Validate(filepath.Join(dir, "missing.db")); err != nil {
		t.Fatalf("missing file: %v", err)
	}
	path := filepath.Join(dir, "registry.db")
	if err := os.WriteFile(path, healthyRegistry(t, 300), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := bboltstore.Validate(path); err != nil {
		t.Fatalf("healthy file: %v", err)
	}
}

// FuzzValidate opens arbitrary files as a registry: an error or a working
// store, never a crash.
func FuzzValidate(f *testing.F) {
	data := healthyRegistry(f, 40) // a few pages: the fuzzer minimises each new input at length
	f.Add(data)
	f.Add(data[:8192])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, d []byte) {
		path := filepath.Join(t.TempDir(), "registry.db")
		if err := os.WriteFile(path, d, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := bboltstore.Open(path, bboltstore.Options{NoSync: true})
		if err != nil {
			if !errors.Is(err, dotmesh.ErrCorrupt) && !errors.Is(err, dotmesh.ErrUnavailable) {
				t.Fatalf("Open: %v", err)
			}
			return
		}
		defer s.Close()
		if _, err := s.List(context.Background(), ""); err != nil {
			t.Fatalf("List after a clean open: %v", err)
		}
	})
}

// TestKeysOutOfOrderRefused: keys that break the B+tree's order are
// refused by Validate itself. bbolt's free-list rebuild at open reports
// them from a goroutine that outlives the failed open and then crashes
// the process (FuzzValidate found it), so they must never reach bbolt.
func TestKeysOutOfOrderRefused(t *testing.T) {
	data := healthyRegistry(t, 300)
	const ps = 4096
	root := kvRoot(t, data) * ps
	if flags := nativeUint16(data[root+8:]); flags != 0x01 {
		t.Fatalf("the kv bucket's root page has flags %#x, want a branch", flags)
	}
	// branchKey and leafKey give the bytes of element i's key (in place).
	branchKey := func(d []byte, page int64, i int) []byte {
		at := page + 16 + int64(i)*16
		pos, ksize := int64(nativeUint32(d[at:])), int64(nativeUint32(d[at+4:]))
		return d[at+pos : at+pos+ksize]
	}
	leafKey := func(d []byte, page int64, i int) []byte {
		at := page + 16 + int64(i)*16
		pos, ksize := int64(nativeUint32(d[at+4:])), int64(nativeUint32(d[at+8:]))
		return d[at+pos : at+pos+ksize]
	}
	firstLeaf := func(d []byte) int64 { return int64(nativeUint64(d[root+16+8:])) * ps }
	cases := map[string]func(d []byte){
		"DuplicateLeafKey": func(d []byte) {
			copy(leafKey(d, firstLeaf(d), 1), leafKey(d, firstLeaf(d), 0))
		},
		"LeafKeyPastItsBranch": func(d []byte) {
			leaf := firstLeaf(d)
			k := leafKey(d, leaf, int(nativeUint16(d[leaf+10:]))-1)
			copy(k[len(k)-4:], "9999")
		},
		"BranchKeysOutOfOrder": func(d []byte) {
			copy(branchKey(d, root, 1), branchKey(d, root, 0))
		},
	}
	for name, damage := range cases {
		t.Run(name, func(t *testing.T) {
			d := bytes.Clone(data)
			damage(d)
			if bytes.Equal(d, data) {
				t.Fatal("the damage changed nothing")
			}
			path := filepath.Join(t.TempDir(), "registry.db")
			if err := os.WriteFile(path, d, 0o600); err != nil {
				t.Fatal(err)
			}
			err := bboltstore.Validate(path)
			if !errors.Is(err, dotmesh.ErrCorrupt) || !strings.Contains(err.Error(), "key") {
				t.Fatalf("Validate: %v, want ErrCorrupt about a key", err)
			}
			assertRefused(t, d)
		})
	}
}

func nativeUint16(b []byte) uint16 { return binary.NativeEndian.Uint16(b) }
func nativeUint32(b []byte) uint32 { return binary.NativeEndian.Uint32(b) }
func nativeUint64(b []byte) uint64 { return binary.NativeEndian.Uint64(b) }
