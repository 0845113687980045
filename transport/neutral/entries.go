package neutral

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"
)

// Kind is the kind of a record of a neutral stream.
type Kind byte

// The record kinds, as written in the stream.
const (
	KindDir     Kind = 'd'
	KindFile    Kind = 'f'
	KindSymlink Kind = 'l'
	// KindRemoved, in a delta stream only, says the base's entry at Path
	// (a directory with all it holds) is gone. It has a path and nothing
	// else.
	KindRemoved Kind = 'r'
	// KindPatch, in a delta stream read by ApplyDelta only, is a file
	// sent as its difference from the base's file at Path (patch.go).
	// Scan and ScanDelta refuse it: their callers never see one.
	KindPatch Kind = 'p'
)

// trailerMark starts the trailer; it is the one byte outside the hash.
const trailerMark = 'e'

// maxNeutralSize bounds a file's size so that sizes stay far from int64
// overflow on every side of a transfer.
const maxNeutralSize = 1 << 62

// Entry is one record of a neutral stream: a directory, a regular file
// or a symlink of the tree, parents before children.
type Entry struct {
	Kind Kind
	// Path is slash-separated, relative and clean ("db/base/1").
	Path string
	// Mode holds the permission bits (0777) only.
	Mode fs.FileMode
	// MTime is the modification time, to the nanosecond.
	MTime time.Time
	// Size is a file's length in bytes (KindFile only).
	Size int64
	// Target is a symlink's target (KindSymlink only).
	Target string
}

// check reports what makes e unfit for a stream, or nil.
func (e *Entry) check(delta bool) error {
	switch e.Kind {
	case KindDir, KindFile, KindSymlink:
	case KindRemoved:
		if !delta {
			return fmt.Errorf("a removal (of %q) belongs in a delta stream, not a whole one", e.Path)
		}
		if e.Mode != 0 || !e.MTime.IsZero() {
			return fmt.Errorf("the removal of %q carries only its path", e.Path)
		}
	default:
		return fmt.Errorf("unknown record kind %q", byte(e.Kind))
	}
	if err := checkPath(e.Path); err != nil {
		return err
	}
	if e.Mode&^0o777 != 0 {
		return fmt.Errorf("bad mode %v for %q: only permission bits (0777) are carried", e.Mode, e.Path)
	}
	if e.Kind == KindFile {
		if e.Size < 0 || e.Size > maxNeutralSize {
			return fmt.Errorf("bad size %d for %q", e.Size, e.Path)
		}
	} else if e.Size != 0 {
		return fmt.Errorf("%q is not a file but has size %d", e.Path, e.Size)
	}
	if e.Kind == KindSymlink {
		if len(e.Target) == 0 || len(e.Target) > maxNeutralPath || strings.IndexByte(e.Target, 0) >= 0 {
			return fmt.Errorf("bad symlink target for %q", e.Path)
		}
	} else if e.Target != "" {
		return fmt.Errorf("%q is not a symlink but has a target", e.Path)
	}
	return nil
}

// checkPath accepts what Read can create below its directory and no more.
func checkPath(name string) error {
	if len(name) == 0 || len(name) > maxNeutralPath {
		return fmt.Errorf("bad path length %d", len(name))
	}
	if !fs.ValidPath(name) || name == "." || path.Clean(name) != name ||
		strings.ContainsAny(name, "\\\x00") {
		return fmt.Errorf("invalid path %q", name)
	}
	return nil
}

// order checks that records come as Write emits them: a depth-first walk
// with names in byte order (filepath.WalkDir's), every parent a directory
// met before. Keeping to that one order, rather than any parents-first
// order, proves paths unique with memory of one branch of the tree: a
// million files cost no set of a million names.
type order struct {
	prev string
	dirs []string // the directories enclosing prev, outermost first
}

