package dotmesh

import "context"

// StoreStatter is an optional capability: what a backend stores, for
// metrics (dump: its content store's chunks; zfs and btrfs: their commit
// snapshots). It is read when asked (a scrape), so it must not rewrite
// anything.
type StoreStatter interface {
	StoreStats(ctx context.Context) (StoreStats, error)
}

// StoreStats is what a backend stores.
type StoreStats struct {
	// Objects and StoredBytes count the stored objects (chunks, or
	// snapshots) and the bytes the store takes (after deduplication and
	// compression, blocks shared by snapshots counted once).
	Objects     int64 `json:"objects"`
	StoredBytes int64 `json:"stored_bytes"`
	// LogicalBytes sums the bytes of every stored commit's tree, each as
	// if it were stored alone: what restoring each would write (dump), or
	// what each snapshot references or allocates (zfs, btrfs).
	// LogicalBytes/StoredBytes is what deduplication, compression and
	// shared blocks save.
	LogicalBytes int64 `json:"logical_bytes"`
}
