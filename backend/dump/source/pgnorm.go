package source

import (
	"bytes"
	"fmt"
	"io"
	"slices"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Rewinder is a dump destination that accepts output ahead of its being
// final: a driver may write data it later takes back with Rewind. Only
// the bytes written by the time Dump returns successfully count.
type Rewinder interface {
	io.Writer
	// Rewind discards every byte written at offset off (counted from the
	// start of the dump) and after; the next Write continues at off.
	// taken, when not nil, holds the bytes discarded, as the caller read
	// them back: it must leave them unchanged for the rest of the dump. A
	// destination may use them to recognise output that repeats them
	// (the postgres normalizer's merge writes most of them again).
	Rewind(off int64, taken []byte) error
	// ReadAt reads back output written so far (and not rewound), so that
	// a driver need not keep in memory what it already wrote.
	ReadAt(p []byte, off int64) (int, error)
}

// pgNormalizer makes pg_dump's plain output deterministic: the rows of
// each COPY block are sorted (pg_dump emits them in physical order, which
// updates and VACUUM shuffle), and the per-run \restrict key lines are
// dropped. COPY text format keeps one row per line, so sorting lines is
// safe, and the order of rows does not matter to COPY. It also picks the
// versions out of the header, sparing extra connections.
//
// The input is copied once into slabs, and lines and rows are slices of
// them, so a row costs no allocation. Output leaves in contiguous runs.
//
// When the destination is a Rewinder, the rows of a block stream out as
// long as they arrive in order (the common case: tables loaded in key
// order and not updated since), so that whatever consumes the dump works
// while pg_dump runs, and their slabs are reused at once: a table in
// order costs no memory. A row a little late (an UPDATE that stays in
// its page, HOT, puts the new version a few rows on) is put in place at
// once: the last few KiB streamed are read back, the output is rewound
// to where the row goes and written again with it (see placeLate). The
// first row out of order by more stops the stream; from there rows are
// held. At the end of the block the held rows are
// sorted, the streamed rows from the first one that a held row sorts
// before are read back from the destination, the output is rewound to
// there and continues with the merge of the two. Otherwise every block
// is held and written sorted at its end.
type pgNormalizer struct {
	w   io.Writer
	rw  Rewinder // w, when it can rewind
	out int64    // bytes passed to w

	slabs   [][]byte // slabs[len-1] is being filled; earlier ones hold rows of the open block
	free    [][]byte // spare slabs
	partial int      // start in the current slab of an incomplete line

	// Output not yet passed to w: a run within one slab.
	pendSlab, pendStart, pendEnd int

	inCopy     bool
	blockStart int64    // output offset of the block's first row
	rows       []rowRef // the open block's rows held back, in arrival order
	streaming  bool     // rows still go out as they come
	heldSorted bool     // rows arrived in order

	// The rows of the open block that went out as they came.
	streamed     int64       // their bytes
	streamedRows int         // their number
	lastRow      []byte      // the last of them: in a slab, or in lastBuf
	lastBuf      []byte      // lastRow, once its slab was reused
	samples      []rowSample // every sampleEvery-th of them
	tail         []byte      // at the block's end: streamed rows read back for the merge
	late         []byte      // placeLate's read-back buffer

	complete bool
	server   string
	tool     string
	err      error
}

// rowSample is a streamed row and its output offset: at the block's end
// they bound the part of the output to read back.
type rowSample struct {
	off int64
	row []byte
}

const (
	maxSampleSize = 4 << 10 // longer rows are not sampled
	tailSlab      = -2      // the slab index of tail
)

var sampleEvery = 1024 // a variable for tests

// rowRef is a row (line with its newline) in a slab: no pointers, so a
// million of them cost the garbage collector nothing.
type rowRef struct {
	slab       int32
	start, end int32
}

var pgSlabSize = 2 << 20 // a variable for tests

// newPGNormalizer's first slab is empty: the first read makes it, by
// when the tool runs, so that the first touch of its pages overlaps the
// tool's start instead of delaying it.
func newPGNormalizer(w io.Writer) *pgNormalizer {
	n := &pgNormalizer{w: w, slabs: [][]byte{nil}, pendSlab: -1}
	n.rw, _ = w.(Rewinder)
	return n
}

// newSlabBuf returns an empty slab of capacity size, its pages mapped:
// the tool's output is read into all of it.
func newSlabBuf(size int) []byte {
	s := make([]byte, size)
	Prefault(s)
	return s[:0]
}

func (n *pgNormalizer) slab(i int) []byte {
	if i == tailSlab {
		return n.tail
	}
	return n.slabs[i]
}

func (n *pgNormalizer) row(r rowRef) []byte { return n.slab(int(r.slab))[r.start:r.end] }

func (n *pgNormalizer) cmp(a, b rowRef) int { return compareRows(n.row(a), n.row(b)) }

func (n *pgNormalizer) Write(p []byte) (int, error) {
	if n.err != nil {
		return 0, n.err
	}
	size := len(p)
	for len(p) > 0 && n.err == nil {
		s := n.slabs[len(n.slabs)-1]
		if len(s) == cap(s) {
			n.newSlab(len(s) - n.partial + min(len(p), pgSlabSize))
			continue
		}
		k := min(len(p), cap(s)-len(s))
		from := len(s)
		n.slabs[len(n.slabs)-1] = append(s, p[:k]...)
		p = p[k:]
		n.lines(from)
	}
	n.flush()
	return size, n.err
}

// ReadFrom implements io.ReaderFrom: the tool's output is read straight
// into the slabs, sparing a copy.
func (n *pgNormalizer) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	for n.err == nil {
		s := n.slabs[len(n.slabs)-1]
		if cap(s)-len(s) < 64<<10 {
			n.newSlab(len(s) - n.partial + 64<<10)
			continue
		}
		k, err := r.Read(s[len(s):cap(s)])
		total += int64(k)
		if k > 0 {
			from := len(s)
			n.slabs[len(n.slabs)-1] = s[:from+k]
			n.lines(from)
			n.flush()
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return total, err
		}
	}
	return total, n.err
}

