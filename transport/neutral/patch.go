package neutral

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"

	"github.com/zeebo/blake3"

	"github.com/dotmesh-io/dotmesh/internal/cdc"
)

// Patch records: a file changed in a few places goes as the difference
// from its base version, which the receiver holds at the same path, so
// that a 2-byte change in a 64 MiB file costs about 2 bytes on the wire
// (rsync's promise) instead of the whole file. The sender holds both
// versions (the base is a commit of its own history), so unlike rsync it
// needs no signatures from the receiver: it cuts both versions with a
// content-defined chunker, finds the new version's chunks in the base,
// and narrows each run of new chunks to the bytes that differ from the
// base bytes between the matches around it (common prefix and suffix).
//
// In a delta stream read by ApplyDelta (ScanDelta refuses them):
//
//	'p'    path, mode, mtime as a file's record; then
//	size   uvarint: the new content's length
//	flags  byte: bit 0 "in place" (every copy is from its own offset), the
//	       rest zero
//	ops    until they have produced size bytes, each a uvarint v, n = v>>1 > 0:
//	         v&1 == 0: n literal bytes follow
//	         v&1 == 1: uvarint offset: n bytes of the base file from offset
//	sum    32 bytes: the BLAKE3-256 of the new content
//
// The receiver applies a patch in place when the flag says so (only the
// changed bytes are written, so a copy-on-write filesystem stores only
// those), else into a new file renamed over the old, and refuses the
// record (ErrCorrupt) unless the result's BLAKE3 is sum: a patch against
// another base, or a damaged one, never passes for the file. The stream's
// SHA-256 trailer still covers every byte.

// patchChunks cut files for matching only (nothing is stored): finer than
// the dump store's chunks, so that a match resumes soon after a change.
var patchChunks = cdc.Params{Min: 16 << 10, Max: 256 << 10, AvgBits: 15}

const (
	// maxPatchRun bounds the unmatched bytes held before they are
	// narrowed against the base and queued.
	maxPatchRun = 8 << 20
	// maxPatchLiteral bounds the literal bytes a patch holds in memory
	// (the record's flag depends on every op, so ops are made before it is
	// written); a file changed more than that, or more than half, goes
	// whole.
	maxPatchLiteral = 32 << 20
	// minPatchCopy: shorter matches cost more as ops than as bytes.
	minPatchCopy = 16
	// MinPatchSize is the smallest file worth patching: below it the
	// whole file costs about what the patch's ops and checksum do.
	MinPatchSize = 4 << 10

	patchInPlace = 1
)

// errPatchNotWorth: the file changed too much for a patch to pay.
var errPatchNotWorth = errors.New("the file changed too much to patch")

type patchOp struct {
	copy bool
	off  int64 // copy: offset in the base
	n    int64
	data []byte // literal
}

// patcher makes the ops turning a base file into a new one.
type patcher struct {
	base     io.ReaderAt
	baseSize int64
	index    map[[16]byte]int64
	ops      []patchOp
	literal  int64
	limit    int64 // literal bytes beyond which the patch is not worth it
	bpos     int64 // the base offset matching the new content's position
	pos      int64 // bytes of the new content covered by ops
	cmp      []byte
}

// AddPatch writes file e (KindFile, in a delta stream) as a patch
// against base, its content in the base commit, which the receiver holds
// at e.Path; open gives the new content (e.Size bytes). Where a patch
// would not be clearly smaller, the file goes whole (a second open).
// Either base or open may be called more than once.
func (w *Writer) AddPatch(e Entry, base, open func() (io.ReadCloser, error)) error {
	if w.err != nil {
		return w.err
	}
	if !w.delta || e.Kind != KindFile {
		return fmt.Errorf("neutral.Writer: a patch is of a file in a delta stream (%q)", e.Path)
	}
	ops, sum, err := makePatch(base, open, e.Size)
	if errors.Is(err, errPatchNotWorth) {
		rc, err := open()
		if err != nil {
			return err
		}
		defer rc.Close()
		return w.Add(e, rc)
	}
	if err != nil {
		return fmt.Errorf("neutral.Writer: patching %q: %w", e.Path, err)
	}
	if err := w.prepare(&e); err != nil {
		return err
	}
	pe := e
	pe.Kind = KindPatch
	w.err = w.patchRecord(&pe, ops, sum)
	return w.err
}