func (o *order) add(e *Entry) error {
	if o.prev != "" && comparePaths(e.Path, o.prev) <= 0 {
		return fmt.Errorf("%q comes after %q: records must be in walk order, each path once", e.Path, o.prev)
	}
	// Leave the directories e is not in; o changes only if e is taken,
	// so that a Writer goes on after refusing an entry.
	open := len(o.dirs)
	for open > 0 && !isBelow(e.Path, o.dirs[open-1]) {
		open--
	}
	have := "."
	if open > 0 {
		have = o.dirs[open-1]
	}
	if parent := path.Dir(e.Path); parent != have {
		return fmt.Errorf("%q comes before its directory %q", e.Path, parent)
	}
	o.dirs = o.dirs[:open]
	if e.Kind == KindDir {
		o.dirs = append(o.dirs, e.Path)
	}
	o.prev = e.Path
	return nil
}

// ComparePaths orders clean slash-separated paths as streams hold them
// (walk order), like strings.Compare: producers sort with it.
func ComparePaths(a, b string) int { return comparePaths(a, b) }

// comparePaths orders clean paths as a walk meets them: component by
// component, so "a/x" (inside "a") comes before "a-b".
func comparePaths(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] == b[i] {
			continue
		}
		switch {
		case a[i] == '/':
			return -1
		case b[i] == '/':
			return 1
		case a[i] < b[i]:
			return -1
		default:
			return 1
		}
	}
	return len(a) - len(b)
}

func isBelow(p, dir string) bool {
	return len(p) > len(dir) && p[len(dir)] == '/' && p[:len(dir)] == dir
}

// corrupt is the error of a malformed or damaged stream.
func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: neutral stream: "+format, append([]any{ErrCorrupt}, args...)...)
}

func corruptBecause(err error) error {
	return fmt.Errorf("%w: neutral stream: %w", ErrCorrupt, err)
}

// Scan reads a neutral stream record by record, for consumers that do
// not unpack it into a directory (a bucket remote chunks files as they
// come). fn gets each entry in stream order; for a file, content yields
// exactly Size bytes, and whatever fn leaves unread is skipped. Scan
// checks every record as Read does (paths, sizes, order) and returns nil
// only when the trailer matches: until then everything seen is
// provisional, and the caller must make nothing of it visible. Malformed
// or damaged streams give an error wrapping ErrCorrupt; an error from fn
// stops the scan and is returned as is.
//
// content is valid only until fn returns; its errors for a damaged
// stream wrap ErrCorrupt too, so fn may pass them on. An error reading r
// other than its end comes back wrapped, not as ErrCorrupt: a dropped
// connection is not damaged data.
func Scan(r io.Reader, fn func(e Entry, content io.Reader) error) error {
	return scan(r, nil, fn, nil)
}

// ScanDelta reads a delta stream as Scan reads a whole one: base gets
// the base commit id from the header before any record (its error stops
// the scan: an unknown base), then fn gets each record, KindRemoved ones
// included. A whole stream is refused (ErrCorrupt), as Scan refuses a
// delta: neither is ever taken for the other.
func ScanDelta(r io.Reader, base func(id string) error, fn func(e Entry, content io.Reader) error) error {
	if base == nil {
		base = func(string) error { return nil }
	}
	return scan(r, base, fn, nil)
}

