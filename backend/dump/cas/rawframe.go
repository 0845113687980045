package cas

import (
	"encoding/binary"
	"slices"
)

// RawFrame returns the stored form of plain kept uncompressed, appended to
// dst[:0]: a zstd frame (RFC 8878) of raw blocks, which Decode reads like
// any other. For content that does not compress (a bucket stores such
// chunks raw), it costs a copy where Compress would search for matches
// in vain. plain must be at most MaxObjectSize bytes.
func RawFrame(plain, dst []byte) []byte {
	const maxBlock = 128 << 10 // the largest block the format allows
	blocks := max(1, (len(plain)+maxBlock-1)/maxBlock)
	dst = append(dst[:0], 0x28, 0xb5, 0x2f, 0xfd) // magic
	// Frame header: single segment (the content size stands for the
	// window), a 4-byte content size, no checksum, no dictionary.
	dst = append(dst, 2<<6|1<<5)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(plain)))
	dst = slices.Grow(dst, 3*blocks+len(plain))
	for i := 0; i < blocks; i++ {
		b := plain[min(i*maxBlock, len(plain)):min((i+1)*maxBlock, len(plain))]
		h := uint32(len(b)) << 3 // block type 0: raw
		if i == blocks-1 {
			h |= 1 // the last block
		}
		dst = append(dst, byte(h), byte(h>>8), byte(h>>16))
		dst = append(dst, b...)
	}
	return dst
}