// makePatch reads base, then the new content, and returns the ops and
// the new content's BLAKE3.
func makePatch(base, open func() (io.ReadCloser, error), size int64) ([]patchOp, [32]byte, error) {
	var sum [32]byte
	brc, err := base()
	if err != nil {
		return nil, sum, err
	}
	br := &reopenReaderAt{open: base, rc: brc}
	defer br.Close()
	p := &patcher{base: br, index: map[[16]byte]int64{}, limit: min(maxPatchLiteral, size/2)}
	if ra, ok := brc.(io.ReaderAt); ok {
		p.base = ra
	}
	buf := make([]byte, patchChunks.Max)
	ch := cdc.New(brc, patchChunks)
	for {
		c, err := ch.Next(buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, sum, fmt.Errorf("reading its base: %w", err)
		}
		k := chunkKey(c.Data)
		if _, ok := p.index[k]; !ok {
			p.index[k] = c.Start
		}
		p.baseSize = c.Start + int64(c.Length)
		buf = c.Data
	}
	br.pos = p.baseSize // brc is read to its end
	rc, err := open()
	if err != nil {
		return nil, sum, err
	}
	defer rc.Close()
	h := blake3.New()
	ch = cdc.New(io.LimitReader(io.TeeReader(rc, h), size), patchChunks)
	var run []byte
	for {
		c, err := ch.Next(buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, sum, err
		}
		buf = c.Data
		off, ok := p.index[chunkKey(c.Data)]
		if !ok {
			run = append(run, c.Data...)
			if len(run) >= maxPatchRun {
				if err := p.flushRun(run, -1); err != nil {
					return nil, sum, err
				}
				run = run[:0]
			}
			continue
		}
		if len(run) > 0 {
			if err := p.flushRun(run, off); err != nil {
				return nil, sum, err
			}
			run = run[:0]
		}
		p.copyOp(off, int64(c.Length))
		p.bpos = off + int64(c.Length)
	}
	if err := p.flushRun(run, p.baseSize); err != nil {
		return nil, sum, err
	}
	if p.pos != size {
		return nil, sum, fmt.Errorf("the file is %d bytes, not %d (did it change while being sent?)", p.pos, size)
	}
	h.Sum(sum[:0])
	return p.ops, sum, nil
}

func chunkKey(b []byte) [16]byte {
	s := blake3.Sum256(b)
	return [16]byte(s[:16])
}

// flushRun queues the unmatched new bytes run, which follow the base at
// p.bpos and, where next >= 0, precede the base at next: what they share
// with the base there at their start and end is copied, the rest sent.
func (p *patcher) flushRun(run []byte, next int64) error {
	if len(run) == 0 {
		return nil
	}
	pre, err := p.common(run, p.bpos, false)
	if err != nil {
		return err
	}
	rest := run[pre:]
	suf := 0
	if next >= p.bpos+int64(pre) {
		gap := next - p.bpos - int64(pre)
		m := min(int64(len(rest)), gap)
		if suf, err = p.common(rest[int64(len(rest))-m:], next-m, true); err != nil {
			return err
		}
	}
	if pre >= minPatchCopy {
		p.copyOp(p.bpos, int64(pre))
	} else {
		rest, pre = run, 0
	}
	lit := rest[:len(rest)-suf]
	if suf < minPatchCopy {
		lit, suf = rest, 0
	}
	if len(lit) > 0 {
		p.literal += int64(len(lit))
		if p.literal > p.limit {
			return errPatchNotWorth
		}
		p.ops = append(p.ops, patchOp{n: int64(len(lit)), data: bytes.Clone(lit)})
		p.pos += int64(len(lit))
	}
	if suf > 0 {
		p.copyOp(next-int64(suf), int64(suf))
		p.bpos = next
	} else {
		p.bpos += int64(len(run))
	}
	return nil
}

