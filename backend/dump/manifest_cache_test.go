package dump

import (
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/dump/cas"
)

// TestManifestCache: the last manifestCacheSize manifests by root, the
// one asked for last kept longest, too big ones never kept.
func TestManifestCache(t *testing.T) {
	var c manifestCache
	m := func(b byte, entries int) *storedManifest {
		return &storedManifest{Root: cas.Hash{b}, Manifest: &Manifest{Entries: make([]Entry, entries)}}
	}
	a, b, d := m(1, 1), m(2, 1), m(3, 1)
	c.put(a)
	c.put(b)
	c.put(a) // already there: not twice
	if c.get(a.Root) != a || c.get(b.Root) != b || len(c.recs) != 2 {
		t.Fatalf("cached: %v", c.recs)
	}
	c.get(a.Root) // a is the newest now: d pushes b out
	c.put(d)
	if c.get(b.Root) != nil || c.get(a.Root) != a || c.get(d.Root) != d {
		t.Fatalf("after a third: %v", c.recs)
	}
	big := m(4, manifestCacheEntries/manifestCacheSize+1)
	c.put(big)
	if c.get(big.Root) != nil {
		t.Fatal("a manifest over the entry bound was kept")
	}
}

// TestContentIDs: one chunk is named by its hash, lists by the hash of
// theirs; equal lists name alike, different ones differently.
func TestContentIDs(t *testing.T) {
	one := []Chunk{{Hash: cas.Hash{1}}}
	two := []Chunk{{Hash: cas.Hash{1}}, {Hash: cas.Hash{2}}}
	ids := map[string]bool{}
	for _, cs := range [][]Chunk{nil, one, two, {{Hash: cas.Hash{2}}}, {{Hash: cas.Hash{2}}, {Hash: cas.Hash{1}}}} {
		id := contentID(cs)
		if ids[id] || id != contentID(append([]Chunk(nil), cs...)) {
			t.Fatalf("content id %q of %v is not unique or not stable", id, cs)
		}
		ids[id] = true
	}
}
