// Package framing is the checksummed envelope the snapshot backends (zfs,
// btrfs) wrap around the native send stream they transfer:
//
//	header   magic, kind (Format.Full or Format.Incremental),
//	         target commit id (32 bytes), base commit id (32 bytes, zeros
//	         for a full stream)
//	frames   uint32 length (1..MaxFrame, big endian) + that many bytes of
//	         the payload, repeated
//	trailer  uint32 0, uint64 total payload bytes (big endian),
//	         BLAKE3-256 of the header and the payload
//
// Native streams carry checksums of their own but nothing that binds them
// to commit ids or detects a stream cut short between records; the trailer
// does both. A Reader returns io.EOF only after the trailer has been
// verified; a short, oversized or altered stream yields an error wrapping
// dotmesh.ErrCorrupt. Each backend has its own Format (magic and kind
// bytes), so one backend's stream is never taken for another's.
package framing

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

const (
	// MaxFrame is the largest frame a Writer writes and a Reader accepts.
	MaxFrame = 1 << 20
	idLen    = 32
	// trailerLen is what follows the empty frame: payload length and hash.
	trailerLen = 8 + 32
)

// Format names one backend's stream: its magic, its kind bytes and how
// its errors read.
type Format struct {
	Name        string // in error messages, e.g. "zfs stream"
	Magic       string
	Full        byte // kind byte of a full stream
	Incremental byte // kind byte of an incremental stream
}

// Header is what a stream carries ahead of its payload.
type Header struct {
	Target dotmesh.CommitID
	Base   dotmesh.CommitID // "" for a full stream
}

// HeaderLen is the length of an encoded header.
func (f Format) HeaderLen() int { return len(f.Magic) + 1 + 2*idLen }

func (f Format) encode(h Header) []byte {
	buf := make([]byte, 0, f.HeaderLen())
	buf = append(buf, f.Magic...)
	if h.Base != "" {
		buf = append(buf, f.Incremental)
	} else {
		buf = append(buf, f.Full)
	}
	buf = append(buf, padID(h.Target)...)
	return append(buf, padID(h.Base)...)
}

func padID(id dotmesh.CommitID) []byte {
	b := make([]byte, idLen)
	copy(b, id)
	return b
}

func (f Format) decode(buf []byte) (Header, error) {
	if len(buf) != f.HeaderLen() || string(buf[:len(f.Magic)]) != f.Magic {
		return Header{}, f.Corrupt("not a dotmesh %s (bad magic)", f.Name)
	}
	rest := buf[len(f.Magic):]
	kind, target, base := rest[0], rest[1:1+idLen], rest[1+idLen:]
	h := Header{Target: dotmesh.CommitID(target)}
	if err := dotmesh.ValidateID("commit", string(h.Target), false); err != nil {
		return Header{}, f.Corrupt("header: %v", err)
	}
	switch kind {
	case f.Full:
		if !bytes.Equal(base, make([]byte, idLen)) {
			return Header{}, f.Corrupt("full stream header names a base")
		}
	case f.Incremental:
		h.Base = dotmesh.CommitID(base)
		if err := dotmesh.ValidateID("commit", string(h.Base), false); err != nil {
			return Header{}, f.Corrupt("header: %v", err)
		}
	default:
		return Header{}, f.Corrupt("unknown stream kind %q", kind)
	}
	return h, nil
}

// Corrupt returns an error wrapping dotmesh.ErrCorrupt that names the
// format.
func (f Format) Corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", dotmesh.ErrCorrupt, f.Name, fmt.Sprintf(format, args...))
}

// ReadError classifies an error met while reading what: running out of
// data means the stream was cut short (ErrCorrupt); an ErrCorrupt error
// passes as it is; anything else (a broken connection) is wrapped.
func (f Format) ReadError(what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return f.Corrupt("%s: stream ended early", what)
	}
	if errors.Is(err, dotmesh.ErrCorrupt) {
		return err
	}
	return fmt.Errorf("%s: %s: %w", f.Name, what, err)
}

// Writer frames everything written to it; Close writes the trailer.
type Writer struct {
	w   io.Writer
	h   *blake3.Hasher
	n   uint64
	hdr [4]byte
}