// scan reads a whole stream (base nil) or a delta; patch gets the patch
// records of a delta (nil: they are refused).
func scan(r io.Reader, base func(id string) error, fn func(e Entry, content io.Reader) error, patch func(e Entry, pb *patchBody) error) error {
	d := &decoder{h: sha256.New()}
	if u, ok := r.(uncheckedReader); ok {
		// A stream within one process (a clone from a bucket) reads
		// through a larger buffer, taken from a pool: a file's bytes
		// cross from the sender in pieces of up to 1 MiB, not 64 KiB,
		// so the two goroutines hand over and the file is written 16
		// times less often.
		br := uncheckedReaders.Get().(*bufio.Reader)
		br.Reset(u.r)
		defer func() {
			br.Reset(nil)
			uncheckedReaders.Put(br)
		}()
		d.br, d.h = br, nil
		// A Pipe's reader hands the sender's pieces of content on
		// to the file without this buffer between.
		d.src, _ = u.r.(HandoffReader)
	} else {
		d.br = bufio.NewReaderSize(r, neutralReadBuffer)
	}
	d.content.d = d
	var magic [len(neutralMagic)]byte
	if err := d.full(magic[:]); err != nil {
		return d.fail("does not start with %q", neutralMagic)
	}
	delta := base != nil
	switch m := string(magic[:]); {
	case m == neutralMagic && !delta:
	case m == deltaMagic && delta:
		id, err := d.baseID()
		if err != nil {
			return err
		}
		if err := base(id); err != nil {
			return err
		}
	case m == deltaMagic:
		return corrupt("is a delta stream, where a whole tree was expected")
	case m == neutralMagic:
		return corrupt("is a whole tree, where a delta stream was expected")
	default:
		return corrupt("does not start with %q or %q", neutralMagic, deltaMagic)
	}
	var ord order
	var dord deltaOrder
	for {
		// The trailer mark is read outside the hash.
		kind, err := d.br.ReadByte()
		if err != nil {
			d.noteErr(err)
			return d.fail("ends early")
		}
		if kind == trailerMark {
			return d.trailer()
		}
		d.hashByte(kind)
		if Kind(kind) == KindRemoved && !delta {
			return corrupt("a removal record in a whole stream")
		}
		if Kind(kind) == KindPatch && patch == nil {
			return corrupt("a patch record, which only a delta applied to a tree may hold")
		}
		e, err := d.header(Kind(kind))
		if err != nil {
			return err
		}
		if delta {
			err = dord.add(&e)
		} else {
			err = ord.add(&e)
		}
		if err != nil {
			return corruptBecause(err)
		}
		if e.Kind == KindPatch {
			pb := &patchBody{d: d, name: e.Path}
			if err := pb.start(); err != nil {
				return err
			}
			e.Size = pb.size
			if err := patch(e, pb); err != nil {
				return err
			}
			if err := pb.drain(); err != nil {
				return err
			}
			continue
		}
		c := &d.content
		c.name, c.left = e.Path, e.Size
		if err := fn(e, c); err != nil {
			return err
		}
		if _, err := io.Copy(io.Discard, c); err != nil {
			return err
		}
	}
}

// baseID reads a delta's base commit id.
func (d *decoder) baseID() (string, error) {
	n, err := d.uvarint(maxBaseID, "bad base id length")
	if err != nil {
		return "", err
	}
	b, err := d.bytes(n)
	if err != nil {
		return "", d.fail("ends early in the base id")
	}
	if err := checkBaseID(string(b)); err != nil {
		return "", corruptBecause(err)
	}
	return string(b), nil
}

// maxBaseID bounds a delta's base commit id; ids are far shorter.
const maxBaseID = 256

func checkBaseID(id string) error {
	if len(id) == 0 || len(id) > maxBaseID {
		return fmt.Errorf("bad base id length %d", len(id))
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return fmt.Errorf("invalid base id %q", id)
		}
	}
	return nil
}

// deltaOrder checks a delta's records: strictly in walk order (so each
// path once), and nothing below a path the delta removes or makes a
// non-directory. Parents need not come first: a delta leaves unchanged
// directories out. In walk order a path's subtree follows it directly,
// so the last such path is the only one to check against.
type deltaOrder struct {
	prev    string
	blocked string
}

func (o *deltaOrder) add(e *Entry) error {
	if o.prev != "" && comparePaths(e.Path, o.prev) <= 0 {
		return fmt.Errorf("%q comes after %q: records must be in walk order, each path once", e.Path, o.prev)
	}
	if o.blocked != "" && isBelow(e.Path, o.blocked) {
		return fmt.Errorf("%q is below %q, which the delta removes or makes a non-directory", e.Path, o.blocked)
	}
	o.prev = e.Path
	if e.Kind != KindDir {
		o.blocked = e.Path
	}
	return nil
}