// lines handles the lines completed by the bytes of the current slab
// from from on.
func (n *pgNormalizer) lines(from int) {
	s := n.slabs[len(n.slabs)-1]
	start := n.partial
	for n.err == nil {
		i := bytes.IndexByte(s[from:], '\n')
		if i < 0 {
			break
		}
		end := from + i + 1
		// line may renumber the slabs, never move the current one.
		n.line(int32(len(n.slabs)-1), start, end)
		start, from = end, end
	}
	n.partial = start
}

// newSlab moves the incomplete line to the start of a slab with room for
// at least need bytes. Once the output is flushed, only held rows refer
// to the current slab (and the last streamed row, which is copied out),
// so without held rows it is reused in place when big enough.
func (n *pgNormalizer) newSlab(need int) {
	cur := len(n.slabs) - 1
	s := n.slabs[cur]
	tail := s[n.partial:]
	size := max(pgSlabSize, 2*len(tail), need)
	n.flush()
	n.partial = 0
	keep := n.inCopy && len(n.rows) > 0
	if n.streaming && n.streamedRows > 0 {
		n.lastBuf = append(n.lastBuf[:0], n.lastRow...)
		n.lastRow = n.lastBuf
	}
	if !keep && cap(s) >= size {
		n.slabs[cur] = s[:copy(s, tail)]
		return
	}
	var ns []byte
	if k := len(n.free) - 1; k >= 0 && cap(n.free[k]) >= size {
		ns, n.free = n.free[k][:0], n.free[:k]
	} else {
		ns = newSlabBuf(size)
	}
	ns = append(ns, tail...)
	if keep {
		n.slabs = append(n.slabs, ns)
	} else {
		if cap(s) > 0 {
			n.free = append(n.free, s)
		}
		n.slabs[cur] = ns
	}
}

// emit queues slab[start:end] for output, extending the pending run when
// it continues it.
func (n *pgNormalizer) emit(slab int32, start, end int) {
	if n.pendEnd > n.pendStart && int(slab) == n.pendSlab && start == n.pendEnd {
		n.pendEnd = end
		return
	}
	n.flush()
	n.pendSlab, n.pendStart, n.pendEnd = int(slab), start, end
}

func (n *pgNormalizer) flush() {
	if n.pendEnd > n.pendStart {
		n.write(n.slab(n.pendSlab)[n.pendStart:n.pendEnd])
	}
	n.pendSlab, n.pendStart, n.pendEnd = -1, 0, 0
}

func (n *pgNormalizer) write(b []byte) {
	if n.err == nil {
		var k int
		k, n.err = n.w.Write(b)
		n.out += int64(k)
	}
}

var (
	pgServerPrefix = []byte("-- Dumped from database version ")
	pgToolPrefix   = []byte("-- Dumped by pg_dump version ")
)

