package bboltstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// newestMeta returns the meta page of the file at path with the highest
// transaction id.
func newestMeta(t *testing.T, path string) boltMeta {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m0, ok0 := parseMeta(b, 0)
	if !ok0 {
		t.Fatalf("%s: meta page 0 is not valid", path)
	}
	m1, ok1 := parseMeta(b[m0.pageSize:], 1)
	if ok1 && m1.txid > m0.txid {
		return m1
	}
	return m0
}

// TestFreeListNotStored checks that the store writes no free list page
// (NoFreelistSync), and that files with and without one open both ways:
// a file an earlier dm (or plain bbolt) wrote with a free list opens,
// keeps its data and frees pages again; plain bbolt opens ours.
func TestFreeListNotStored(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cluster.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Enough to span pages, then deletes so that pages are freed.
	big := make([]byte, 3000)
	for i := range 200 {
		if _, err := s.Put(ctx, fmt.Sprintf("k/%03d", i), big); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 150 {
		if err := s.Delete(ctx, fmt.Sprintf("k/%03d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if m := newestMeta(t, path); m.freelist != noFreelist {
		t.Fatalf("the store wrote a free list page (%d); want none", m.freelist)
	}

	// Plain bbolt, as an earlier dm opened it: it rebuilds the list and
	// stores it with its next transaction.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatalf("plain bbolt cannot open the store's file: %v", err)
	}
	if err := db.Update(func(*bolt.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if m := newestMeta(t, path); m.freelist == noFreelist {
		t.Fatal("plain bbolt stored no free list: the check below would not test a file with one")
	}

	s, err = Open(path, Options{})
	if err != nil {
		t.Fatalf("opening a file with a stored free list: %v", err)
	}
	defer s.Close()
	for i := 150; i < 200; i++ {
		kv, err := s.Get(ctx, fmt.Sprintf("k/%03d", i))
		if err != nil || len(kv.Value) != len(big) {
			t.Fatalf("k/%03d after reopening: %v", i, err)
		}
	}
	for i := 150; i < 200; i++ {
		if err := s.Delete(ctx, fmt.Sprintf("k/%03d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Put(ctx, "k/last", big); err != nil {
		t.Fatal(err)
	}
	if m := newestMeta(t, path); m.freelist != noFreelist {
		t.Fatalf("after writing to a file that had a free list, the store wrote one (%d); want none", m.freelist)
	}
}
