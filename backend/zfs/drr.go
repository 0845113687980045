package zfs

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Just enough of the ZFS send stream format (dmu_replay_record) to read a
// stream's BEGIN record and to tell whether an incremental stream changes
// anything. The record header is the same 312 bytes in every stream
// version zfs-fuse and OpenZFS write.
const (
	drrHeaderLen = 312
	drrMagic     = 0x2F5bacbac

	drrBegin       = 0
	drrFreeObjects = 2
	drrFree        = 4
	drrEnd         = 5

	drrFlagClone = 1 << 0 // an incremental whose source is the origin of a clone
)

// beginRecord is what a stream's first record says.
type beginRecord struct {
	order      binary.ByteOrder
	payloadLen uint32
	flags      uint32
	toGUID     uint64
	fromGUID   uint64 // 0 for a full stream
}

func (r beginRecord) full() bool  { return r.fromGUID == 0 }
func (r beginRecord) clone() bool { return r.flags&drrFlagClone != 0 }

var errNotStream = fmt.Errorf("%w: not a ZFS send stream", dotmesh.ErrCorrupt)

// parseBegin decodes the BEGIN record at the start of a stream. The
// sender's byte order is detected from the magic number.
func parseBegin(h []byte) (beginRecord, error) {
	if len(h) < drrHeaderLen {
		return beginRecord{}, errNotStream
	}
	var r beginRecord
	switch {
	case binary.LittleEndian.Uint64(h[8:]) == drrMagic:
		r.order = binary.LittleEndian
	case binary.BigEndian.Uint64(h[8:]) == drrMagic:
		r.order = binary.BigEndian
	default:
		return beginRecord{}, errNotStream
	}
	if r.order.Uint32(h[0:]) != drrBegin {
		return beginRecord{}, errNotStream
	}
	r.payloadLen = r.order.Uint32(h[4:])
	r.flags = r.order.Uint32(h[36:])
	r.toGUID = r.order.Uint64(h[40:])
	r.fromGUID = r.order.Uint64(h[48:])
	if r.toGUID == 0 {
		return beginRecord{}, errNotStream
	}
	return r, nil
}

// maxBeginPayload bounds the BEGIN record's payload (an nvlist of stream
// features on OpenZFS; empty on zfs-fuse).
const maxBeginPayload = 16 << 20

// inspectIncremental reads an incremental stream from a commit to a
// snapshot of the live filesystem and reports whether the filesystem
// changed, and how many stream bytes the changes take.
//
// An unchanged filesystem yields BEGIN, possibly FREE/FREEOBJECTS records
// (OpenZFS describes trailing free space that way) and END. Any user-
// visible change - written, appended or truncated data, a new, removed or
// renamed entry, mode, owner or time changes - rewrites at least one
// object's dnode, which the stream carries as an OBJECT record (or WRITE
// for directory and data blocks). So the first record of another kind
// means dirty; the rest of the stream is only counted.
func inspectIncremental(r io.Reader) (dirty bool, n int64, err error) {
	h := make([]byte, drrHeaderLen)
	if _, err := io.ReadFull(r, h); err != nil {
		return false, 0, fmt.Errorf("reading stream: %w", err)
	}
	begin, err := parseBegin(h)
	if err != nil {
		return false, 0, err
	}
	if begin.payloadLen > maxBeginPayload {
		return false, 0, errNotStream
	}
	if _, err := io.CopyN(io.Discard, r, int64(begin.payloadLen)); err != nil {
		return false, 0, fmt.Errorf("reading stream: %w", err)
	}
	for {
		if _, err := io.ReadFull(r, h); err != nil {
			return false, 0, fmt.Errorf("reading stream: %w", err)
		}
		switch begin.order.Uint32(h[0:]) {
		case drrEnd:
			_, _ = io.Copy(io.Discard, r)
			return false, 0, nil
		case drrFree, drrFreeObjects:
			continue
		}
		rest, err := io.Copy(io.Discard, r)
		if err != nil {
			return false, 0, fmt.Errorf("reading stream: %w", err)
		}
		// The first changed record (drrHeaderLen) and what follows, less
		// the END record (drrHeaderLen).
		return true, max(rest, 1), nil
	}
}
