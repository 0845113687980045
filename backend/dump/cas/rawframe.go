package cas

import (
	"encoding/binary"
	"slices"
)

// RawFrame returns the stored form of plain kept uncompressed, appended to
// dst[:0]: a zstd frame (RFC 8878) of raw blocks, which Decode reads like
// any other. For content that does not compress (a bucket stores such
// chunks raw), it costs a copy where Compress would search for matches
// in vain; Batch.WriteRaw spares even the copy. plain must be at most
// MaxObjectSize bytes.
func RawFrame(plain, dst []byte) []byte {
	parts, _ := rawFrameParts(plain, nil, nil)
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	dst = slices.Grow(dst[:0], n)
	for _, p := range parts {
		dst = append(dst, p...)
	}
	return dst
}

// rawMaxBlock is the largest block the zstd format allows.
const rawMaxBlock = 128 << 10

// rawFrameParts appends to parts the pieces of plain's raw frame, in
// order: its headers, built in hdr (appended to hdr[:0], returned for
// reuse), between blocks that are slices of plain itself.
func rawFrameParts(plain, hdr []byte, parts [][]byte) ([][]byte, []byte) {
	blocks := max(1, (len(plain)+rawMaxBlock-1)/rawMaxBlock)
	// The headers' room first, so that the slices of hdr taken below
	// stay in one array.
	if cap(hdr) < 9+3*blocks {
		hdr = make([]byte, 0, 9+3*blocks)
	}
	hdr = append(hdr[:0], 0x28, 0xb5, 0x2f, 0xfd) // magic
	// Frame header: single segment (the content size stands for the
	// window), a 4-byte content size, no checksum, no dictionary.
	hdr = append(hdr, 2<<6|1<<5)
	hdr = binary.LittleEndian.AppendUint32(hdr, uint32(len(plain)))
	start := 0
	for i := 0; i < blocks; i++ {
		b := plain[min(i*rawMaxBlock, len(plain)):min((i+1)*rawMaxBlock, len(plain))]
		h := uint32(len(b)) << 3 // block type 0: raw
		if i == blocks-1 {
			h |= 1 // the last block
		}
		hdr = append(hdr, byte(h), byte(h>>8), byte(h>>16))
		parts = append(parts, hdr[start:len(hdr)])
		start = len(hdr)
		if len(b) > 0 {
			parts = append(parts, b)
		}
	}
	return parts, hdr
}