// common returns how many bytes of b equal the base's at off, counted
// from b's start, or from its end (b's last byte against off+len(b)-1).
func (p *patcher) common(b []byte, off int64, fromEnd bool) (int, error) {
	if off < 0 || off >= p.baseSize {
		return 0, nil
	}
	n := min(int64(len(b)), p.baseSize-off)
	if fromEnd && n < int64(len(b)) {
		return 0, nil // b's end lies past the base's
	}
	if int64(cap(p.cmp)) < n {
		p.cmp = make([]byte, n)
	}
	c := p.cmp[:n]
	if _, err := p.base.ReadAt(c, off); err != nil && !(err == io.EOF) {
		return 0, fmt.Errorf("reading its base: %w", err)
	}
	if !fromEnd {
		i := 0
		for i < len(c) && c[i] == b[i] {
			i++
		}
		return i, nil
	}
	i := 0
	for i < len(c) && c[len(c)-1-i] == b[len(b)-1-i] {
		i++
	}
	return i, nil
}

func (p *patcher) copyOp(off, n int64) {
	if k := len(p.ops) - 1; k >= 0 && p.ops[k].copy && p.ops[k].off+p.ops[k].n == off {
		p.ops[k].n += n
	} else {
		p.ops = append(p.ops, patchOp{copy: true, off: off, n: n})
	}
	p.pos += n
}

// reopenReaderAt reads a base without random access (a store's chunk
// stream) at any offset: forwards by skipping, backwards by reopening.
type reopenReaderAt struct {
	open func() (io.ReadCloser, error)
	rc   io.ReadCloser
	pos  int64
}

func (r *reopenReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if r.rc == nil || off < r.pos {
		if r.rc != nil {
			r.rc.Close()
			r.rc = nil
		}
		rc, err := r.open()
		if err != nil {
			return 0, err
		}
		r.rc, r.pos = rc, 0
	}
	if off > r.pos {
		n, err := io.CopyN(io.Discard, r.rc, off-r.pos)
		r.pos += n
		if err != nil {
			return 0, err
		}
	}
	n, err := io.ReadFull(r.rc, p)
	r.pos += int64(n)
	if err == io.ErrUnexpectedEOF {
		err = io.EOF
	}
	return n, err
}

func (r *reopenReaderAt) Close() error {
	if r.rc == nil {
		return nil
	}
	return r.rc.Close()
}

// patchRecord writes a patch record.
func (w *Writer) patchRecord(e *Entry, ops []patchOp, sum [32]byte) error {
	if err := w.recordHeader(e); err != nil {
		return err
	}
	if err := w.uvarint(uint64(e.Size)); err != nil {
		return err
	}
	var flags byte = patchInPlace
	var pos int64
	for _, op := range ops {
		if op.copy && op.off != pos {
			flags = 0
		}
		pos += op.n
	}
	w.num[0] = flags
	if _, err := w.hw.Write(w.num[:1]); err != nil {
		return err
	}
	for _, op := range ops {
		if op.copy {
			if err := w.uvarint(uint64(op.n)<<1 | 1); err != nil {
				return err
			}
			if err := w.uvarint(uint64(op.off)); err != nil {
				return err
			}
			continue
		}
		if err := w.uvarint(uint64(op.n) << 1); err != nil {
			return err
		}
		if _, err := w.hw.Write(op.data); err != nil {
			return err
		}
	}
	_, err := w.hw.Write(sum[:])
	return err
}

// patchBody is a patch record's ops as the decoder reads them; a
// literal's bytes are read through the decoder's content reader.
type patchBody struct {
	d          *decoder
	name       string
	size, done int64
	inPlace    bool
	ended      bool
	sum        [32]byte
}

// start reads the record's size and flags.
func (p *patchBody) start() error {
	size, err := p.d.uvarint(maxNeutralSize, "bad size for %q", p.name)
	if err != nil {
		return err
	}
	p.size = int64(size)
	flags, err := p.d.ReadByte()
	if err != nil {
		return p.d.fail("ends early in the patch of %q", p.name)
	}
	if flags&^patchInPlace != 0 {
		return corrupt("unknown patch flags %#x for %q", flags, p.name)
	}
	p.inPlace = flags&patchInPlace != 0
	return nil
}

