package dotmesh

import (
	"errors"
	"testing"
	"time"
)

func commitKV(t *testing.T, key, msg string) KV {
	t.Helper()
	c := Commit{ID: "c1", Dot: "d", Branch: "master", Parent: "p", Author: "a", Time: time.Unix(1, 0).UTC(), Message: msg,
		Metadata: map[string]string{"k": "v"}, Info: CommitInfo{InfoAddedBytes: "1"}}
	return KV{Key: key, Value: encode(&c), Revision: 7}
}

// A cached record comes back equal to a fresh decode, as a copy: what a
// caller changes never reaches the next caller.
func TestCommitCacheReturnsCopies(t *testing.T) {
	cc := newCommitCache(1 << 20)
	kv := commitKV(t, "k1", "one")
	want, err := decode[Commit](kv)
	if err != nil {
		t.Fatal(err)
	}
	a, err := cc.decode(kv)
	if err != nil {
		t.Fatal(err)
	}
	a.Message, a.Pruned, a.Metadata["k"], a.Info[InfoAddedBytes] = "changed", true, "changed", "9"
	b, err := cc.decode(kv)
	if err != nil {
		t.Fatal(err)
	}
	if cc.hits != 1 || cc.decoding != 1 {
		t.Fatalf("hits %d, decodes %d; want 1, 1", cc.hits, cc.decoding)
	}
	if b.Message != want.Message || b.Pruned || b.Metadata["k"] != "v" || b.Info[InfoAddedBytes] != "1" || !b.Time.Equal(want.Time) {
		t.Fatalf("cached commit changed by a caller: %+v", b)
	}
	b.Metadata["k"] = "again"
	if c, _ := cc.decode(kv); c.Metadata["k"] != "v" {
		t.Fatalf("a hit's copy shares its maps: %+v", c)
	}
}

// A record rewritten under the same key, at any revision (even the same,
// as after a rebuilt registry), is decoded anew.
func TestCommitCacheNeverStale(t *testing.T) {
	cc := newCommitCache(1 << 20)
	if _, err := cc.decode(commitKV(t, "k1", "one")); err != nil {
		t.Fatal(err)
	}
	c, err := cc.decode(commitKV(t, "k1", "two"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Message != "two" || cc.hits != 0 {
		t.Fatalf("got %q with %d hits; want the rewritten record", c.Message, cc.hits)
	}
	if c, _ := cc.decode(commitKV(t, "k1", "two")); c.Message != "two" || cc.hits != 1 {
		t.Fatalf("got %q with %d hits; want the rewritten record, cached", c.Message, cc.hits)
	}
	// Bad records are errors every time, never cached.
	for i := 0; i < 2; i++ {
		if _, err := cc.decode(KV{Key: "k2", Value: []byte(`{"id":`)}); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("corrupt record: %v; want ErrCorrupt", err)
		}
	}
	if _, ok := cc.byKey["k2"]; ok {
		t.Fatal("a corrupt record was cached")
	}
}

// The cache holds at most its bound of record bytes; what it dropped
// decodes again, right.
func TestCommitCacheBounded(t *testing.T) {
	one := len(commitKV(t, "k000", "m").Value)
	cc := newCommitCache(10 * one)
	for round := 0; round < 2; round++ {
		for i := 0; i < 40; i++ {
			key := "k" + string(rune('A'+i))
			c, err := cc.decode(commitKV(t, key, key))
			if err != nil {
				t.Fatal(err)
			}
			if c.Message != key {
				t.Fatalf("%s: got message %q", key, c.Message)
			}
			if cc.size > cc.max {
				t.Fatalf("cache holds %d bytes, bound %d", cc.size, cc.max)
			}
		}
	}
	size := 0
	for _, e := range cc.byKey {
		size += len(e.value)
	}
	if size != cc.size || len(cc.byKey) == 0 {
		t.Fatalf("cache counts %d bytes, holds %d in %d entries", cc.size, size, len(cc.byKey))
	}
}