func (n *pgNormalizer) line(slab int32, start, end int) {
	l := n.slabs[slab][start:end]
	switch {
	case n.inCopy && string(l) == "\\.\n":
		n.endBlock() // renumbers the slabs: the current one is 0 now
		n.emit(0, start, end)
	case n.inCopy:
		r := rowRef{slab, int32(start), int32(end)}
		switch {
		case n.streaming && (n.streamedRows == 0 || compareRows(n.lastRow, l) <= 0):
			if n.streamedRows%sampleEvery == 0 && len(l) <= maxSampleSize {
				n.samples = append(n.samples, rowSample{n.blockStart + n.streamed, slices.Clone(l)})
			}
			n.streamed += int64(len(l))
			n.streamedRows++
			n.lastRow = l
			n.emit(slab, start, end)
		case n.streaming && n.placeLate(l):
		case n.streaming: // the first row out of order: hold from here
			n.streaming = false
			n.rows = append(n.rows, r)
		default:
			if n.heldSorted && len(n.rows) > 0 && n.cmp(n.rows[len(n.rows)-1], r) > 0 {
				n.heldSorted = false
			}
			n.rows = append(n.rows, r)
		}
	case bytes.HasPrefix(l, []byte("\\restrict ")) || bytes.HasPrefix(l, []byte("\\unrestrict ")):
	default:
		switch {
		case bytes.HasPrefix(l, []byte("COPY ")) && bytes.HasSuffix(l, []byte("FROM stdin;\n")):
			n.inCopy = true
			n.streaming = n.rw != nil
			n.heldSorted = true
			n.rows = n.rows[:0]
			n.emit(slab, start, end)
			n.flush()
			n.blockStart = n.out
			return
		case bytes.HasPrefix(l, []byte(pgTrailer)):
			n.complete = true
		case bytes.HasPrefix(l, pgServerPrefix):
			n.server = "PostgreSQL " + string(bytes.TrimSpace(l[len(pgServerPrefix):]))
		case bytes.HasPrefix(l, pgToolPrefix):
			n.tool = "pg_dump (PostgreSQL) " + string(bytes.TrimSpace(l[len(pgToolPrefix):]))
		}
		n.emit(slab, start, end)
	}
}

// lateReach is how far back in the streamed rows placeLate looks for
// where a late row goes, in two steps: most rows an update moved within
// its page (8 KiB) are found in the first.
var lateReach = [2]int{4 << 10, 32 << 10} // a variable for tests

// placeLate puts row l, which sorts before the last row streamed, among
// the streamed rows of the open block when it belongs within the last
// lateReach bytes of them: it reads them back, rewinds the output to
// where l goes and writes l and the rows after it again. It reports
// whether it did; if not, l belongs further back (or an error is set).
func (n *pgNormalizer) placeLate(l []byte) bool {
	if n.err != nil || len(l) > maxSampleSize {
		return false
	}
	n.flush()
	for _, reach := range lateReach {
		back := min(n.streamed, int64(reach))
		if back <= 0 {
			continue
		}
		if cap(n.late) < int(back) {
			n.late = make([]byte, back)
		}
		buf := n.late[:back]
		from := n.out - back
		if _, err := n.rw.ReadAt(buf, from); err != nil {
			n.err = fmt.Errorf("reading back the dump: %w", err)
			return false
		}
		pos := 0
		if back < n.streamed { // buf starts within a row: skip to the next
			k := bytes.IndexByte(buf, '\n')
			if k < 0 {
				continue
			}
			pos = k + 1
		}
		// Unless buf holds every streamed row, l must go after its first
		// whole row, or else further back.
		if pos > 0 {
			if k := bytes.IndexByte(buf[pos:], '\n'); k < 0 || compareRows(buf[pos:pos+k+1], l) > 0 {
				continue
			}
		}
		for pos < len(buf) {
			k := bytes.IndexByte(buf[pos:], '\n')
			if compareRows(buf[pos:pos+k+1], l) > 0 {
				break
			}
			pos += k + 1
		}
		at := from + int64(pos)
		// Nothing to recognise in what is taken back: a rewind this short
		// rarely reaches a cut chunk.
		if err := n.rw.Rewind(at, nil); err != nil {
			n.err = err
			return false
		}
		n.out = at
		n.write(l)
		n.write(buf[pos:])
		// Samples at or past at moved on by l.
		for i := len(n.samples) - 1; i >= 0 && n.samples[i].off >= at; i-- {
			n.samples[i].off += int64(len(l))
		}
		n.streamed += int64(len(l))
		n.streamedRows++
		return n.err == nil
	}
	return false
}

