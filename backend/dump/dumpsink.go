package dump

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/dotmesh-io/dotmesh/backend/dump/cas"
	"github.com/dotmesh-io/dotmesh/backend/dump/source"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/internal/cdc"
)

// dumpSink takes a source's dump as the driver produces it and, as it
// comes, writes it to a temporary file, cuts it into chunks exactly as the
// commit would cut that file, hashes them and stages those the store
// lacks, compressed. Close cuts and stages the rest: the commit neither
// writes the dump and reads it back nor waits for chunking after the tool
// is done.
//
// All of it runs in the driver's goroutine, inside Write. The dump tool
// and its database server are the critical path, and on a small machine
// every thread busy beside them slows them down (the bench measures it:
// "pg_dump beside one busy thread"); one thread keeps up with any dump
// tool, and when it does not, the pipe makes the tool wait.
//
// It is a source.Rewinder: output taken back (the postgres normalizer
// streams rows ahead of sorting them) is cut from the file and the
// chunker restarts at the last chunk boundary before it. Chunk boundaries
// depend only on the bytes since the previous boundary, so the chunks
// come out as they would from the final file. Chunks taken back are
// unstaged, so they never reach the store. When the rewinder hands over
// the bytes it took back, a chunk that the output repeats is recognised
// by comparing bytes instead of cutting and hashing again (see redo).
type dumpSink struct {
	scratch // the driver's temporary files, removed by Close and Abort
	b       *Backend
	batch   *cas.Batch
	file    *os.File

	off    int64        // bytes written, after rewinds
	cutEnd int64        // where the next chunk starts
	rd     sinkReader   // the chunker's input: the file from cutEnd on
	c      *cdc.Chunker // cuts rd; offsets relative to rd's start
	base   int64        // stream offset of rd's start
	chunks []sinkChunk
	retry  int64  // with less than a maximal chunk uncut, cut again from here on (eagerCut)
	buf    []byte // chunk data, of the largest chunk's capacity: see sinkBufs
	comp   []byte // compressed chunk
	// released: buf and comp went back to sinkBufs (Close, Abort)
	released bool
	redo     redo
	err      error                  // sticky: the first failure
	meter    *dotmesh.ProgressMeter // bytes streamed, for the commit's progress
}

// redo is what the last rewind took back, to recognise in what follows.
// After a rewind the output usually repeats the bytes taken back, with
// something inserted (the normalizer's merge puts held rows among them).
// Chunk boundaries depend only on a chunk's own bytes, so once a chunk
// cut after the rewind equals one taken back, the next one taken back
// is likely to follow: if the output's next bytes equal it, it is the
// next chunk, with the same boundary and hash, and needs neither cutting
// nor hashing.
type redo struct {
	taken    []byte      // the bytes taken back, from off
	off      int64       // where they started
	chunks   []sinkChunk // the chunks taken back that lie within taken
	index    map[cas.Hash]int
	next     int // the chunk expected next, or -1
	repeated int // chunks recognised, for tests
}

type sinkChunk struct {
	hash   cas.Hash
	start  int64
	size   uint32
	staged int // stored bytes, when this chunk staged its object
}

var (
	_ source.Rewinder = (*dumpSink)(nil)
	_ source.Scratch  = (*dumpSink)(nil)
)

func (b *Backend) newDumpSink(batch *cas.Batch, file *os.File) *dumpSink {
	s := &dumpSink{
		scratch: scratch{parent: filepath.Dir(file.Name())},
		b:       b, batch: batch, file: file,
	}
	s.rd.s = s
	s.c = newChunker(&s.rd, fileChunks)
	return s
}

// sinkBufs keeps the chunk and compression buffers of a finished dump
// sink for the next: on the virtual machines this project runs on, the
// first touch of a page costs about 20 µs, so a fresh 4 MiB chunk
// buffer cost each commit of a database ~20 ms of CPU beside its dump
// tool. One set is kept; concurrent sinks allocate their own.
type sinkBufs struct {
	mu        sync.Mutex
	buf, comp []byte
}

func (k *sinkBufs) take() (buf, comp []byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	buf, comp, k.buf, k.comp = k.buf, k.comp, nil, nil
	if buf == nil {
		buf = make([]byte, 0, fileChunks.Max)
	}
	return buf, comp
}

func (k *sinkBufs) put(buf, comp []byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.buf == nil {
		k.buf, k.comp = buf[:0], comp[:0]
	}
}

// prime makes the chunk buffer for the next sink unless one is kept,
// its pages mapped (the first touch of a page is what costs).
func (k *sinkBufs) prime() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.buf == nil {
		k.buf = make([]byte, 0, fileChunks.Max)
		source.Prefault(k.buf[:cap(k.buf)])
	}
}

// primeDump readies the node's next dump before it is taken
// (warmSources): the sink's chunk buffer, its pages mapped in one call.
// Not the serial encoder's history: warming it touches all of it, 4 MiB
// and more, where a dump touches only as much as its largest chunk, and
// measured from binding to the first commit that cost more than it saved
// (3,450 page faults against 1,950).
func (b *Backend) primeDump() {
	b.sinkBufs.prime()
}

