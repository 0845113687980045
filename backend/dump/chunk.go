package dump

import (
	"github.com/restic/chunker"
)

// polynomial is the Rabin polynomial of the content-defined chunker. It is
// fixed (an irreducible polynomial of degree 53, picked once at random), so
// chunk boundaries, and therefore deduplication, agree across runs, branches
// and nodes. Changing it would make every existing chunk useless.
const polynomial = chunker.Pol(0x2eb32992146e89)

// chunkParams are the boundaries of one chunker configuration. The chunker
// only looks for a cut after min bytes, so chunks average min + 2^avgBits.
type chunkParams struct {
	min, max uint
	avgBits  int
}

var (
	// fileChunks splits file contents into ~512 KiB chunks (restic: ~1.5
	// MiB), so that pages changed here and there in a database file store
	// about a chunk each. min equals the average past min: the chunker
	// does not roll its hash over the first min bytes of a chunk, so this
	// halves the cost of chunking, the most expensive step of a first
	// commit. Files under min are one chunk and bypass the chunker.
	fileChunks = chunkParams{min: 256 << 10, max: 4 << 20, avgBits: 18}
	// metaChunks splits serialized manifests, which are small and change
	// in a few places at a time.
	metaChunks = chunkParams{min: 16 << 10, max: 1 << 20, avgBits: 16}
)

// newChunker returns a chunker over no input yet; reset arms it.
func newChunker() *chunker.Chunker {
	return chunker.NewWithBoundaries(nil, polynomial, fileChunks.min, fileChunks.max)
}

// resetChunker points c at rd with params p. Reset also resets the split
// mask, so the average has to be set after it every time.
func resetChunker(c *chunker.Chunker, rd interface{ Read([]byte) (int, error) }, p chunkParams) {
	c.ResetWithBoundaries(rd, polynomial, p.min, p.max)
	c.SetAverageBits(p.avgBits)
}
