// Package delta encodes one byte string as a difference against another
// (the base), for sending a changed chunk to a peer that holds an older
// version of it.
//
// Format:
//
//	delta = size:uvarint op*
//	op    = (n<<1 | 0):uvarint data:[n]byte        INSERT n literal bytes
//	      | (n<<1 | 1):uvarint offset:uvarint      COPY n bytes of base from offset
//
// with n > 0; the ops produce exactly size bytes. Encode indexes the base
// at aligned blocks and scans the target with a rolling hash, extending
// every verified hit both ways, so an in-place overwrite costs about the
// bytes overwritten and an insertion or deletion about the bytes
// inserted, each plus a few bytes of ops. Both directions are O(n).
package delta

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
)

// ErrInvalid marks a delta that is malformed or does not fit its base.
var ErrInvalid = errors.New("invalid delta")

// blockSize is the granularity at which the base is indexed: the shortest
// match Encode is sure to find. Smaller finds shorter matches after a
// change but makes the index bigger.
const blockSize = 32

// Rolling hash: a polynomial over blockSize bytes, mod 2^32.
const (
	prime  = 0x01000193
	prime4 = uint32(prime * prime * prime * prime & 0xffffffff)
)

// primePow is prime^(blockSize-1), what the outgoing byte weighs.
var primePow = func() uint32 {
	p := uint32(1)
	for i := 1; i < blockSize; i++ {
		p *= prime
	}
	return p
}()

// hashBlock hashes p[:blockSize] in four interleaved lanes, which the CPU
// runs in parallel: the same value as rolling over the bytes one by one.
func hashBlock(p []byte) uint32 {
	p = p[:blockSize]
	var a, b, c, d uint32
	for i := 0; i < blockSize; i += 4 {
		a = a*prime4 + uint32(p[i])
		b = b*prime4 + uint32(p[i+1])
		c = c*prime4 + uint32(p[i+2])
		d = d*prime4 + uint32(p[i+3])
	}
	return ((a*prime+b)*prime+c)*prime + d
}

// Encode returns the delta that turns base into target, appended to dst.
// Matches are looked up in the first maxIndexed bytes of base only.
func Encode(dst, base, target []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(target)))
	if len(target) == 0 {
		return dst
	}
	if len(base) < blockSize || len(target) < blockSize {
		return appendInsert(dst, target)
	}
	x := newIndex(base)
	lit := 0 // start of the bytes not yet emitted
	i := 0
	h := hashBlock(target)
	for {
		if o := x.find(h, target[i:]); o >= 0 {
			// Extend the match backwards over pending literals, then
			// forwards as far as it goes.
			start := i
			for start > lit && o > 0 && target[start-1] == base[o-1] {
				start--
				o--
			}
			n := i - start + blockSize
			n += matchLen(base[o+n:], target[start+n:])
			if start > lit {
				dst = appendInsert(dst, target[lit:start])
			}
			dst = binary.AppendUvarint(dst, uint64(n)<<1|1)
			dst = binary.AppendUvarint(dst, uint64(o))
			i = start + n
			lit = i
			if i+blockSize > len(target) {
				break
			}
			h = hashBlock(target[i:])
			continue
		}
		if i+blockSize >= len(target) {
			break
		}
		h = (h-uint32(target[i])*primePow)*prime + uint32(target[i+blockSize])
		i++
	}
	if lit < len(target) {
		dst = appendInsert(dst, target[lit:])
	}
	return dst
}

// index finds the base's aligned blocks by content.
type index struct {
	base []byte
	// Open-addressed, at most half full, of entries tag | block+1, where
	// tag is the block hash's bits above idxBits: comparing tags first
	// spares most byte comparisons (and reading the base).
	table []uint32
	shift uint
	mask  uint32
	// A bit per 16 blocks' worth of hashes, small enough to stay in
	// cache: most positions of a changed region miss it and never touch
	// the table.
	filter []uint64
	fshift uint
}

const (
	idxBits    = 20
	maxIndexed = (1<<idxBits - 1) * blockSize
)

