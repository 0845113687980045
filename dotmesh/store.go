package dotmesh

import (
	"context"
	"time"
)

// ClusterStore is the registry every node of a cluster shares: dots,
// branches, commit metadata, nodes, branch-master leases and transfers.
//
// It is a small key-value contract that both bbolt (one node) and etcd
// (many nodes) implement, and that the conformance suite in
// cluster/storetest checks:
//
//   - Keys are '/'-separated strings; values are opaque bytes.
//   - Every successful write increments one store-wide revision. A key's
//     Revision is the store revision of its last write (etcd's ModRevision).
//   - Txn is atomic: either every condition holds and every op is applied
//     at one new revision, or nothing changes and ErrConflict is returned.
//   - Watch delivers every change under a prefix made after it returned,
//     in revision order, until ctx ends (then the channel is closed). To
//     follow a prefix without missing anything, Watch first, then List, and
//     apply only events newer than the Revision List showed for that key.
//     A channel closed before ctx ended means the watch was lost (a slow
//     consumer, an etcd compaction): Watch and List again.
//   - A key written with a lease disappears when the lease expires or is
//     revoked. A plain Put or a Txn op without a lease detaches the key
//     from its lease, as in etcd. Stores may round TTLs up (etcd: whole
//     seconds, at least a few), so callers use TTLs of seconds.
//   - Empty keys, and a Txn that writes one key twice, are rejected with
//     ErrInvalidArgument. Writes that change nothing (deleting a missing
//     key) may or may not advance the revision.
//
// Errors: ErrNotFound for missing keys or leases, ErrConflict for failed
// conditions, ErrUnavailable when the store cannot be reached.
type ClusterStore interface {
	// Get returns the key, or ErrNotFound.
	Get(ctx context.Context, key string) (KV, error)
	// List returns every key with the prefix, sorted by key.
	List(ctx context.Context, prefix string) ([]KV, error)
	// Put writes the key unconditionally and returns the new revision.
	Put(ctx context.Context, key string, value []byte) (int64, error)
	// Delete removes the key unconditionally; a missing key is no error.
	Delete(ctx context.Context, key string) error
	// Txn applies ops atomically if every condition holds, returning the
	// new revision, or ErrConflict naming the first failed condition.
	Txn(ctx context.Context, conds []Condition, ops []Op) (int64, error)
	// Watch streams changes under prefix made after the call returned.
	Watch(ctx context.Context, prefix string) (<-chan Event, error)

	// Grant creates a lease that expires after ttl unless kept alive.
	Grant(ctx context.Context, ttl time.Duration) (LeaseID, error)
	// KeepAlive renews a lease for another ttl; ErrNotFound once expired.
	KeepAlive(ctx context.Context, id LeaseID) error
	// Revoke ends a lease now, deleting its keys.
	Revoke(ctx context.Context, id LeaseID) error

	Close() error
}

// KV is one stored key.
type KV struct {
	Key      string
	Value    []byte
	Revision int64
	Lease    LeaseID
}

// LeaseID identifies a lease; 0 means none.
type LeaseID int64

// Condition guards a Txn on the revision of one key.
type Condition struct {
	Key string
	// Revision the key must have; 0 means the key must not exist.
	Revision int64
}

// Op is one write in a Txn.
type Op struct {
	Key    string
	Value  []byte
	Delete bool
	Lease  LeaseID
}

// PutOp and DeleteOp build Ops.
func PutOp(key string, value []byte) Op { return Op{Key: key, Value: value} }
func DeleteOp(key string) Op            { return Op{Key: key, Delete: true} }

// IfRevision and IfAbsent build Conditions.
func IfRevision(key string, rev int64) Condition { return Condition{Key: key, Revision: rev} }
func IfAbsent(key string) Condition              { return Condition{Key: key} }

// EventType says what happened to a watched key.
type EventType int

const (
	EventPut EventType = iota + 1
	EventDelete
)

func (t EventType) String() string {
	switch t {
	case EventPut:
		return "put"
	case EventDelete:
		return "delete"
	}
	return "unknown"
}

// Event is one change seen by Watch. For deletes, KV.Value is empty and
// KV.Revision is the revision of the delete.
type Event struct {
	Type EventType
	KV   KV
}

// Scanner is an optional ClusterStore capability: Scan calls fn with every
// key under prefix and its value, in key order, as one snapshot, without
// copying them. key and value are valid only during the call. An error from
// fn ends the scan and Scan returns it. A store that reads values from
// memory it maps (bbolt) implements it, so that a walk over thousands of
// records that keeps a few bytes of each (ids and parents of commits)
// allocates only those.
type Scanner interface {
	Scan(ctx context.Context, prefix string, fn func(key, value []byte) error) error
}

// CachedLister is an optional ClusterStore capability for listings shown
// to people (ListDots): List answered from a copy in memory that a watch
// keeps current (etcd), where List is a round trip reading every key. It
// shows every write made through this store before the call; a write by
// another client shows once the watch delivered it (milliseconds, as a
// replicating node learns of commits). When the copy is behind this
// store's own writes, or its watch is lost, it reads as List does.
// Callers must not change the values they get.
type CachedLister interface {
	ListCached(ctx context.Context, prefix string) ([]KV, error)
}

// listCached is CachedLister.ListCached where s has it, else List.
func listCached(ctx context.Context, s ClusterStore, prefix string) ([]KV, error) {
	if cl, ok := s.(CachedLister); ok {
		return cl.ListCached(ctx, prefix)
	}
	return s.List(ctx, prefix)
}

// KeyLister is an optional ClusterStore capability: the keys under a
// prefix, sorted, without their values (etcd: a keys-only ranged read).
type KeyLister interface {
	ListKeys(ctx context.Context, prefix string) ([]string, error)
}

// keysUnder returns the keys under prefix, reading keys only where the
// store can.
func keysUnder(ctx context.Context, s ClusterStore, prefix string) ([]string, error) {
	if kl, ok := s.(KeyLister); ok {
		return kl.ListKeys(ctx, prefix)
	}
	var out []string
	err := scanPrefix(ctx, s, prefix, func(key, _ []byte) error {
		out = append(out, string(key))
		return nil
	})
	return out, err
}

// scanPrefix is Scanner.Scan where s has it, else List and fn on each.
func scanPrefix(ctx context.Context, s ClusterStore, prefix string, fn func(key, value []byte) error) error {
	if sc, ok := s.(Scanner); ok {
		return sc.Scan(ctx, prefix, fn)
	}
	kvs, err := s.List(ctx, prefix)
	if err != nil {
		return err
	}
	for _, kv := range kvs {
		if err := fn([]byte(kv.Key), kv.Value); err != nil {
			return err
		}
	}
	return nil
}
