package zfs

import (
	"io"

	"github.com/dotmesh-io/dotmesh/backend/framing"
)

// The stream Send writes and Receive reads wraps the zfs send stream in
// the checksummed framing of package framing, with magic
// "DMZFS\x00\x00\x01" and kind 'F' (full) or 'I' (incremental).
//
// zfs receive checks its own stream checksum, but Receive must not let
// anything become visible before the whole transfer is known intact, and
// the ids must be bound to the data. The trailer provides both: Receive
// holds back the end of the zfs stream (see holdback) until the trailer
// has been verified.
var streamFormat = framing.Format{
	Name:        "zfs stream",
	Magic:       "DMZFS\x00\x00\x01",
	Full:        'F',
	Incremental: 'I',
}

// holdback passes writes on to w except the last keep bytes, which reach w
// only on Flush. Receive flushes after the trailer has been verified: the
// held bytes include the zfs END record, without which zfs receive
// completes nothing, so an unverified stream never becomes a snapshot.
type holdback struct {
	w    io.Writer
	keep int
	buf  []byte
}

func (h *holdback) Write(p []byte) (int, error) {
	n := len(p)
	if over := len(h.buf) + len(p) - h.keep; over > 0 {
		// Pass on the oldest bytes: the held ones first, then p itself
		// (not copied).
		if k := min(over, len(h.buf)); k > 0 {
			if _, err := h.w.Write(h.buf[:k]); err != nil {
				return 0, err
			}
			h.buf = append(h.buf[:0], h.buf[k:]...)
			over -= k
		}
		if over > 0 {
			if _, err := h.w.Write(p[:over]); err != nil {
				return 0, err
			}
			p = p[over:]
		}
	}
	h.buf = append(h.buf, p...)
	return n, nil
}

func (h *holdback) Flush() error {
	_, err := h.w.Write(h.buf)
	h.buf = h.buf[:0]
	return err
}
