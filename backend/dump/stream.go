package dump

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/dotmesh-io/dotmesh/backend/dump/cas"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/zeebo/blake3"
)

// Stream format (version 2), produced by Send and consumed by Receive:
//
//	stream  = magic frame*
//	magic   = "DMDUMP" 0x00 0x02
//	frame   = kind:byte length:uvarint payload:[length]byte
//
// Frames come in this order: one 'H', any number of 'O' and 'D', one 'R',
// one 'T'.
//
//	'H' header   dot, branch, commit, base commit ("" for a full stream),
//	             each a uvarint length and bytes
//	'O' object   BLAKE3 hash (32 bytes), then the object as stored
//	             (zstd); the receiver decompresses it, bounded, and checks
//	             the hash
//	'D' delta    BLAKE3 hash (32 bytes), base count n (1 byte, 1 to
//	             maxDeltaBases), n base hashes (32 bytes each), then a
//	             delta (package internal/delta) against the bases'
//	             plaintexts concatenated: the object in fewer bytes, for a
//	             receiver that holds the bases. Only incremental streams
//	             carry deltas, against objects of their base commit. The
//	             receiver reads the bases from its store, applies the
//	             delta (bounded), checks the hash and stores the result
//	             like an 'O' object.
//	'R' record   the commit record (JSON), naming the manifest root
//	'T' trailer  object count (uvarint; 'O' and 'D' frames), total
//	             payload bytes of those frames (uvarint), and the
//	             BLAKE3-256 of every byte of the stream before this frame
//
// Every length is bounded before anything is allocated, so a hostile peer
// cannot make the receiver allocate more than one object's worth.

const streamMagic = "DMDUMP\x00\x02"

const (
	frameHeader  = 'H'
	frameObject  = 'O'
	frameDelta   = 'D'
	frameRecord  = 'R'
	frameTrailer = 'T'

	maxHeaderSize  = 1 << 10
	maxObjectFrame = cas.HashSize + cas.MaxStoredSize
	// A delta is sent only when smaller than the object's stored form.
	maxDeltaFrame  = cas.HashSize + 1 + maxDeltaBases*cas.HashSize + cas.MaxStoredSize
	maxTrailerSize = 2*binary.MaxVarintLen64 + 32
)

type streamHeader struct {
	Dot, Branch, Commit, Base string
}

