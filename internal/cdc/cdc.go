// Package cdc is a content-defined chunker: it cuts a byte stream into
// chunks whose boundaries depend only on the bytes near them, so that an
// insertion or deletion changes only the chunks around it and the rest
// deduplicate against an earlier version of the stream.
//
// It uses a gear hash (one shift, one table look-up and one add per byte)
// with normalized chunking, after FastCDC (Xia et al., "FastCDC: a Fast
// and Efficient Content-Defined Chunking Approach for Data Deduplication",
// USENIX ATC 2016):
//
//   - The first Min bytes of a chunk are never considered for a cut, and
//     all but the last 64 of them are not even hashed.
//   - From Min to the normal size Min + 2^AvgBits a cut needs AvgBits+1
//     zero bits, past it only AvgBits-1, so chunk sizes cluster around the
//     normal size instead of spreading exponentially.
//   - A chunk never exceeds Max bytes.
//
// The cut condition at a position is a function of the 64 bytes ending
// there only (the gear hash forgets a byte after 64 shifts, and hashing
// starts 64 bytes before the first candidate), so boundaries do not
// depend on where the chunk started beyond the Min/normal/Max rules.
//
// The gear table is generated from a fixed seed (see gear.go), never at
// random: boundaries are the same in every run, on every machine and in
// every version. Changing the table or the parameters changes every
// boundary, which makes previously stored chunks useless for
// deduplication.
package cdc

import (
	"fmt"
	"io"
)

// Params configure a chunker. Chunks average roughly Min + 2^AvgBits
// bytes (a few percent more on random data).
type Params struct {
	Min, Max int // chunk size bounds; the last chunk may be shorter than Min
	AvgBits  int // log2 of the expected distance past Min to a cut
}

// Validate reports whether p is usable.
func (p Params) Validate() error {
	switch {
	case p.Min < 1 || p.Max < p.Min:
		return fmt.Errorf("cdc: bad bounds min %d, max %d", p.Min, p.Max)
	case p.AvgBits < 2 || p.AvgBits > 40:
		return fmt.Errorf("cdc: average bits %d out of range [2, 40]", p.AvgBits)
	}
	return nil
}

// Chunk is one piece of the stream.
type Chunk struct {
	Start  int64  // offset of the chunk in the stream since New or Reset
	Length int    // len(Data)
	Data   []byte // the bytes: the buffer passed to Next, or its growth
}

// readSize is how much the chunker asks of its reader at a time past Min.
// Bytes read past a cut are copied to the next chunk, so this also bounds
// the copying per chunk.
const readSize = 128 << 10

// window is how many bytes before a candidate cut the gear hash depends
// on: its top bit has been shifted up from 64 bytes back.
const window = 64

// Chunker cuts the stream of one reader. It is not safe for concurrent
// use.
type Chunker struct {
	r      io.Reader
	min    int
	max    int
	normal int    // cuts before here need maskS, from here maskL
	maskS  uint64 // AvgBits+1 top bits
	maskL  uint64 // AvgBits-1 top bits
	carry  []byte // bytes read past the last cut
	start  int64  // stream offset of the next chunk
	eof    bool
}

// New returns a chunker over r. It panics if p is invalid.
func New(r io.Reader, p Params) *Chunker {
	c := &Chunker{}
	c.Reset(r, p)
	return c
}

// Reset makes c cut r from its start with params p, keeping c's
// allocations. It panics if p is invalid.
func (c *Chunker) Reset(r io.Reader, p Params) {
	if err := p.Validate(); err != nil {
		panic(err)
	}
	normal := p.Min + 1<<p.AvgBits
	if normal > p.Max || normal < p.Min { // the second on overflow
		normal = p.Max
	}
	*c = Chunker{
		r:      r,
		min:    p.Min,
		max:    p.Max,
		normal: normal,
		maskS:  topBits(p.AvgBits + 1),
		maskL:  topBits(p.AvgBits - 1),
		carry:  c.carry[:0],
	}
}

func topBits(n int) uint64 { return ^uint64(0) << (64 - n) }

