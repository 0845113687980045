package dotmesh

import "sync"

// decodedRecords keeps the records listings decoded, by key and the
// revision they were read at, so that a record unchanged since the last
// listing is not decoded again: decoding every dot's and branch's JSON
// record was the largest part of a 1,001-dot listing's node CPU once
// the usage of empty trees cost nothing. A revision names one value of
// a key (both stores number every write), so an equal revision is an
// equal record; revision 0 (a store that does not say) is never kept.
// Each listing keeps exactly the keys it read, so deleted keys go.
type decodedRecords[T any] struct {
	mu sync.Mutex
	m  map[string]decodedRecord[T]
}

type decodedRecord[T any] struct {
	rev int64
	v   *T
}

// decode returns kvs decoded, in order: copies of the kept records where
// their revision is the one kept (callers may change what they get).
func (c *decodedRecords[T]) decode(kvs []KV) ([]*T, error) {
	c.mu.Lock()
	old := c.m
	c.mu.Unlock()
	next := make(map[string]decodedRecord[T], len(kvs))
	out := make([]*T, len(kvs))
	vals := make([]T, len(kvs))
	for i, kv := range kvs {
		r, ok := old[kv.Key]
		if !ok || r.rev != kv.Revision || kv.Revision == 0 {
			v, err := decode[T](kv)
			if err != nil {
				return nil, err
			}
			r = decodedRecord[T]{rev: kv.Revision, v: v}
		}
		if kv.Revision != 0 {
			next[kv.Key] = r
		}
		vals[i] = *r.v
		out[i] = &vals[i]
	}
	c.mu.Lock()
	c.m = next
	c.mu.Unlock()
	return out, nil
}
