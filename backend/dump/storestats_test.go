package dump

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// StoreStats counts the store's objects and bytes and every commit's
// file bytes: the same MiB in two files and two commits is stored once.
func TestStoreStats(t *testing.T) {
	b := openTest(t)
	st, err := b.StoreStats(ctx)
	if err != nil || st != (dotmesh.StoreStats{}) {
		t.Fatalf("an empty store: %+v %v", st, err)
	}
	br := newBranch(t, b)
	blob := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	writeFile(t, filepath.Join(treeOf(t, b, br), "a"), blob, 0o644)
	writeFile(t, filepath.Join(treeOf(t, b, br), "b"), blob, 0o644)
	commit(t, b, br)
	one, err := b.StoreStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if one.LogicalBytes != 2<<20 || one.Objects == 0 || one.StoredBytes <= 0 || one.StoredBytes >= 1<<20 {
		t.Fatalf("after one commit of two equal MiB: %+v", one)
	}
	commit(t, b, br) // nothing new to store
	two, err := b.StoreStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if two.LogicalBytes != 4<<20 || two.Objects != one.Objects || two.StoredBytes != one.StoredBytes {
		t.Fatalf("after the same commit again: %+v (before: %+v)", two, one)
	}
}

// While a garbage collection holds the store, StoreStats answers
// ErrInUse at once instead of waiting.
func TestStoreStatsDuringGC(t *testing.T) {
	b := openTest(t)
	b.b.gcMu.Lock()
	_, err := b.StoreStats(ctx)
	b.b.gcMu.Unlock()
	if !errors.Is(err, dotmesh.ErrInUse) {
		t.Fatalf("StoreStats during a gc: %v, want ErrInUse", err)
	}
	if _, err := b.StoreStats(ctx); err != nil {
		t.Fatalf("StoreStats after the gc: %v", err)
	}
}
