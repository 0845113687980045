package btrfs

import "log/slog"

// Name is the key the backend registers under; dots record it.
const Name = "btrfs"

// DefaultPoolSize is the size of the sparse image file made when DataDir is
// not on btrfs.
const DefaultPoolSize int64 = 10 << 30

// minPoolSize is what mkfs.btrfs accepts with its default profiles, with
// some room for data.
const minPoolSize int64 = 256 << 20

// Options configure Open.
type Options struct {
	// DataDir holds the backend's data. When it is on btrfs the layout lives
	// directly in it; otherwise a file-backed image DataDir/btrfs.img is
	// created (once) and loop-mounted at DataDir/btrfs.
	DataDir string
	// PoolSize is the size of a new image file; 0 means DefaultPoolSize.
	// The file is sparse, so only what is used takes disk space.
	PoolSize int64
	// Logger receives structured logs; nil means slog.Default().
	Logger *slog.Logger
}
