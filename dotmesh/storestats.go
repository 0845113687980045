package dotmesh

import "context"

// StoreStatter is an optional capability of backends with a shared
// content store (dump): what the store holds, for metrics. It is read
// when asked (a scrape), so it must not rewrite anything.
type StoreStatter interface {
	StoreStats(ctx context.Context) (StoreStats, error)
}

// StoreStats is what a backend's content store holds.
type StoreStats struct {
	// Objects and StoredBytes count the stored objects and the bytes
	// they take in the store (after deduplication and compression).
	Objects     int64 `json:"objects"`
	StoredBytes int64 `json:"stored_bytes"`
	// LogicalBytes sums the file bytes of every stored commit's tree:
	// what restoring each of them would write. LogicalBytes/StoredBytes
	// is the store's saving from deduplication and compression.
	LogicalBytes int64 `json:"logical_bytes"`
}