func (h streamHeader) encode() []byte {
	var buf []byte
	for _, s := range []string{h.Dot, h.Branch, h.Commit, h.Base} {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	return buf
}

func decodeStreamHeader(p []byte) (streamHeader, error) {
	d := decoder{buf: p}
	h := streamHeader{Dot: d.str(100), Branch: d.str(100), Commit: d.str(100), Base: d.str(100)}
	if d.err == nil && len(d.buf) != 0 {
		d.fail("%d trailing bytes", len(d.buf))
	}
	if d.err != nil {
		return h, fmt.Errorf("header: %v", d.err)
	}
	return h, nil
}

// streamWriter writes frames and keeps the running checksum.
type streamWriter struct {
	w       *bufio.Writer
	sum     *blake3.Hasher
	objects uint64
	bytes   uint64
}

func newStreamWriter(w io.Writer) (*streamWriter, error) {
	s := &streamWriter{w: bufio.NewWriterSize(w, 1<<20), sum: blake3.New()}
	if err := s.write([]byte(streamMagic)); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *streamWriter) write(p []byte) error {
	s.sum.Write(p)
	_, err := s.w.Write(p)
	return err
}

func (s *streamWriter) frame(kind byte, parts ...[]byte) error {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	head := binary.AppendUvarint([]byte{kind}, uint64(n))
	if err := s.write(head); err != nil {
		return err
	}
	for _, p := range parts {
		if err := s.write(p); err != nil {
			return err
		}
	}
	return nil
}

func (s *streamWriter) object(h cas.Hash, stored []byte) error {
	s.objects++
	s.bytes += uint64(cas.HashSize + len(stored))
	return s.frame(frameObject, h[:], stored)
}

func (s *streamWriter) delta(h cas.Hash, bases []cas.Hash, d []byte) error {
	p := make([]byte, 0, cas.HashSize+1+len(bases)*cas.HashSize)
	p = append(append(p, h[:]...), byte(len(bases)))
	for _, b := range bases {
		p = append(p, b[:]...)
	}
	s.objects++
	s.bytes += uint64(len(p) + len(d))
	return s.frame(frameDelta, p, d)
}

// finish writes the trailer and flushes.
func (s *streamWriter) finish() error {
	var p []byte
	p = binary.AppendUvarint(p, s.objects)
	p = binary.AppendUvarint(p, s.bytes)
	p = s.sum.Sum(p)
	head := binary.AppendUvarint([]byte{frameTrailer}, uint64(len(p)))
	if _, err := s.w.Write(head); err != nil {
		return err
	}
	if _, err := s.w.Write(p); err != nil {
		return err
	}
	return s.w.Flush()
}

// streamHandler receives the parts of a stream as they are read and
// checked; any error it returns stops the reading.
type streamHandler struct {
	header func(streamHeader) error
	object func(h cas.Hash, stored []byte) error              // stored is reused afterwards
	delta  func(h cas.Hash, bases []cas.Hash, d []byte) error // d too
	record func(data []byte) error
}

// errStream marks format errors; readStream wraps them with ErrCorrupt.
var errStream = errors.New("bad stream")

// errTruncated marks a stream that ends early (wrapped with ErrCorrupt
// too): what arrived before the cut was intact, so Receive keeps it.
var errTruncated = errors.New("truncated")

// readStream parses and checks a whole stream, up to and including its
// trailer, and reads nothing beyond it. Format, framing and checksum
// errors wrap dotmesh.ErrCorrupt; errors of r itself are returned as
// they are, except truncation, which is corruption too.
func readStream(r io.Reader, fn streamHandler) error {
	sr := &streamReader{r: bufio.NewReaderSize(r, 1<<20), sum: blake3.New()}
	err := sr.run(fn)
	if err == nil {
		return nil
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: the stream ends early (%w after %d bytes)", dotmesh.ErrCorrupt, errTruncated, sr.n)
	}
	if errors.Is(err, errStream) {
		return fmt.Errorf("%w: %w (at byte %d)", dotmesh.ErrCorrupt, err, sr.n)
	}
	return err
}

type streamReader struct {
	r   *bufio.Reader
	sum *blake3.Hasher
	n   int64 // bytes consumed
	buf []byte
}

func (s *streamReader) readByte() (byte, error) {
	c, err := s.r.ReadByte()
	if err != nil {
		return 0, err
	}
	s.n++
	return c, nil
}

// frameHead reads a frame's kind and length. The kind byte is not hashed
// yet: the trailer's checksum covers what precedes the trailer frame.
func (s *streamReader) frameHead() (byte, uint64, []byte, error) {
	kind, err := s.readByte()
	if err != nil {
		return 0, 0, nil, err
	}
	var lenBytes [binary.MaxVarintLen64]byte
	var n uint64
	for i := 0; ; i++ {
		if i == binary.MaxVarintLen64 {
			return 0, 0, nil, fmt.Errorf("%w: frame length is not a valid varint", errStream)
		}
		c, err := s.readByte()
		if err != nil {
			return 0, 0, nil, err
		}
		lenBytes[i] = c
		n |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return kind, n, append([]byte{kind}, lenBytes[:i+1]...), nil
		}
	}
}

func (s *streamReader) payload(n uint64) ([]byte, error) {
	if uint64(cap(s.buf)) < n {
		s.buf = make([]byte, n)
	}
	p := s.buf[:n]
	m, err := io.ReadFull(s.r, p)
	s.n += int64(m)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return p, nil
}

