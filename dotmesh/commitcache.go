package dotmesh

import (
	"bytes"
	"maps"
	"sync"
)

// commitCache keeps decoded commit records, so that a long history is not
// decoded again on every log: decoding is most of a log's time. A record
// is immutable once written, and an entry serves only a record of the
// same key whose stored bytes are equal, so it is never stale, whatever
// the store did meanwhile (a rewrite, a rebuilt registry). Callers get
// copies: what they change (Pruned, the maps) never reaches the cache.
type commitCache struct {
	mu       sync.Mutex
	max      int // bytes of records kept
	size     int
	byKey    map[string]cachedCommit
	hits     int // for tests
	decoding int // misses, for tests
	// plain remembers the records plainRecord accepted, by key: their
	// revision and length. A key's revision changes with every write of
	// it, so a record of the same key, revision and length is the one
	// checked, and a log of 10,000 commits does not check 5 MB of JSON
	// again on every request (a quarter of its node time).
	plain map[string]plainStamp
}

type plainStamp struct {
	rev int64
	n   int
}

// maxPlain bounds the records plain remembers (some 100 bytes each).
const maxPlain = 1 << 17

// plainRecord is the package's plainRecord, remembered per record.
func (cc *commitCache) plainRecord(kv KV) bool {
	if cc == nil || kv.Revision <= 0 {
		return plainRecord(kv.Value)
	}
	st := plainStamp{rev: kv.Revision, n: len(kv.Value)}
	cc.mu.Lock()
	ok := cc.plain[kv.Key] == st
	cc.mu.Unlock()
	if ok {
		return true
	}
	if !plainRecord(kv.Value) {
		return false
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.plain == nil || len(cc.plain) >= maxPlain {
		cc.plain = make(map[string]plainStamp)
	}
	cc.plain[kv.Key] = st
	return true
}

type cachedCommit struct {
	value []byte
	c     *Commit
}

// commitCacheBytes bounds the records kept: some 17,000 commits of 500 bytes.
const commitCacheBytes = 8 << 20

func newCommitCache(max int) *commitCache {
	return &commitCache{max: max, byKey: map[string]cachedCommit{}}
}

// decode returns the commit record kv holds, decoded once per key and value.
func (cc *commitCache) decode(kv KV) (*Commit, error) {
	if cc == nil {
		return decode[Commit](kv)
	}
	cc.mu.Lock()
	e, ok := cc.byKey[kv.Key]
	if ok && bytes.Equal(e.value, kv.Value) {
		cc.hits++
		cc.mu.Unlock()
		return cloneCommit(e.c), nil
	}
	cc.decoding++
	cc.mu.Unlock()
	c, err := decode[Commit](kv)
	if err != nil || len(kv.Value) > cc.max/4 {
		return c, err
	}
	e = cachedCommit{value: bytes.Clone(kv.Value), c: cloneCommit(c)}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if old, ok := cc.byKey[kv.Key]; ok {
		delete(cc.byKey, kv.Key)
		cc.size -= len(old.value)
	}
	// Full: drop arbitrary entries (map order) down to 3/4, which keeps
	// adding cheap; a history longer than the cache is decoded as before.
	if cc.size+len(e.value) > cc.max {
		for k, old := range cc.byKey {
			if cc.size+len(e.value) <= cc.max*3/4 {
				break
			}
			delete(cc.byKey, k)
			cc.size -= len(old.value)
		}
	}
	cc.byKey[kv.Key] = e
	cc.size += len(e.value)
	return c, nil
}

func cloneCommit(c *Commit) *Commit {
	out := *c
	out.Metadata = maps.Clone(c.Metadata)
	out.Info = maps.Clone(c.Info)
	return &out
}
