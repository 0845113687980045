package cas

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/zeebo/blake3"
)

// Objects live in pack files, back to back, each pack with an index
// beside it:
//
//	<id>.pack   "DMPACK1\n", then per object:
//	            hash (32) | stored length (uint32 LE) | stored bytes
//	<id>.idx    "DMIDX1\n\x00" | count (uint32 LE) |
//	            per object, sorted by hash:
//	            hash (32) | offset of the stored bytes (uint64 LE) | stored length (uint32 LE) |
//	            BLAKE3-256 of everything before it (32)
//
// A pack is written whole, fsynced, renamed into packs/, and published by
// renaming its fsynced index in beside it: a pack without an index was
// never published and Open removes it. Records repeat their hash and
// length so that a read checks the index against the pack, and so that a
// damaged index can be rebuilt from its pack. A pack may hold bytes no
// index entry names (objects taken back while staged); Prune reclaims
// them. Prune also punches holes (zeros) where dead objects were in a
// large pack (punch.go): the index no longer names them, and a rebuild
// of the index from the pack skips the zeros.
//
// One file per object would cost an inode per chunk: on ext4 creating an
// inode in a directory where many were recently deleted (as garbage
// collection does) costs half a millisecond of CPU, more than compressing
// the chunk.
const (
	packMagic    = "DMPACK1\n"
	indexMagic   = "DMIDX1\n\x00"
	recordHeader = HashSize + 4
	indexEntry   = HashSize + 8 + 4
	indexHead    = len(indexMagic) + 4
)

// entry locates one object's stored bytes in a pack.
type entry struct {
	h   Hash
	off int64  // of the stored bytes, after the record header
	n   uint32 // stored length
}

func recordHead(h Hash, n int) []byte {
	var hdr [recordHeader]byte
	copy(hdr[:], h[:])
	binary.LittleEndian.PutUint32(hdr[HashSize:], uint32(n))
	return hdr[:]
}

// encodeIndex sorts es by hash and serializes them.
func encodeIndex(es []entry) []byte {
	slices.SortFunc(es, func(a, b entry) int { return bytes.Compare(a.h[:], b.h[:]) })
	b := make([]byte, 0, indexHead+len(es)*indexEntry+HashSize)
	b = append(b, indexMagic...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(es)))
	for _, e := range es {
		b = append(b, e.h[:]...)
		b = binary.LittleEndian.AppendUint64(b, uint64(e.off))
		b = binary.LittleEndian.AppendUint32(b, e.n)
	}
	sum := blake3.Sum256(b)
	return append(b, sum[:]...)
}

var errBadIndex = errors.New("bad pack index")

// decodeIndex parses an index of a pack of packSize bytes. Every entry
// must lie inside the pack past its magic, behind room for its record
// header, and fit the size limit; hashes must be sorted and distinct.
func decodeIndex(b []byte, packSize int64) ([]entry, error) {
	if packSize < 0 || len(b) < indexHead+HashSize || string(b[:len(indexMagic)]) != indexMagic {
		return nil, fmt.Errorf("%w: no index header", errBadIndex)
	}
	body := b[:len(b)-HashSize]
	if sum := blake3.Sum256(body); !bytes.Equal(sum[:], b[len(body):]) {
		return nil, fmt.Errorf("%w: checksum mismatch", errBadIndex)
	}
	count := int64(binary.LittleEndian.Uint32(b[len(indexMagic):]))
	if int64(len(body)-indexHead) != count*indexEntry {
		return nil, fmt.Errorf("%w: %d entries do not fill %d bytes", errBadIndex, count, len(body)-indexHead)
	}
	es := make([]entry, count)
	p := body[indexHead:]
	for i := range es {
		e := &es[i]
		copy(e.h[:], p[:HashSize])
		off := binary.LittleEndian.Uint64(p[HashSize:])
		e.n = binary.LittleEndian.Uint32(p[HashSize+8:])
		p = p[indexEntry:]
		if off < uint64(len(packMagic)+recordHeader) || off > uint64(packSize) || uint64(e.n) > uint64(packSize)-off || e.n > MaxStoredSize {
			return nil, fmt.Errorf("%w: object %s at %d+%d lies outside the %d-byte pack", errBadIndex, e.h, off, e.n, packSize)
		}
		e.off = int64(off)
		if i > 0 && bytes.Compare(es[i-1].h[:], e.h[:]) >= 0 {
			return nil, fmt.Errorf("%w: entries out of order at %s", errBadIndex, e.h)
		}
	}
	return es, nil
}

// scanPack rebuilds a pack's index from its records, stopping at the
// first record that does not fit; a hash seen twice keeps its first
// record. It reads only the record headers, and the zeros of holes.
func scanPack(r io.ReaderAt, size int64) ([]entry, error) {
	var magic [len(packMagic)]byte
	if _, err := r.ReadAt(magic[:], 0); err != nil || string(magic[:]) != packMagic {
		return nil, fmt.Errorf("%w: not a pack", errBadIndex)
	}
	var es []entry
	seen := map[Hash]bool{}
	var hdr [recordHeader]byte
	for off := int64(len(packMagic)); off+recordHeader <= size; {
		if _, err := r.ReadAt(hdr[:], off); err != nil {
			return es, nil
		}
		if hdr == ([recordHeader]byte{}) { // a hole Prune punched (punch.go)
			next, ok := pastHole(r, off, size)
			if !ok {
				break
			}
			off = next
			continue
		}
		var e entry
		copy(e.h[:], hdr[:HashSize])
		e.n = binary.LittleEndian.Uint32(hdr[HashSize:])
		e.off = off + recordHeader
		if e.n > MaxStoredSize || e.off+int64(e.n) > size {
			break
		}
		if !seen[e.h] {
			seen[e.h] = true
			es = append(es, e)
		}
		off = e.off + int64(e.n)
	}
	return es, nil
}

// pastHole finds the record after the hole (zeros) at off: the first
// byte that is not zero starts it, unless its hash begins with zeros, so
// up to 8 earlier starts are tried; a start is taken when its record
// fits and ends the pack, a hole or another record that fits.
func pastHole(r io.ReaderAt, off, size int64) (int64, bool) {
	buf := make([]byte, 64<<10)
	q := int64(-1)
	for at := off; at < size && q < 0; at += int64(len(buf)) {
		n, err := r.ReadAt(buf[:min(int64(len(buf)), size-at)], at)
		for i := 0; i < n; i++ {
			if buf[i] != 0 {
				q = at + int64(i)
				break
			}
		}
		if n == 0 || err != nil && q < 0 {
			return 0, false
		}
	}
	if q < 0 {
		return 0, false
	}
	fits := func(at int64) (int64, bool) {
		var hdr [recordHeader]byte
		if _, err := r.ReadAt(hdr[:], at); err != nil {
			return 0, false
		}
		n := int64(binary.LittleEndian.Uint32(hdr[HashSize:]))
		end := at + recordHeader + n
		return end, n > 0 && n <= MaxStoredSize && end <= size
	}
	for j := int64(0); j <= 8 && q-j >= off; j++ {
		end, ok := fits(q - j)
		if !ok {
			continue
		}
		var next [recordHeader]byte
		if end == size {
			return q - j, true
		}
		if _, err := r.ReadAt(next[:], end); err != nil && end+recordHeader <= size {
			continue
		}
		if _, ok := fits(end); ok || next == ([recordHeader]byte{}) || end+recordHeader > size {
			return q - j, true
		}
	}
	return 0, false
}