// NewWriter writes the header of h to w and returns a Writer for the
// payload.
func (f Format) NewWriter(w io.Writer, h Header) (*Writer, error) {
	fw := &Writer{w: w, h: blake3.New()}
	hb := f.encode(h)
	fw.h.Write(hb)
	if _, err := w.Write(hb); err != nil {
		return nil, err
	}
	return fw, nil
}

func (fw *Writer) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), MaxFrame)]
		binary.BigEndian.PutUint32(fw.hdr[:], uint32(len(chunk)))
		if _, err := fw.w.Write(fw.hdr[:]); err != nil {
			return written, err
		}
		if _, err := fw.w.Write(chunk); err != nil {
			return written, err
		}
		fw.h.Write(chunk)
		fw.n += uint64(len(chunk))
		written += len(chunk)
		p = p[len(chunk):]
	}
	return written, nil
}

// Close ends the stream. Call it only when the payload is complete: a
// stream without its trailer is rejected by the receiver, which is how a
// failed send reaches it.
func (fw *Writer) Close() error {
	var t [4 + trailerLen]byte
	binary.BigEndian.PutUint64(t[4:], fw.n)
	copy(t[12:], fw.h.Sum(nil))
	_, err := fw.w.Write(t[:])
	return err
}

// Reader returns the payload of a framed stream. It returns io.EOF only
// after the trailer has been verified; a short, oversized or altered
// stream yields an error wrapping dotmesh.ErrCorrupt. Errors are sticky.
type Reader struct {
	f    Format
	r    *bufio.Reader
	h    *blake3.Hasher
	n    uint64
	left uint32 // bytes left in the current frame
	err  error  // sticky; io.EOF once the trailer verified
}

// NewReader reads and checks the header of a stream of format f and
// returns it with a Reader for the payload.
func (f Format) NewReader(r io.Reader) (Header, *Reader, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	buf := make([]byte, f.HeaderLen())
	if _, err := io.ReadFull(br, buf); err != nil {
		return Header{}, nil, f.ReadError("reading the header", err)
	}
	h, err := f.decode(buf)
	if err != nil {
		return Header{}, nil, err
	}
	fr := &Reader{f: f, r: br, h: blake3.New()}
	fr.h.Write(buf)
	return h, fr, nil
}

// Err returns the error that ended the stream, if it was not a verified
// end: nil while the stream is intact so far and after a verified trailer.
func (fr *Reader) Err() error {
	if fr.err == io.EOF {
		return nil
	}
	return fr.err
}

func (fr *Reader) Read(p []byte) (int, error) {
	if fr.err != nil {
		return 0, fr.err
	}
	for fr.left == 0 {
		var lb [4]byte
		if _, err := io.ReadFull(fr.r, lb[:]); err != nil {
			fr.err = fr.f.ReadError("reading a frame length", err)
			return 0, fr.err
		}
		l := binary.BigEndian.Uint32(lb[:])
		if l == 0 {
			fr.err = fr.trailer()
			return 0, fr.err
		}
		if l > MaxFrame {
			fr.err = fr.f.Corrupt("frame of %d bytes exceeds %d", l, MaxFrame)
			return 0, fr.err
		}
		fr.left = l
	}
	if uint32(len(p)) > fr.left {
		p = p[:fr.left]
	}
	n, err := fr.r.Read(p)
	fr.h.Write(p[:n])
	fr.n += uint64(n)
	fr.left -= uint32(n)
	if err != nil && !(err == io.EOF && n > 0) { // EOF after data: reported on the next call
		fr.err = fr.f.ReadError("reading a frame", err)
		return n, fr.err
	}
	return n, nil
}

// trailer checks the trailer and returns io.EOF if it matches.
func (fr *Reader) trailer() error {
	var t [trailerLen]byte
	if _, err := io.ReadFull(fr.r, t[:]); err != nil {
		return fr.f.ReadError("reading the trailer", err)
	}
	if n := binary.BigEndian.Uint64(t[:8]); n != fr.n {
		return fr.f.Corrupt("stream carried %d bytes, its trailer says %d", fr.n, n)
	}
	if subtle.ConstantTimeCompare(fr.h.Sum(nil), t[8:]) != 1 {
		return fr.f.Corrupt("checksum mismatch")
	}
	return io.EOF
}