// endBlock writes the rows held back, in order, merged with the streamed
// rows that they sort before, and frees the block's slabs.
func (n *pgNormalizer) endBlock() {
	if held := n.rows; len(held) > 0 {
		if !n.heldSorted {
			slices.SortFunc(held, n.cmp)
		}
		n.flush()
		if n.streamedRows > 0 && n.err == nil {
			n.err = n.readBackFrom(n.row(held[0]))
		}
		// Merge the tail's lines (all sorted, as streamed) with the held rows.
		pos := 0
		for n.err == nil && (pos < len(n.tail) || len(held) > 0) {
			end := len(n.tail)
			if pos < end {
				end = pos + bytes.IndexByte(n.tail[pos:], '\n') + 1
			}
			if len(held) == 0 || pos < len(n.tail) && compareRows(n.tail[pos:end], n.row(held[0])) <= 0 {
				n.emit(tailSlab, pos, end)
				pos = end
			} else {
				n.emit(held[0].slab, int(held[0].start), int(held[0].end))
				held = held[1:]
			}
		}
	}
	n.flush()
	// Only the current slab (it holds the "\." line) stays.
	last := len(n.slabs) - 1
	for _, s := range n.slabs[:last] {
		n.free = append(n.free, s)
	}
	if len(n.free) > 4 {
		n.free = n.free[:4]
	}
	cur := n.slabs[last]
	// Rows of the closed block index slabs by position: renumber.
	n.slabs = append(n.slabs[:0], cur)
	n.rows, n.inCopy, n.streaming = n.rows[:0], false, false
	n.streamed, n.streamedRows, n.lastRow, n.samples, n.tail = 0, 0, nil, n.samples[:0], nil
}

// readBackFrom sets tail to the streamed rows from the first that first
// sorts before (or equals) on, read back from the destination, and
// rewinds the output to where they start.
func (n *pgNormalizer) readBackFrom(first []byte) error {
	// The last sample below first bounds what to read: the rows before it
	// stay as they went out.
	i, _ := slices.BinarySearchFunc(n.samples, first, func(s rowSample, t []byte) int { return compareRows(s.row, t) })
	from := n.blockStart
	if i > 0 {
		from = n.samples[i-1].off
	}
	end := n.blockStart + n.streamed
	buf := make([]byte, end-from)
	Prefault(buf)
	if _, err := n.rw.ReadAt(buf, from); err != nil {
		return fmt.Errorf("reading back the dump: %w", err)
	}
	pos := 0
	for pos < len(buf) {
		k := bytes.IndexByte(buf[pos:], '\n')
		if k < 0 {
			return fmt.Errorf("reading back the dump: %d bytes at %d hold no whole row", len(buf)-pos, from+int64(pos))
		}
		if compareRows(buf[pos:pos+k+1], first) >= 0 {
			break
		}
		pos += k + 1
	}
	n.tail = buf[pos:]
	if len(n.tail) == 0 {
		return nil
	}
	if err := n.rw.Rewind(from+int64(pos), n.tail); err != nil {
		return err
	}
	n.out = from + int64(pos)
	return nil
}

// Close flushes; a dump cut inside a COPY block or mid-line is truncated.
func (n *pgNormalizer) Close() error {
	n.flush()
	if n.err != nil {
		return n.err
	}
	if n.inCopy || n.partial < len(n.slabs[len(n.slabs)-1]) {
		n.complete = false
		return fmt.Errorf("%w: pg_dump output ends in the middle of table data: truncated", dotmesh.ErrUnavailable)
	}
	return nil
}

// compareRows orders rows by the length of their leading digit run, then
// bytewise: a total order (so deterministic) under which integer keys
// dumped in key order, the common case, are sorted already, which the
// sort detects in linear time.
func compareRows(a, b []byte) int {
	if da, db := digitRun(a), digitRun(b); da != db {
		return da - db
	}
	return bytes.Compare(a, b)
}

func digitRun(b []byte) int {
	i := 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// CompareRows is the order of the rows of every COPY block in a
// normalised dump (see compareRows), for readers that merge two dumps.
func CompareRows(a, b []byte) int { return compareRows(a, b) }