// release hands the buffers back for the next sink.
func (s *dumpSink) release() {
	s.released = true
	if s.buf != nil {
		s.b.sinkBufs.put(s.buf, s.comp)
		s.buf, s.comp = nil, nil
	}
}

// Write implements io.Writer: it appends p to the file and cuts every
// chunk whose end is certain: one whose boundary lies in what is written,
// or a maximal one (see cut).
func (s *dumpSink) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if _, err := s.file.WriteAt(p, s.off); err != nil {
		return 0, s.fail(fmt.Errorf("write the dump: %w", err))
	}
	s.off += int64(len(p))
	s.meter.Add(int64(len(p)))
	if err := s.cut(false); err != nil {
		return 0, err
	}
	return len(p), nil
}

// eagerCut is how much uncut output makes cut look for the next chunk
// before a maximal chunk's worth is there. A boundary found within what
// is written is final (it depends only on the bytes since the previous
// one), so chunks are cut, hashed and compressed about a MiB behind the
// tool instead of 4 MiB, and less is left for Close once the tool has
// exited (the commit waits for that part). When the chunker finds no
// boundary in what is written, it starts that chunk again once eagerCut
// more bytes have come.
const eagerCut = 1 << 20

// cut takes chunks from the chunker while their ends are certain, or to
// the end when final.
func (s *dumpSink) cut(final bool) error {
	s.rd.final = final
	if s.buf == nil && !s.released {
		// Taken at the first cut, not when the sink is made: the dump
		// tool is running by then, so a fresh node's first touch of
		// these pages overlaps its start instead of delaying it.
		s.buf, s.comp = s.b.sinkBufs.take()
	}
	for {
		full := final || s.off-s.cutEnd >= int64(fileChunks.Max)
		if !full && (s.off-s.cutEnd < eagerCut || s.off < s.retry) {
			return nil
		}
		sc, data, wait, err := s.repeat()
		if err != nil {
			return s.fail(err)
		}
		if wait {
			return nil
		}
		if data == nil {
			ch, err := s.c.Next(s.buf[:0])
			if err == io.EOF {
				return nil
			}
			if err == errStarved && !full {
				// No boundary in what is written yet.
				s.retry = s.off + eagerCut
				s.rd.pos, s.base = s.cutEnd, s.cutEnd
				s.c.Reset(&s.rd, fileChunks)
				return nil
			}
			if err != nil {
				return s.fail(err)
			}
			data = ch.Data
			sc = sinkChunk{hash: cas.Sum(data), start: s.base + ch.Start, size: uint32(ch.Length)}
			s.redo.next = -1
			if k, ok := s.redo.index[sc.hash]; ok {
				s.redo.next = k + 1
			}
		}
		claimed, err := s.batch.Claim(sc.hash)
		if err == nil && claimed {
			s.comp = s.b.store.CompressSerial(data, s.comp)
			if err = s.batch.WriteCompressed(sc.hash, s.comp, len(data)); err == nil {
				sc.staged = len(s.comp)
			}
		}
		if err != nil {
			return s.fail(err)
		}
		s.chunks = append(s.chunks, sc)
		s.cutEnd = sc.start + int64(sc.size)
	}
}

// repeat returns the next chunk and its data when the output there
// repeats the chunk taken back that redo expects next; data is nil when
// it does not. wait means the output may repeat it but is not written
// that far yet. It leaves the chunker at the end of a chunk it returns.
func (s *dumpSink) repeat() (sc sinkChunk, data []byte, wait bool, err error) {
	r := &s.redo
	if r.next >= len(r.chunks) && r.taken != nil {
		// All recognised to the last: let the bytes taken back go.
		*r = redo{next: -1, repeated: r.repeated}
	}
	if r.next < 0 || r.next >= len(r.chunks) {
		return sinkChunk{}, nil, false, nil
	}
	i := r.next
	c := r.chunks[i]
	if s.cutEnd+int64(c.size) > s.off {
		if !s.rd.final {
			return sinkChunk{}, nil, true, nil
		}
		r.next = -1
		return sinkChunk{}, nil, false, nil
	}
	r.next = -1
	if cap(s.buf) < int(c.size) { // released by Close or Abort
		s.buf = make([]byte, 0, fileChunks.Max)
	}
	data = s.buf[:c.size]
	if _, err := s.file.ReadAt(data, s.cutEnd); err != nil {
		return sinkChunk{}, nil, false, fmt.Errorf("read the dump back: %w", err)
	}
	old := r.taken[c.start-r.off:][:c.size]
	if !bytes.Equal(data, old) {
		return sinkChunk{}, nil, false, nil
	}
	r.next = i + 1
	r.repeated++
	end := s.cutEnd + int64(c.size)
	s.rd.pos, s.base = end, end
	s.c.Reset(&s.rd, fileChunks)
	return sinkChunk{hash: c.hash, start: s.cutEnd, size: c.size}, data, false, nil
}