func newIndex(base []byte) *index {
	nblocks := min(len(base), maxIndexed) / blockSize
	x := &index{base: base}
	x.shift = 32 - uint(bits.Len(uint(2*nblocks)))
	x.table = make([]uint32, 1<<(32-x.shift))
	x.mask = uint32(len(x.table) - 1)
	x.fshift = 32 - uint(bits.Len(uint(16*nblocks)))
	x.filter = make([]uint64, max(1, (1<<(32-x.fshift))/64))
	for blk := nblocks - 1; blk >= 0; blk-- {
		// Backwards, so that equal blocks map to the first one.
		p := base[blk*blockSize:]
		h := hashBlock(p)
		tag := h >> idxBits << idxBits
		slot := (h * 0x9E3779B1) >> x.shift
		for e := x.table[slot]; e != 0 && (e&^(1<<idxBits-1) != tag || !equalBlock(x.block(e), p)); e = x.table[slot] {
			slot = (slot + 1) & x.mask
		}
		x.table[slot] = tag | uint32(blk+1)
		f := (h * 0x85EBCA6B) >> x.fshift
		x.filter[f/64] |= 1 << (f % 64)
	}
	return x
}

func (x *index) block(e uint32) []byte {
	return x.base[(int(e&(1<<idxBits-1))-1)*blockSize:]
}

// find returns the offset of a base block equal to p[:blockSize], whose
// hash is h, or -1.
func (x *index) find(h uint32, p []byte) int {
	if f := (h * 0x85EBCA6B) >> x.fshift; x.filter[f/64]&(1<<(f%64)) == 0 {
		return -1
	}
	tag := h >> idxBits << idxBits
	for slot := (h * 0x9E3779B1) >> x.shift; ; slot = (slot + 1) & x.mask {
		e := x.table[slot]
		if e == 0 {
			return -1
		}
		if e&^(1<<idxBits-1) == tag && equalBlock(x.block(e), p) {
			return (int(e&(1<<idxBits-1)) - 1) * blockSize
		}
	}
}

func equalBlock(a, b []byte) bool {
	return string(a[:blockSize]) == string(b[:blockSize])
}

// matchLen is the length of the common prefix of a and b.
func matchLen(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for ; i+8 <= n; i += 8 {
		if x := binary.LittleEndian.Uint64(a[i:]) ^ binary.LittleEndian.Uint64(b[i:]); x != 0 {
			return i + bits.TrailingZeros64(x)/8
		}
	}
	for i < n && a[i] == b[i] {
		i++
	}
	return i
}

func appendInsert(dst, p []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(p))<<1)
	return append(dst, p...)
}

// Size returns the length of the result delta describes, without
// checking the rest.
func Size(delta []byte) (uint64, error) {
	size, n := binary.Uvarint(delta)
	if n <= 0 {
		return 0, fmt.Errorf("%w: no size", ErrInvalid)
	}
	return size, nil
}

// Apply returns the result of applying delta to base, appended to
// dst[:0]. It fails, allocating nothing, if the result would exceed max
// bytes, and fails on any op that reads outside base or the delta or
// writes past the stated size.
func Apply(dst, base, delta []byte, max int) ([]byte, error) {
	size, n := binary.Uvarint(delta)
	if n <= 0 {
		return nil, fmt.Errorf("%w: no size", ErrInvalid)
	}
	if size > uint64(max) {
		return nil, fmt.Errorf("%w: result of %d bytes exceeds the %d limit", ErrInvalid, size, max)
	}
	delta = delta[n:]
	out := dst[:0]
	if uint64(cap(out)) < size {
		out = make([]byte, 0, size)
	}
	for len(delta) > 0 {
		op, n := binary.Uvarint(delta)
		if n <= 0 {
			return nil, fmt.Errorf("%w: bad op at %d bytes from the end", ErrInvalid, len(delta))
		}
		delta = delta[n:]
		l := op >> 1
		if l == 0 || l > size-uint64(len(out)) {
			return nil, fmt.Errorf("%w: op of %d bytes with %d of the %d-byte result left", ErrInvalid, l, size-uint64(len(out)), size)
		}
		if op&1 == 0 {
			if l > uint64(len(delta)) {
				return nil, fmt.Errorf("%w: insert of %d bytes with %d left in the delta", ErrInvalid, l, len(delta))
			}
			out = append(out, delta[:l]...)
			delta = delta[l:]
			continue
		}
		off, n := binary.Uvarint(delta)
		if n <= 0 {
			return nil, fmt.Errorf("%w: bad copy offset", ErrInvalid)
		}
		delta = delta[n:]
		if off > uint64(len(base)) || l > uint64(len(base))-off {
			return nil, fmt.Errorf("%w: copy of %d bytes at %d outside the %d-byte base", ErrInvalid, l, off, len(base))
		}
		out = append(out, base[off:off+l]...)
	}
	if uint64(len(out)) != size {
		return nil, fmt.Errorf("%w: ops make %d bytes, the delta says %d", ErrInvalid, len(out), size)
	}
	return out, nil
}