// decoder reads a stream through a buffer, hashing what it reads. err
// is sticky: once the stream failed, nothing more is read from it.
type decoder struct {
	br      *bufio.Reader
	src     HandoffReader // br's source, unchecked, when it may hand its pieces over (Pipe)
	h       hash.Hash
	one     [1]byte
	ioErr   error // a failure of r itself, not of the data
	err     error // the stream failed (content reader)
	buf     []byte
	content content
}

func (d *decoder) hashByte(b byte) {
	d.one[0] = b
	d.hash(d.one[:])
}

// hash adds p to the checksum, unless the stream is read unchecked.
func (d *decoder) hash(p []byte) {
	if d.h != nil {
		d.h.Write(p)
	}
}

// ReadByte makes d an io.ByteReader for the varints.
func (d *decoder) ReadByte() (byte, error) {
	b, err := d.br.ReadByte()
	if err != nil {
		d.noteErr(err)
		return 0, err
	}
	d.hashByte(b)
	return b, nil
}

func (d *decoder) full(p []byte) error {
	n, err := io.ReadFull(d.br, p)
	d.hash(p[:n])
	d.noteErr(err)
	return err
}

func (d *decoder) noteErr(err error) {
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF && d.ioErr == nil {
		d.ioErr = err
	}
}

// fail is the error for a record that could not be read: r's own
// failure if it had one, else a corrupt stream.
func (d *decoder) fail(format string, args ...any) error {
	if d.ioErr != nil {
		return fmt.Errorf("neutral stream: reading: %w", d.ioErr)
	}
	return corrupt(format, args...)
}

func (d *decoder) uvarint(max uint64, format string, args ...any) (uint64, error) {
	v, err := binary.ReadUvarint(d)
	if err != nil || v > max {
		return 0, d.fail(format, args...)
	}
	return v, nil
}

// bytes reads n bytes into d's reused buffer.
func (d *decoder) bytes(n uint64) ([]byte, error) {
	if uint64(cap(d.buf)) < n {
		d.buf = make([]byte, n)
	}
	b := d.buf[:n]
	return b, d.full(b)
}

// header reads the rest of a record after its kind byte, up to the
// content of a file.
func (d *decoder) header(kind Kind) (Entry, error) {
	e := Entry{Kind: kind}
	switch kind {
	case KindDir, KindFile, KindSymlink, KindRemoved, KindPatch:
	default:
		return e, corrupt("unknown record kind %q", byte(kind))
	}
	n, err := d.uvarint(maxNeutralPath, "bad path length")
	if err != nil {
		return e, err
	}
	if n == 0 {
		return e, corrupt("bad path length")
	}
	b, err := d.bytes(n)
	if err != nil {
		return e, d.fail("ends early in a path")
	}
	e.Path = string(b)
	if err := checkPath(e.Path); err != nil {
		return e, corruptBecause(err)
	}
	if kind == KindRemoved {
		return e, nil
	}
	mode, err := d.uvarint(0o777, "bad mode for %q", e.Path)
	if err != nil {
		return e, err
	}
	e.Mode = fs.FileMode(mode)
	mt, err := binary.ReadVarint(d)
	if err != nil {
		return e, d.fail("bad time for %q", e.Path)
	}
	e.MTime = time.Unix(0, mt)
	switch kind {
	case KindFile:
		size, err := d.uvarint(maxNeutralSize, "bad size for %q", e.Path)
		if err != nil {
			return e, err
		}
		e.Size = int64(size)
	case KindSymlink:
		n, err := d.uvarint(maxNeutralPath, "bad symlink length for %q", e.Path)
		if err != nil {
			return e, err
		}
		if n == 0 {
			return e, corrupt("bad symlink length for %q", e.Path)
		}
		b, err := d.bytes(n)
		if err != nil {
			return e, d.fail("ends early in a symlink")
		}
		if bytes.IndexByte(b, 0) >= 0 {
			return e, corrupt("bad symlink target for %q", e.Path)
		}
		e.Target = string(b)
	}
	return e, nil
}