// next returns the next op (false after the last, with sum read). A
// literal's bytes are then read through p.d.content.
func (p *patchBody) next() (patchOp, bool, error) {
	c := &p.d.content
	if c.left > 0 {
		if _, err := io.Copy(io.Discard, c); err != nil {
			return patchOp{}, false, err
		}
	}
	if p.done == p.size {
		if !p.ended {
			if err := p.d.full(p.sum[:]); err != nil {
				return patchOp{}, false, p.d.fail("ends early in the patch of %q", p.name)
			}
			p.ended = true
		}
		return patchOp{}, false, nil
	}
	v, err := binary.ReadUvarint(p.d)
	if err != nil {
		return patchOp{}, false, p.d.fail("ends early in the patch of %q", p.name)
	}
	op := patchOp{copy: v&1 == 1, n: int64(v >> 1)}
	if op.n <= 0 || op.n > p.size-p.done {
		return patchOp{}, false, corrupt("a patch op of %d bytes in %q, which has %d left", v>>1, p.name, p.size-p.done)
	}
	if op.copy {
		off, err := p.d.uvarint(maxNeutralSize, "bad copy offset in the patch of %q", p.name)
		if err != nil {
			return patchOp{}, false, err
		}
		op.off = int64(off)
	} else {
		c.name, c.left = p.name, op.n
	}
	p.done += op.n
	return op, true, nil
}

// drain reads what is left of the record.
func (p *patchBody) drain() error {
	for {
		_, ok, err := p.next()
		if err != nil || !ok {
			return err
		}
	}
}

// applyPatch writes the new content of e at its path from the base file
// there (baseSize bytes) and the ops of pb, and checks its sum.
func applyPatch(root *os.Root, e Entry, baseSize int64, pb *patchBody) (err error) {
	flag := os.O_RDONLY
	if pb.inPlace {
		flag = os.O_RDWR
	}
	src, err := root.OpenFile(e.Path, flag, 0)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, tmp := src, ""
	if !pb.inPlace {
		var rnd [6]byte
		_, _ = rand.Read(rnd[:])
		tmp = path.Join(path.Dir(e.Path), "."+path.Base(e.Path)+".dmpatch-"+hex.EncodeToString(rnd[:]))
		if dst, err = root.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
			return err
		}
		defer func() {
			dst.Close()
			if err != nil {
				_ = root.Remove(tmp)
			}
		}()
	}
	var pos int64
	for {
		op, ok, err := pb.next()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		switch {
		case op.copy && (op.off > baseSize || op.n > baseSize-op.off):
			return corrupt("the patch of %q copies bytes %d to %d of its base, which has %d", e.Path, op.off, op.off+op.n, baseSize)
		case op.copy && pb.inPlace && op.off != pos:
			return corrupt("the in-place patch of %q copies from another offset", e.Path)
		case op.copy && !pb.inPlace:
			if _, err := io.Copy(io.NewOffsetWriter(dst, pos), io.NewSectionReader(src, op.off, op.n)); err != nil {
				return err
			}
		case !op.copy:
			if _, err := io.Copy(io.NewOffsetWriter(dst, pos), &pb.d.content); err != nil {
				return err
			}
		}
		pos += op.n
	}
	if err := dst.Truncate(e.Size); err != nil {
		return err
	}
	h := blake3.New()
	if _, err := io.Copy(h, io.NewSectionReader(dst, 0, e.Size)); err != nil {
		return err
	}
	var got [32]byte
	if [32]byte(h.Sum(got[:0])) != pb.sum {
		return corrupt("the patch of %q does not give the sender's content (another base, or damage)", e.Path)
	}
	if tmp != "" {
		if err := dst.Close(); err != nil {
			return err
		}
		if err := root.Rename(tmp, e.Path); err != nil {
			return err
		}
	}
	if err := root.Chmod(e.Path, e.Mode); err != nil {
		return err
	}
	return root.Chtimes(e.Path, e.MTime, e.MTime)
}
