package dump

import (
	"errors"
	"fmt"

	"github.com/dotmesh-io/dotmesh/backend/dump/cas"
	"github.com/dotmesh-io/dotmesh/backend/dump/internal/delta"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Chunk deltas on the wire: a chunk changed in a few places is a new
// object, but the receiver of an incremental stream holds the chunks it
// replaced, so the stream can carry the difference instead ('D' frames,
// stream.go). Storage stays whole objects; only the wire shrinks.

const (
	// maxDeltaBases bounds the objects one delta is made against: the
	// chunks of the same file in the base commit that overlap the new
	// chunk's byte range, seldom more than two or three.
	maxDeltaBases = 4
	// maxDeltaBaseBytes bounds the bases' total plaintext, on both sides.
	maxDeltaBaseBytes = cas.MaxObjectSize
)

// deltaWorthIt tells whether a delta of dlen bytes is worth sending
// instead of an object stored in slen: clearly smaller, since the
// receiver pays for applying and compressing it.
func deltaWorthIt(dlen, slen int) bool { return dlen < slen/4*3 }

// deltaSources picks, for every object of want that target's manifest
// lists, the objects of base to make its delta against: those at the same
// byte offsets of the same file (or of the encoded manifest).
func deltaSources(target, base *storedManifest, want map[cas.Hash]struct{}) map[cas.Hash][]cas.Hash {
	srcs := make(map[cas.Hash][]cas.Hash)
	pair := func(tc, bc []Chunk) {
		var s, bs uint64 // start offsets of tc[i] and bc[j]
		j := 0
		for _, c := range tc {
			e := s + uint64(c.Size)
			for j < len(bc) && bs+uint64(bc[j].Size) <= s {
				bs += uint64(bc[j].Size)
				j++
			}
			if _, ok := want[c.Hash]; ok && srcs[c.Hash] == nil {
				var picked []cas.Hash
				total := uint64(0)
				for k, ks := j, bs; k < len(bc) && ks < e && len(picked) < maxDeltaBases; k++ {
					if total += uint64(bc[k].Size); total > maxDeltaBaseBytes {
						break
					}
					picked = append(picked, bc[k].Hash)
					ks += uint64(bc[k].Size)
				}
				if len(picked) > 0 {
					srcs[c.Hash] = picked
				}
			}
			s = e
		}
	}
	pair(target.Pieces, base.Pieces)
	files := make(map[string][]Chunk)
	for _, e := range base.Entries {
		if e.Type == TypeFile && len(e.Chunks) > 0 {
			files[e.Path] = e.Chunks
		}
	}
	for _, e := range target.Entries {
		if bc := files[e.Path]; e.Type == TypeFile && bc != nil {
			pair(e.Chunks, bc)
		}
	}
	return srcs
}

// deltaScratch holds one worker's reusable buffers.
type deltaScratch struct {
	base, piece []byte
}

// readBases returns the plaintexts of bases, concatenated, verified and
// bounded by maxDeltaBaseBytes.
func (b *Backend) readBases(bases []cas.Hash, sc *deltaScratch) ([]byte, error) {
	sc.base = sc.base[:0]
	for _, h := range bases {
		var err error
		if sc.piece, err = b.store.Get(h, sc.piece); err != nil {
			return nil, err
		}
		if len(sc.base)+len(sc.piece) > maxDeltaBaseBytes {
			return nil, fmt.Errorf("%w: delta bases total over %d bytes", dotmesh.ErrCorrupt, maxDeltaBaseBytes)
		}
		sc.base = append(sc.base, sc.piece...)
	}
	return sc.base, nil
}

// makeDelta returns a delta of plain (stored in slen bytes) against bases
// when worth sending, else nil. Failing to read a base only costs the
// saving, so it is logged, not returned.
func (b *Backend) makeDelta(h cas.Hash, bases []cas.Hash, plain []byte, slen int, sc *deltaScratch) []byte {
	base, err := b.readBases(bases, sc)
	if err != nil {
		b.log.Warn("cannot send a delta, sending the whole object", "object", h, "err", err)
		return nil
	}
	d := delta.Encode(nil, base, plain)
	if !deltaWorthIt(len(d), slen) {
		return nil
	}
	return d
}

// applyDelta rebuilds object h from a received delta against bases held
// here and checks it. Every failure wraps dotmesh.ErrCorrupt: a peer that
// names a base this node lacks sent a stream this node cannot take.
func (b *Backend) applyDelta(h cas.Hash, bases []cas.Hash, d []byte, out []byte, sc *deltaScratch) ([]byte, error) {
	base, err := b.readBases(bases, sc)
	if errors.Is(err, dotmesh.ErrNotFound) {
		return nil, fmt.Errorf("%w: delta for object %s: base object missing here: %w", dotmesh.ErrCorrupt, h, err)
	}
	if err != nil {
		return nil, fmt.Errorf("delta for object %s: base: %w", h, err)
	}
	out, err = delta.Apply(out, base, d, cas.MaxObjectSize)
	if err != nil {
		return nil, fmt.Errorf("%w: delta for object %s: %w", dotmesh.ErrCorrupt, h, err)
	}
	if cas.Sum(out) != h {
		return nil, fmt.Errorf("%w: delta for object %s makes content of another hash", dotmesh.ErrCorrupt, h)
	}
	return out, nil
}