// trailer checks the hash after the trailer mark (unless the stream is
// read unchecked), and that nothing follows.
func (d *decoder) trailer() error {
	var want, got [sha256.Size]byte
	if _, err := io.ReadFull(d.br, got[:]); err != nil {
		d.noteErr(err)
		return d.fail("trailer: %v", err)
	}
	if d.h != nil && got != [sha256.Size]byte(d.h.Sum(want[:0])) {
		return corrupt("checksum mismatch: the stream was damaged in transit")
	}
	if _, err := d.br.ReadByte(); err != io.EOF {
		d.noteErr(err)
		return d.fail("data after the trailer")
	}
	return nil
}

// content is a file's bytes in the stream, hashed as they are read.
type content struct {
	d    *decoder
	name string
	left int64
}

func (c *content) Read(p []byte) (int, error) {
	if c.d.err != nil {
		return 0, c.d.err
	}
	if c.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.d.br.Read(p)
	c.d.hash(p[:n])
	c.left -= int64(n)
	if err != nil && (err != io.EOF || c.left > 0) {
		return n, c.failed(err)
	}
	return n, nil
}

// WriteTo hands out the reader's buffer directly, sparing io.Copy a
// buffer and a copy on the hot path.
func (c *content) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for c.left > 0 {
		if c.d.err != nil {
			return total, c.d.err
		}
		n := c.d.br.Buffered()
		if n == 0 && c.d.src != nil {
			// What br took from the source is written: the rest of
			// the content comes straight from the sender's pieces.
			fw := &failWriter{w: w}
			m, err := c.d.src.WriteNTo(fw, c.left)
			if m == 0 && errors.Is(err, ErrNoHandoff) {
				c.d.src = nil // a wrapper of a reader that has none
				continue
			}
			c.left -= m
			total += m
			if fw.err != nil {
				return total, fw.err
			}
			if err != nil {
				return total, c.failed(err)
			}
			continue
		}
		if n == 0 {
			if _, err := c.d.br.Peek(1); err != nil {
				return total, c.failed(err)
			}
			n = c.d.br.Buffered()
		}
		if int64(n) > c.left {
			n = int(c.left)
		}
		b, _ := c.d.br.Peek(n)
		c.d.hash(b)
		m, err := w.Write(b)
		c.d.br.Discard(n)
		c.left -= int64(n)
		total += int64(m)
		if err == nil && m < n {
			err = io.ErrShortWrite
		}
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// failWriter keeps w's error apart from its source's.
type failWriter struct {
	w   io.Writer
	err error
}

func (f *failWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err != nil && f.err == nil {
		f.err = err
	}
	return n, err
}

func (c *content) failed(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		c.d.err = corrupt("ends early in %q", c.name)
	} else {
		c.d.noteErr(err)
		c.d.err = fmt.Errorf("neutral stream: reading %q: %w", c.name, err)
	}
	return c.d.err
}

// Writer writes a neutral stream record by record, for producers that do
// not have the tree in a directory (a bucket remote rebuilding a commit
// from its chunks). Entries must come parents before children, as Scan
// and Read expect: in the order of a depth-first walk with names in byte
// order, each parent directory before what it holds, as Write and
// filepath.WalkDir give them.
type Writer struct {
	bw *bufio.Writer
	hw hashWriter
	// direct is bw's writer when the stream stays in this process
	// (unchecked): large pieces of content go to it as they are.
	direct io.Writer
	num    [binary.MaxVarintLen64]byte
	buf    []byte
	ord    order
	// delta: a delta stream (NewDeltaWriter), ordered by dord.
	delta bool
	dord  deltaOrder
	err   error // sticky: the stream is unusable
}

