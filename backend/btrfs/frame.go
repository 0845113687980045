package btrfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/zeebo/blake3"
)

// Stream framing around `btrfs send` output. btrfs streams carry per-
// command CRCs but nothing that detects a stream cut short between
// commands, so the payload goes in length-prefixed frames ended by an
// empty frame and a trailer holding the payload length and a BLAKE3 hash
// of header and payload:
//
//	magic "dmbtrfs\x01" | flags (1: incremental) | commit id (32) | base id (32, zero when full)
//	{ uint32 n (1..maxFrame) | n bytes }*
//	uint32 0 | uint64 payload length | BLAKE3-256 (32)
const (
	frameMagic = "dmbtrfs\x01"
	maxFrame   = 1 << 20
	idLen      = 32
	headerLen  = len(frameMagic) + 1 + 2*idLen
)

type streamHeader struct {
	Commit dotmesh.CommitID
	Base   dotmesh.CommitID // empty for a full stream
}

func (h streamHeader) encode() []byte {
	buf := make([]byte, 0, headerLen)
	buf = append(buf, frameMagic...)
	if h.Base != "" {
		buf = append(buf, 1)
	} else {
		buf = append(buf, 0)
	}
	buf = append(buf, padID(h.Commit)...)
	return append(buf, padID(h.Base)...)
}

func padID(id dotmesh.CommitID) []byte {
	b := make([]byte, idLen)
	copy(b, id)
	return b
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: btrfs stream: %s", dotmesh.ErrCorrupt, fmt.Sprintf(format, args...))
}

// frameWriter frames what is written to it; Close writes the trailer.
type frameWriter struct {
	w   io.Writer
	h   *blake3.Hasher
	n   uint64
	hdr [4]byte
}

func newFrameWriter(w io.Writer, h streamHeader) (*frameWriter, error) {
	fw := &frameWriter{w: w, h: blake3.New()}
	hdr := h.encode()
	fw.h.Write(hdr)
	if _, err := w.Write(hdr); err != nil {
		return nil, err
	}
	return fw, nil
}

func (fw *frameWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := min(len(p), maxFrame)
		binary.BigEndian.PutUint32(fw.hdr[:], uint32(n))
		if _, err := fw.w.Write(fw.hdr[:]); err != nil {
			return written, err
		}
		if _, err := fw.w.Write(p[:n]); err != nil {
			return written, err
		}
		fw.h.Write(p[:n])
		fw.n += uint64(n)
		written += n
		p = p[n:]
	}
	return written, nil
}

// Close ends the stream. Call it only when the payload is complete: a
// stream without its trailer is rejected by the receiver.
func (fw *frameWriter) Close() error {
	var t [4 + 8 + 32]byte
	binary.BigEndian.PutUint64(t[4:], fw.n)
	copy(t[12:], fw.h.Sum(nil))
	_, err := fw.w.Write(t[:])
	return err
}

// frameReader yields the payload of a framed stream and returns io.EOF
// only after the trailer matched; anything else is an ErrCorrupt error.
type frameReader struct {
	r      io.Reader
	h      *blake3.Hasher
	n      uint64
	left   int // bytes left in the current frame
	done   bool
	err    error // sticky
	header streamHeader
}

func newFrameReader(r io.Reader) (*frameReader, error) {
	hdr := make([]byte, headerLen)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, readErr(err, "reading the header")
	}
	if !bytes.Equal(hdr[:len(frameMagic)], []byte(frameMagic)) {
		return nil, corrupt("not a dotmesh btrfs stream (bad magic)")
	}
	fr := &frameReader{r: r, h: blake3.New()}
	fr.h.Write(hdr)
	flags := hdr[len(frameMagic)]
	commit := hdr[len(frameMagic)+1 : len(frameMagic)+1+idLen]
	base := hdr[len(frameMagic)+1+idLen:]
	fr.header.Commit = dotmesh.CommitID(commit)
	if flags&1 != 0 {
		fr.header.Base = dotmesh.CommitID(base)
	}
	if flags&^1 != 0 || dotmesh.ValidateID("commit", string(fr.header.Commit), false) != nil ||
		(fr.header.Base != "" && dotmesh.ValidateID("commit", string(fr.header.Base), false) != nil) {
		return nil, corrupt("malformed header")
	}
	return fr, nil
}

// readErr classifies an error from the underlying reader: running out of
// data means truncation; other errors (a broken connection) pass through.
func readErr(err error, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return corrupt("truncated while %s", what)
	}
	return fmt.Errorf("btrfs stream: %s: %w", what, err)
}

func (fr *frameReader) Read(p []byte) (int, error) {
	if fr.err != nil {
		return 0, fr.err
	}
	for fr.left == 0 {
		if fr.done {
			return 0, io.EOF
		}
		var l [4]byte
		if _, err := io.ReadFull(fr.r, l[:]); err != nil {
			fr.err = readErr(err, "reading a frame length")
			return 0, fr.err
		}
		n := binary.BigEndian.Uint32(l[:])
		if n > maxFrame {
			fr.err = corrupt("frame of %d bytes exceeds %d", n, maxFrame)
			return 0, fr.err
		}
		if n == 0 {
			if fr.err = fr.trailer(); fr.err != nil {
				return 0, fr.err
			}
			fr.done = true
			return 0, io.EOF
		}
		fr.left = int(n)
	}
	if len(p) > fr.left {
		p = p[:fr.left]
	}
	n, err := fr.r.Read(p)
	fr.h.Write(p[:n])
	fr.n += uint64(n)
	fr.left -= n
	if err != nil && !(errors.Is(err, io.EOF) && fr.left == 0) {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		fr.err = readErr(err, "reading a frame")
		return n, fr.err
	}
	return n, nil
}

func (fr *frameReader) trailer() error {
	var t [8 + 32]byte
	if _, err := io.ReadFull(fr.r, t[:]); err != nil {
		return readErr(err, "reading the trailer")
	}
	if n := binary.BigEndian.Uint64(t[:8]); n != fr.n {
		return corrupt("trailer says %d payload bytes, got %d", n, fr.n)
	}
	if !bytes.Equal(t[8:], fr.h.Sum(nil)) {
		return corrupt("checksum mismatch")
	}
	return nil
}