func (s *dumpSink) fail(err error) error {
	if s.err == nil {
		s.err = fmt.Errorf("storing the dump: %w", err)
	}
	return s.err
}

// Rewind implements source.Rewinder.
func (s *dumpSink) Rewind(off int64, taken []byte) error {
	if s.err != nil {
		return s.err
	}
	if off < 0 || off > s.off {
		return fmt.Errorf("dump rewound to %d, outside the %d bytes written", off, s.off)
	}
	base, dropped, err := s.dropAfter(off)
	if err != nil {
		return s.fail(err)
	}
	s.redo = redo{next: -1, repeated: s.redo.repeated}
	if int64(len(taken)) == s.off-off {
		s.redo.taken, s.redo.off = taken, off
		s.redo.index = map[cas.Hash]int{}
		for _, c := range dropped {
			if c.start < off {
				continue // the first may begin before off
			}
			if _, dup := s.redo.index[c.hash]; !dup {
				s.redo.index[c.hash] = len(s.redo.chunks)
			}
			s.redo.chunks = append(s.redo.chunks, c)
		}
	}
	// The file keeps its bytes past off until Close: what follows a
	// rewind (the postgres normalizer's merge) mostly rewrites them, and
	// overwriting cached pages costs a copy where truncating them and
	// writing afresh costs freeing, allocating and zeroing each page.
	s.off, s.cutEnd, s.base, s.retry = off, base, base, 0
	s.rd.pos = base
	s.c.Reset(&s.rd, fileChunks)
	return nil
}

// ReadAt implements source.Rewinder: the file holds everything written.
func (s *dumpSink) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > s.off {
		return 0, fmt.Errorf("dump read back at %d+%d, outside the %d bytes written", off, len(p), s.off)
	}
	return s.file.ReadAt(p, off)
}

// Abort drops the driver's temporary files; the batch, aborted by the
// caller, takes the staged chunks with it.
func (s *dumpSink) Abort() {
	s.scratch.remove()
	s.release()
}

// Close cuts and stages the last chunks and returns the chunk list and
// the dump's size. The temporary file then holds the complete dump.
func (s *dumpSink) Close() ([]Chunk, int64, error) {
	s.scratch.remove() // the driver is done with it
	if s.err != nil {
		s.release()
		return nil, 0, s.err
	}
	err := s.cut(true)
	s.release()
	if err != nil {
		return nil, 0, err
	}
	// After a rewind the file may hold more than what followed.
	if err := s.file.Truncate(s.off); err != nil {
		return nil, 0, s.fail(fmt.Errorf("cut the dump to size: %w", err))
	}
	out := make([]Chunk, 0, len(s.chunks))
	for _, c := range s.chunks {
		out = append(out, Chunk{Hash: c.hash, Size: c.size})
	}
	return out, s.off, nil
}

// dropAfter forgets the chunks that do not end by off, unstaging those
// staged for them unless a kept chunk has the same content, and returns
// where the kept ones end and the chunks it dropped.
func (s *dumpSink) dropAfter(off int64) (int64, []sinkChunk, error) {
	i := len(s.chunks)
	for i > 0 && s.chunks[i-1].start+int64(s.chunks[i-1].size) > off {
		i--
	}
	if i == len(s.chunks) { // the common short rewind: into what is uncut
		if i == 0 {
			return 0, nil, nil
		}
		return s.chunks[i-1].start + int64(s.chunks[i-1].size), nil, nil
	}
	kept := make(map[cas.Hash]bool, i)
	for _, c := range s.chunks[:i] {
		kept[c.hash] = true
	}
	for _, c := range s.chunks[i:] {
		if c.staged > 0 && !kept[c.hash] {
			if err := s.batch.Unstage(c.hash, int(c.size), c.staged); err != nil {
				return 0, nil, err
			}
		}
	}
	dropped := slices.Clone(s.chunks[i:])
	s.chunks = s.chunks[:i]
	if i == 0 {
		return 0, dropped, nil
	}
	return s.chunks[i-1].start + int64(s.chunks[i-1].size), dropped, nil
}

// errStarved means the chunker wanted bytes not written yet: cut calls it
// only while a maximal chunk's worth is there, so this is a bug.
var errStarved = errors.New("dump chunker read past what was written")

// sinkReader is the chunker's input: the file from pos, up to what has
// been written; its end is the stream's end only once final.
type sinkReader struct {
	s     *dumpSink
	pos   int64
	final bool
}

func (r *sinkReader) Read(p []byte) (int, error) {
	left := r.s.off - r.pos
	if left <= 0 {
		if r.final {
			return 0, io.EOF
		}
		return 0, errStarved
	}
	if int64(len(p)) > left {
		p = p[:left]
	}
	n, err := r.s.file.ReadAt(p, r.pos)
	r.pos += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}