// NewWriter starts a stream on w (it writes the magic).
func NewWriter(w io.Writer) (*Writer, error) {
	w, h := writerHash(w)
	bw := bufio.NewWriterSize(w, 1<<20)
	sw := &Writer{bw: bw, hw: hashWriter{bw, h}, direct: directOf(w, h)}
	if _, err := io.WriteString(sw.hw, neutralMagic); err != nil {
		return nil, err
	}
	return sw, nil
}

// NewDeltaWriter starts a delta stream against commit base on w. Its
// entries are the paths that differ from base, in walk order, each a
// full record (as Add takes them) or a KindRemoved one; unchanged
// directories are left out.
func NewDeltaWriter(w io.Writer, base string) (*Writer, error) {
	if err := checkBaseID(base); err != nil {
		return nil, fmt.Errorf("neutral.NewDeltaWriter: %w", err)
	}
	w, h := writerHash(w)
	bw := bufio.NewWriterSize(w, 1<<20)
	sw := &Writer{bw: bw, hw: hashWriter{bw, h}, delta: true, direct: directOf(w, h)}
	if _, err := io.WriteString(sw.hw, deltaMagic); err != nil {
		return nil, err
	}
	if err := sw.uvarint(uint64(len(base))); err != nil {
		return nil, err
	}
	if _, err := io.WriteString(sw.hw, base); err != nil {
		return nil, err
	}
	return sw, nil
}

var errClosed = errors.New("neutral.Writer: the stream is closed")

// Add writes one record; for a file, content must yield exactly e.Size
// bytes (fewer or more is an error, and the stream is then unusable).
// An entry refused for what it is (path, kind, mode, size, order)
// writes nothing and leaves the stream usable.
func (w *Writer) Add(e Entry, content io.Reader) error {
	if w.err != nil {
		return w.err
	}
	if err := w.prepare(&e); err != nil {
		return err
	}
	if w.err = w.record(&e, content); w.err != nil {
		return w.err
	}
	return nil
}

// prepare checks e and its place in the stream, and takes that place.
func (w *Writer) prepare(e *Entry) error {
	if err := e.check(w.delta); err != nil {
		return fmt.Errorf("neutral.Writer: %w", err)
	}
	if mt := e.MTime.UnixNano(); e.Kind != KindRemoved && !time.Unix(0, mt).Equal(e.MTime) {
		return fmt.Errorf("neutral.Writer: the time of %q, %v, is out of range", e.Path, e.MTime)
	}
	ord := w.ord.add
	if w.delta {
		ord = w.dord.add
	}
	if err := ord(e); err != nil {
		return fmt.Errorf("neutral.Writer: %w", err)
	}
	return nil
}

func (w *Writer) uvarint(v uint64) error {
	_, err := w.hw.Write(w.num[:binary.PutUvarint(w.num[:], v)])
	return err
}

// recordHeader writes a record's kind, path and (but for a removal)
// mode and time.
func (w *Writer) recordHeader(e *Entry) error {
	w.num[0] = byte(e.Kind)
	if _, err := w.hw.Write(w.num[:1]); err != nil {
		return err
	}
	if err := w.uvarint(uint64(len(e.Path))); err != nil {
		return err
	}
	if _, err := io.WriteString(w.hw, e.Path); err != nil {
		return err
	}
	if e.Kind == KindRemoved {
		return nil
	}
	if err := w.uvarint(uint64(e.Mode)); err != nil {
		return err
	}
	_, err := w.hw.Write(w.num[:binary.PutVarint(w.num[:], e.MTime.UnixNano())])
	return err
}

