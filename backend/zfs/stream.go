package zfs

import (
	"bufio"
	"bytes"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/zeebo/blake3"
)

// The stream Send writes and Receive reads wraps the zfs send stream:
//
//	header   magic "DMZFS\x00\x00\x01", kind ('F' full, 'I' incremental),
//	         target commit id (32 bytes), base commit id (32 bytes, zeros
//	         for a full stream)
//	frames   uint32 length (1..maxFrame, big endian) + that many bytes of
//	         the zfs stream, repeated
//	trailer  uint32 0, uint64 total zfs stream bytes, BLAKE3-256 of the
//	         header and the zfs stream bytes
//
// zfs receive checks its own stream checksum, but Receive must not let
// anything become visible before the whole transfer is known intact, and
// the ids must be bound to the data. The trailer provides both: Receive
// holds back the end of the zfs stream (see holdback) until the trailer
// has been verified.
const (
	streamMagic = "DMZFS\x00\x00\x01"
	kindFull    = 'F'
	kindIncr    = 'I'
	headerLen   = len(streamMagic) + 1 + 32 + 32
	maxFrame    = 1 << 20
)

type streamHeader struct {
	kind   byte
	target dotmesh.CommitID
	base   dotmesh.CommitID // "" for a full stream
}

func (h streamHeader) encode() []byte {
	buf := make([]byte, 0, headerLen)
	buf = append(buf, streamMagic...)
	buf = append(buf, h.kind)
	buf = append(buf, h.target...)
	base := make([]byte, 32)
	copy(base, h.base)
	return append(buf, base...)
}

func decodeHeader(buf []byte) (streamHeader, error) {
	if len(buf) != headerLen || string(buf[:len(streamMagic)]) != streamMagic {
		return streamHeader{}, fmt.Errorf("%w: not a dotmesh zfs stream (bad magic)", dotmesh.ErrCorrupt)
	}
	rest := buf[len(streamMagic):]
	h := streamHeader{kind: rest[0], target: dotmesh.CommitID(rest[1:33])}
	if err := dotmesh.ValidateID("commit", string(h.target), false); err != nil {
		return streamHeader{}, fmt.Errorf("%w: stream header: %v", dotmesh.ErrCorrupt, err)
	}
	base := rest[33:65]
	switch h.kind {
	case kindFull:
		if !bytes.Equal(base, make([]byte, 32)) {
			return streamHeader{}, fmt.Errorf("%w: full stream header names a base", dotmesh.ErrCorrupt)
		}
	case kindIncr:
		h.base = dotmesh.CommitID(base)
		if err := dotmesh.ValidateID("commit", string(h.base), false); err != nil {
			return streamHeader{}, fmt.Errorf("%w: stream header: %v", dotmesh.ErrCorrupt, err)
		}
	default:
		return streamHeader{}, fmt.Errorf("%w: unknown stream kind %q", dotmesh.ErrCorrupt, h.kind)
	}
	return h, nil
}

// frameWriter frames everything written to it; Close writes the trailer.
type frameWriter struct {
	w   io.Writer
	h   *blake3.Hasher
	n   uint64
	hdr [4]byte
}

func newFrameWriter(w io.Writer, h streamHeader) (*frameWriter, error) {
	fw := &frameWriter{w: w, h: blake3.New()}
	hb := h.encode()
	fw.h.Write(hb)
	if _, err := w.Write(hb); err != nil {
		return nil, err
	}
	return fw, nil
}

func (f *frameWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), maxFrame)]
		binary.BigEndian.PutUint32(f.hdr[:], uint32(len(chunk)))
		if _, err := f.w.Write(f.hdr[:]); err != nil {
			return written, err
		}
		if _, err := f.w.Write(chunk); err != nil {
			return written, err
		}
		f.h.Write(chunk)
		f.n += uint64(len(chunk))
		written += len(chunk)
		p = p[len(chunk):]
	}
	return written, nil
}

func (f *frameWriter) Close() error {
	var t [4 + 8]byte
	binary.BigEndian.PutUint64(t[4:], f.n)
	if _, err := f.w.Write(t[:]); err != nil {
		return err
	}
	_, err := f.w.Write(f.h.Sum(nil))
	return err
}

// frameReader returns the zfs stream inside a framed stream. It returns
// io.EOF only after the trailer has been verified; a short, oversized or
// altered stream yields an error wrapping dotmesh.ErrCorrupt.
type frameReader struct {
	r    *bufio.Reader
	h    *blake3.Hasher
	n    uint64
	left uint32 // bytes left in the current frame
	err  error  // sticky
}

func readHeader(r io.Reader) (streamHeader, *frameReader, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	buf := make([]byte, headerLen)
	if _, err := io.ReadFull(br, buf); err != nil {
		return streamHeader{}, nil, corrupt("reading stream header", err)
	}
	h, err := decodeHeader(buf)
	if err != nil {
		return streamHeader{}, nil, err
	}
	fr := &frameReader{r: br, h: blake3.New()}
	fr.h.Write(buf)
	return h, fr, nil
}

func corrupt(what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %s: stream ended early", dotmesh.ErrCorrupt, what)
	}
	if errors.Is(err, dotmesh.ErrCorrupt) {
		return err
	}
	return fmt.Errorf("%s: %w", what, err)
}

func (f *frameReader) Read(p []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	for f.left == 0 {
		var lb [4]byte
		if _, err := io.ReadFull(f.r, lb[:]); err != nil {
			f.err = corrupt("reading frame", err)
			return 0, f.err
		}
		l := binary.BigEndian.Uint32(lb[:])
		if l == 0 {
			f.err = f.trailer()
			return 0, f.err
		}
		if l > maxFrame {
			f.err = fmt.Errorf("%w: frame of %d bytes exceeds %d", dotmesh.ErrCorrupt, l, maxFrame)
			return 0, f.err
		}
		f.left = l
	}
	if uint32(len(p)) > f.left {
		p = p[:f.left]
	}
	n, err := f.r.Read(p)
	f.h.Write(p[:n])
	f.n += uint64(n)
	f.left -= uint32(n)
	if err != nil {
		if err == io.EOF && n > 0 {
			err = nil // reported on the next call
		} else {
			f.err = corrupt("reading frame", err)
			return n, f.err
		}
	}
	return n, nil
}

func (f *frameReader) trailer() error {
	var t [8 + 32]byte
	if _, err := io.ReadFull(f.r, t[:]); err != nil {
		return corrupt("reading stream trailer", err)
	}
	if n := binary.BigEndian.Uint64(t[:8]); n != f.n {
		return fmt.Errorf("%w: stream carried %d bytes, its trailer says %d", dotmesh.ErrCorrupt, f.n, n)
	}
	if subtle.ConstantTimeCompare(f.h.Sum(nil), t[8:]) != 1 {
		return fmt.Errorf("%w: stream checksum mismatch", dotmesh.ErrCorrupt)
	}
	return io.EOF
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
	h.buf = append(h.buf, p...)
	if over := len(h.buf) - h.keep; over > 0 {
		if _, err := h.w.Write(h.buf[:over]); err != nil {
			return 0, err
		}
		h.buf = append(h.buf[:0], h.buf[over:]...)
	}
	return len(p), nil
}

func (h *holdback) Flush() error {
	_, err := h.w.Write(h.buf)
	h.buf = h.buf[:0]
	return err
}