func (s *streamReader) run(fn streamHandler) error {
	magic, err := s.payload(uint64(len(streamMagic)))
	if err != nil {
		return err
	}
	if string(magic) != streamMagic {
		return fmt.Errorf("%w: not a dump stream of a supported version (magic %q)", errStream, magic)
	}
	s.sum.Write(magic)
	var objects, objBytes uint64
	sawHeader, sawRecord, incremental := false, false, false
	for {
		kind, n, head, err := s.frameHead()
		if err != nil {
			return err
		}
		limit := uint64(0)
		switch {
		case kind == frameHeader && !sawHeader:
			limit = maxHeaderSize
		case kind == frameObject && sawHeader && !sawRecord:
			limit = maxObjectFrame
		case kind == frameDelta && sawHeader && !sawRecord:
			limit = maxDeltaFrame
		case kind == frameRecord && sawHeader && !sawRecord:
			limit = maxRecordSize
		case kind == frameTrailer && sawRecord:
			limit = maxTrailerSize
		default:
			return fmt.Errorf("%w: unexpected frame %q", errStream, kind)
		}
		if n > limit {
			return fmt.Errorf("%w: frame %q claims %d bytes, over its %d limit", errStream, kind, n, limit)
		}
		if kind == frameTrailer {
			want := s.sum.Sum(nil)
			p, err := s.payload(n)
			if err != nil {
				return err
			}
			d := decoder{buf: p}
			gotObjects, gotBytes := d.uvarint(), d.uvarint()
			sum := d.bytes(32)
			if d.err != nil || len(d.buf) != 0 {
				return fmt.Errorf("%w: malformed trailer", errStream)
			}
			if gotObjects != objects || gotBytes != objBytes {
				return fmt.Errorf("%w: trailer counts %d objects (%d bytes), the stream held %d (%d bytes)", errStream, gotObjects, gotBytes, objects, objBytes)
			}
			if string(sum) != string(want) {
				return fmt.Errorf("%w: checksum mismatch: the stream was altered in transit", errStream)
			}
			return nil
		}
		s.sum.Write(head)
		p, err := s.payload(n)
		if err != nil {
			return err
		}
		s.sum.Write(p)
		switch kind {
		case frameHeader:
			sawHeader = true
			h, err := decodeStreamHeader(p)
			if err != nil {
				return fmt.Errorf("%w: %v", errStream, err)
			}
			incremental = h.Base != ""
			if err := fn.header(h); err != nil {
				return err
			}
		case frameObject:
			if n < cas.HashSize {
				return fmt.Errorf("%w: object frame of %d bytes is too short", errStream, n)
			}
			objects++
			objBytes += n
			var h cas.Hash
			copy(h[:], p)
			if err := fn.object(h, p[cas.HashSize:]); err != nil {
				return err
			}
		case frameDelta:
			objects++
			objBytes += n
			if !incremental {
				return fmt.Errorf("%w: delta frame in a full stream", errStream)
			}
			if n < cas.HashSize+1 {
				return fmt.Errorf("%w: delta frame of %d bytes is too short", errStream, n)
			}
			var h cas.Hash
			copy(h[:], p)
			nb := int(p[cas.HashSize])
			p = p[cas.HashSize+1:]
			if nb < 1 || nb > maxDeltaBases || len(p) < nb*cas.HashSize {
				return fmt.Errorf("%w: delta frame for object %s names %d bases in %d bytes (1 to %d allowed)", errStream, h, nb, len(p), maxDeltaBases)
			}
			bases := make([]cas.Hash, nb)
			for i := range bases {
				copy(bases[i][:], p[i*cas.HashSize:])
			}
			if err := fn.delta(h, bases, p[nb*cas.HashSize:]); err != nil {
				return err
			}
		case frameRecord:
			sawRecord = true
			if err := fn.record(p); err != nil {
				return err
			}
		}
	}
}