// Next returns the next chunk, its data in buf (grown when its capacity
// is below the chunk's length; pass a buffer of Max capacity to avoid
// allocating). The chunk's data stay valid until buf is reused. At the
// end of the stream Next returns io.EOF. A read error other than io.EOF
// is returned as is; the chunker must then be Reset before further use.
func (c *Chunker) Next(buf []byte) (Chunk, error) {
	data := append(buf[:0], c.carry...)
	c.carry = c.carry[:0]
	var h uint64
	pos := c.min - window // next byte to hash
	if pos < 0 {
		pos = 0
	}
	empty := 0
	for {
		if pos < len(data) {
			// Hash what is new; cut checks from length min on.
			end := len(data)
			if end > c.max {
				end = c.max
			}
			var cut int
			h, pos, cut = c.scan(data, h, pos, end)
			if cut > 0 {
				return c.emit(data, cut), nil
			}
		}
		if len(data) >= c.max {
			return c.emit(data, c.max), nil
		}
		if c.eof {
			if len(data) == 0 {
				return Chunk{}, io.EOF
			}
			return c.emit(data, len(data)), nil
		}
		// Read up to min at once, then readSize at a time.
		limit := len(data) + readSize
		if limit < c.min {
			limit = c.min
		}
		if limit > c.max {
			limit = c.max
		}
		if cap(data) < limit {
			grown := make([]byte, len(data), max(limit, min(2*cap(data), c.max)))
			copy(grown, data)
			data = grown
		}
		n, err := c.r.Read(data[len(data):limit])
		data = data[:len(data)+n]
		switch {
		case err == io.EOF:
			c.eof = true
		case err != nil:
			return Chunk{}, err
		case n == 0:
			if empty++; empty >= 100 {
				return Chunk{}, io.ErrNoProgress
			}
		default:
			empty = 0
		}
	}
}

// scan hashes data[pos:end] into h and returns the new hash and position,
// and the length of the chunk when a cut was found (0 otherwise).
func (c *Chunker) scan(data []byte, h uint64, pos, end int) (uint64, int, int) {
	data = data[:end]
	// Warm-up: bytes before the first candidate only feed the hash.
	if stop := min(end, c.min-1); pos < stop {
		for _, b := range data[pos:stop] {
			h = h<<1 + gear[b]
		}
		pos = stop
	}
	// A cut after byte i makes a chunk of i+1 bytes.
	if stop := min(end, c.normal-1); pos < stop {
		var n int
		h, n = find(data[pos:stop], h, c.maskS)
		if pos += n; pos < stop || h&c.maskS == 0 && n > 0 {
			return h, pos, pos
		}
	}
	if pos < end {
		var n int
		h, n = find(data[pos:end], h, c.maskL)
		if pos += n; pos < end || h&c.maskL == 0 && n > 0 {
			return h, pos, pos
		}
	}
	return h, pos, 0
}

// find hashes data into h until h&mask == 0, and returns h and the
// number of bytes hashed: a cut follows the last of them when h&mask ==
// 0, or else all of data was hashed.
//
// The loop takes four bytes at a time: h after each of them is computed
// from h before the first, h<<k plus the table values of the k bytes
// shifted into place, so that the dependency chain between iterations
// is one shift and one add for four bytes rather than for each byte.
func find(data []byte, h uint64, mask uint64) (uint64, int) {
	i := 0
	for ; i+4 <= len(data); i += 4 {
		d := data[i : i+4 : i+4]
		g0, g1, g2, g3 := gear[d[0]], gear[d[1]], gear[d[2]], gear[d[3]]
		g01 := g0<<1 + g1
		g012 := g01<<1 + g2
		h1 := h<<1 + g0
		h2 := h<<2 + g01
		h3 := h<<3 + g012
		h4 := h<<4 + (g012<<1 + g3)
		if (h1&mask == 0) || (h2&mask == 0) || (h3&mask == 0) || (h4&mask == 0) {
			switch {
			case h1&mask == 0:
				return h1, i + 1
			case h2&mask == 0:
				return h2, i + 2
			case h3&mask == 0:
				return h3, i + 3
			}
			return h4, i + 4
		}
		h = h4
	}
	for ; i < len(data); i++ {
		h = h<<1 + gear[data[i]]
		if h&mask == 0 {
			return h, i + 1
		}
	}
	return h, i
}

// emit cuts data after n bytes, keeping the rest for the next chunk.
func (c *Chunker) emit(data []byte, n int) Chunk {
	c.carry = append(c.carry[:0], data[n:]...)
	ch := Chunk{Start: c.start, Length: n, Data: data[:n]}
	c.start += int64(n)
	return ch
}