func (w *Writer) record(e *Entry, content io.Reader) error {
	if err := w.recordHeader(e); err != nil || e.Kind == KindRemoved {
		return err
	}
	switch e.Kind {
	case KindSymlink:
		if err := w.uvarint(uint64(len(e.Target))); err != nil {
			return err
		}
		_, err := io.WriteString(w.hw, e.Target)
		return err
	case KindFile:
		if err := w.uvarint(uint64(e.Size)); err != nil {
			return err
		}
		if content == nil {
			content = eof{}
		}
		if sc, ok := content.(SizedContent); ok && sc.Size() == e.Size {
			// Its pieces go to the stream's buffer as they are, with
			// no copy through w.buf.
			var to io.Writer = w.hw
			if w.direct != nil {
				to = handOver{w}
			}
			lw := &limitedWriter{w: to, left: e.Size}
			n, err := sc.WriteTo(lw)
			if err == nil && n < e.Size {
				err = fmt.Errorf("ended after %d of its %d bytes", n, e.Size)
			}
			if err != nil {
				return fmt.Errorf("neutral.Writer: content of %q: %w", e.Path, err)
			}
			return nil
		}
		if w.buf == nil {
			w.buf = make([]byte, 64<<10)
		}
		n, err := io.CopyBuffer(w.hw, io.LimitReader(content, e.Size), w.buf)
		if err != nil {
			return fmt.Errorf("neutral.Writer: content of %q: %w", e.Path, err)
		}
		if n < e.Size {
			return fmt.Errorf("neutral.Writer: content of %q ended after %d of its %d bytes (did it change while being sent?)", e.Path, n, e.Size)
		}
		switch m, err := io.ReadFull(content, w.buf[:1]); {
		case m > 0:
			return fmt.Errorf("neutral.Writer: content of %q is longer than its %d bytes (did it change while being sent?)", e.Path, e.Size)
		case err != io.EOF:
			return fmt.Errorf("neutral.Writer: content of %q: %w", e.Path, err)
		}
	}
	return nil
}

// directOf is w when a stream to it stays in this process (h is nil:
// unchecked), else nil.
func directOf(w io.Writer, h hash.Hash) io.Writer {
	if h != nil {
		return nil
	}
	return w
}

// handOverMin: a piece of content at least this long goes to an
// unchecked stream's writer as it is; shorter ones are gathered in the
// buffer (a hand-over each would cost more than their copy).
const handOverMin = 64 << 10

// handOver writes a Writer's content to its unchecked stream: large
// pieces straight to the stream's writer, after what is buffered.
type handOver struct{ w *Writer }

func (h handOver) Write(p []byte) (int, error) {
	if len(p) < handOverMin {
		return h.w.bw.Write(p)
	}
	if err := h.w.bw.Flush(); err != nil {
		return 0, err
	}
	return h.w.direct.Write(p)
}

// SizedContent is a file's content that knows its length and writes
// itself: Writer.Add takes it through WriteTo when Size is the entry's
// size, and refuses more bytes than that.
type SizedContent interface {
	io.WriterTo
	Size() int64
}

// limitedWriter passes on at most left bytes and fails on more.
type limitedWriter struct {
	w    io.Writer
	left int64
}

var errTooLong = errors.New("longer than its size")

func (l *limitedWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.left {
		return 0, errTooLong
	}
	n, err := l.w.Write(p)
	l.left -= int64(n)
	return n, err
}

type eof struct{}

func (eof) Read([]byte) (int, error) { return 0, io.EOF }

// Close writes the trailer and flushes; it does not close the
// underlying writer.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	w.err = errClosed
	var t [1 + sha256.Size]byte
	t[0] = trailerMark
	if w.hw.h != nil {
		w.hw.h.Sum(t[:1])
	}
	if _, err := w.bw.Write(t[:]); err != nil {
		return err
	}
	return w.bw.Flush()
}

// SortDelta puts a delta's entries in walk order and drops those below
// a removed path or a non-directory entry, which the removal or
// replacement implies (a tree comparison reports every path of a removed
// directory): what is left is what a delta Writer takes.
func SortDelta(es []Entry) []Entry {
	slices.SortFunc(es, func(a, b Entry) int { return comparePaths(a.Path, b.Path) })
	out := es[:0]
	blocked := ""
	for _, e := range es {
		if blocked != "" && isBelow(e.Path, blocked) {
			continue
		}
		if e.Kind != KindDir {
			blocked = e.Path
		}
		out = append(out, e)
	}
	return out
}
