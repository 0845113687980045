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
	Rewind(off int64) error
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
// while pg_dump runs. The first row out of order stops the stream; at the
// end of the block the rows still held are sorted, and the output is
// rewound to the first streamed row that one of them sorts before and
// continues with the merge of the two. Otherwise every block is held and
// written sorted at its end.
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
	rows       []rowRef // the open block's rows, in arrival order
	streamed   int      // rows[:streamed] went out already, in order
	streaming  bool     // rows still go out as they come
	heldSorted bool     // rows[streamed:] arrived in order

	complete bool
	server   string
	tool     string
	err      error
}

// rowRef is a row (line with its newline) in a slab: no pointers, so a
// million of them cost the garbage collector nothing.
type rowRef struct {
	slab       int32
	start, end int32
}

var pgSlabSize = 2 << 20 // a variable for tests

func newPGNormalizer(w io.Writer) *pgNormalizer {
	n := &pgNormalizer{w: w, slabs: [][]byte{make([]byte, 0, pgSlabSize)}, pendSlab: -1}
	n.rw, _ = w.(Rewinder)
	return n
}

func (n *pgNormalizer) row(r rowRef) []byte { return n.slabs[r.slab][r.start:r.end] }

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
// at least need bytes. Outside a block nothing refers to the current slab
// once the output is flushed, so it is reused in place when big enough.
func (n *pgNormalizer) newSlab(need int) {
	cur := len(n.slabs) - 1
	s := n.slabs[cur]
	tail := s[n.partial:]
	size := max(pgSlabSize, 2*len(tail), need)
	n.flush()
	n.partial = 0
	if !n.inCopy && cap(s) >= size {
		n.slabs[cur] = s[:copy(s, tail)]
		return
	}
	var ns []byte
	if k := len(n.free) - 1; k >= 0 && cap(n.free[k]) >= size {
		ns, n.free = n.free[k][:0], n.free[:k]
	} else {
		ns = make([]byte, 0, size)
	}
	ns = append(ns, tail...)
	if n.inCopy {
		n.slabs = append(n.slabs, ns)
	} else {
		n.free = append(n.free, s)
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
		n.write(n.slabs[n.pendSlab][n.pendStart:n.pendEnd])
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
		case n.streaming && (len(n.rows) == 0 || n.cmp(n.rows[len(n.rows)-1], r) <= 0):
			n.rows = append(n.rows, r)
			n.streamed = len(n.rows)
			n.emit(slab, start, end)
		case n.streaming: // the first row out of order: hold from here
			n.streaming = false
			n.rows = append(n.rows, r)
		default:
			if n.heldSorted && len(n.rows) > n.streamed && n.cmp(n.rows[len(n.rows)-1], r) > 0 {
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
			n.rows, n.streamed = n.rows[:0], 0
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

// endBlock writes the rows held back, in order, rewinding over streamed
// rows that they sort before, and frees the block's slabs.
func (n *pgNormalizer) endBlock() {
	held := n.rows[n.streamed:]
	if len(held) > 0 {
		if !n.heldSorted {
			slices.SortFunc(held, n.cmp)
		}
		done := n.rows[:n.streamed]
		// The first streamed row that the smallest held row sorts before.
		k, _ := slices.BinarySearchFunc(done, held[0], n.cmp)
		if k < len(done) {
			off := n.blockStart
			for _, r := range done[:k] {
				off += int64(r.end - r.start)
			}
			n.flush()
			if n.err == nil {
				n.err = n.rw.Rewind(off)
				n.out = off
			}
		}
		done = done[k:]
		for len(done) > 0 || len(held) > 0 {
			var r rowRef
			if len(held) == 0 || len(done) > 0 && n.cmp(done[0], held[0]) <= 0 {
				r, done = done[0], done[1:]
			} else {
				r, held = held[0], held[1:]
			}
			n.emit(r.slab, int(r.start), int(r.end))
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
	n.rows, n.streamed, n.inCopy, n.streaming = n.rows[:0], 0, false, false
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
