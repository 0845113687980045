package dump

import (
	"io"

	"github.com/dotmesh-io/dotmesh/internal/cdc"
)

// Content-defined chunking (package cdc: a gear hash with normalized
// chunking, FastCDC-style). Boundaries depend only on the gear table,
// which is generated from a fixed seed, and on the params below: they
// agree across runs, branches, nodes and versions, which deduplication
// depends on. Changing the table or the params makes every existing
// chunk useless for deduplication (the store stays readable: objects are
// content-addressed, and manifests list chunks by hash and size).
// TestChunkBoundariesAreStable pins them.

var (
	// fileChunks splits file contents into ~512 KiB chunks (restic: ~1.5
	// MiB), so that pages changed here and there in a database file store
	// about a chunk each. The chunker does not hash the first min bytes
	// of a chunk (but for the 64 its first candidate cut depends on), so
	// a large min halves the cost of chunking, the most expensive step of
	// a first commit. Files under min are one chunk and bypass the
	// chunker.
	fileChunks = cdc.Params{Min: 256 << 10, Max: 4 << 20, AvgBits: 18}
	// metaChunks splits serialized manifests, which are small and change
	// in a few places at a time.
	metaChunks = cdc.Params{Min: 16 << 10, Max: 1 << 20, AvgBits: 16}
)

// newChunker returns a chunker over rd with params p; Reset re-arms it.
func newChunker(rd io.Reader, p cdc.Params) *cdc.Chunker {
	return cdc.New(rd, p)
}
