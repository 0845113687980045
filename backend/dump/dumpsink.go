package dump

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"

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
// is done. The chunks are cut from the bytes as written, kept in memory
// until cut (less than a maximal chunk past the last cut), not read back
// from the file: the file is the tree's copy of the dump and what the
// driver reads back, never the chunker's input.
//
// The file, the staged chunks and the temporary files are the dump's
// pending state: only a dump that ended cleanly (Close) hands its chunk
// list on; a failed one (Abort, with the batch aborted by the caller)
// leaves nothing referenced and nothing stored.
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
	win    []byte       // the bytes from cutEnd to off: win[head:]
	head   int          // where in win the uncut bytes start
	c      *cdc.Chunker // finds the cuts in win (Cut)
	chunks []sinkChunk
	comp   []byte // compressed chunk
	redo   redo
	err    error                  // sticky: the first failure
	meter  *dotmesh.ProgressMeter // bytes streamed, for the commit's progress
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
	return &dumpSink{
		scratch: scratch{parent: filepath.Dir(file.Name())},
		b:       b, batch: batch, file: file,
		c: newChunker(nil, fileChunks),
	}
}

// sinkWindow is win's capacity: room for three maximal chunks while it
// holds at most two, so that the uncut bytes move to its start at most
// once per maximal chunk cut.
var sinkWindow = 3 * fileChunks.Max

// keep appends p to the uncut bytes.
func (s *dumpSink) keep(p []byte) {
	if len(s.win)+len(p) > cap(s.win) {
		uncut := len(s.win) - s.head
		if need := uncut + len(p); need > cap(s.win) || cap(s.win) == 0 {
			grown := make([]byte, uncut, max(need+need/2, sinkWindow))
			copy(grown, s.win[s.head:])
			s.win = grown
		} else {
			s.win = s.win[:copy(s.win, s.win[s.head:])]
		}
		s.head = 0
	}
	s.win = append(s.win, p...)
}

// Write implements io.Writer: it appends p to the file and cuts every
// chunk whose end is certain, that is while at least a maximal chunk's
// worth is uncut.
func (s *dumpSink) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if _, err := s.file.WriteAt(p, s.off); err != nil {
		return 0, s.fail(fmt.Errorf("write the dump: %w", err))
	}
	s.off += int64(len(p))
	s.meter.Add(int64(len(p)))
	// A maximal chunk at a time, so that win never holds more than two.
	for rest := p; len(rest) > 0; {
		k := min(len(rest), fileChunks.Max)
		s.keep(rest[:k])
		rest = rest[k:]
		if err := s.cut(false); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// cut takes chunks from the chunker while their ends are certain, or to
// the end when final.
func (s *dumpSink) cut(final bool) error {
	for {
		uncut := s.win[s.head:]
		if len(uncut) == 0 || !final && len(uncut) < fileChunks.Max {
			return nil
		}
		sc, data := s.repeat(uncut)
		if data == nil {
			data = uncut[:s.c.Cut(uncut)]
			sc = sinkChunk{hash: cas.Sum(data), start: s.cutEnd, size: uint32(len(data))}
			s.redo.next = -1
			if k, ok := s.redo.index[sc.hash]; ok {
				s.redo.next = k + 1
			}
		}
		claimed, err := s.batch.Claim(sc.hash)
		if err == nil && claimed {
			s.comp = s.b.store.Compress(data, s.comp)
			if err = s.batch.WriteCompressed(sc.hash, s.comp, len(data)); err == nil {
				sc.staged = len(s.comp)
			}
		}
		if err != nil {
			return s.fail(err)
		}
		s.chunks = append(s.chunks, sc)
		s.cutEnd += int64(sc.size)
		s.head += int(sc.size)
	}
}

// repeat returns the next chunk and its data (in uncut) when the output
// there repeats the chunk taken back that redo expects next; data is nil
// when it does not.
func (s *dumpSink) repeat(uncut []byte) (sinkChunk, []byte) {
	r := &s.redo
	if r.next >= len(r.chunks) && r.taken != nil {
		// All recognised to the last: let the bytes taken back go.
		*r = redo{next: -1, repeated: r.repeated}
	}
	if r.next < 0 || r.next >= len(r.chunks) {
		return sinkChunk{}, nil
	}
	i := r.next
	c := r.chunks[i]
	r.next = -1
	if int(c.size) > len(uncut) {
		return sinkChunk{}, nil
	}
	data := uncut[:c.size]
	if !bytes.Equal(data, r.taken[c.start-r.off:][:c.size]) {
		return sinkChunk{}, nil
	}
	r.next = i + 1
	r.repeated++
	return sinkChunk{hash: c.hash, start: s.cutEnd, size: c.size}, data
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
	// The uncut bytes are those from base to off now, less than a
	// maximal chunk (the first chunk dropped starts at base and ends past
	// off); those cut already are read back.
	if base < s.cutEnd {
		back := make([]byte, min(s.cutEnd, off)-base, max(int(off-base), sinkWindow))
		if _, err := s.file.ReadAt(back, base); err != nil {
			return s.fail(fmt.Errorf("read the dump back: %w", err))
		}
		if off > s.cutEnd {
			back = append(back, s.win[s.head:][:off-s.cutEnd]...)
		}
		s.win, s.head = back, 0
	} else {
		s.win = s.win[:s.head+int(off-base)]
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
	s.off, s.cutEnd = off, base
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
func (s *dumpSink) Abort() { s.scratch.remove() }

// Close cuts and stages the last chunks and returns the chunk list and
// the dump's size. The temporary file then holds the complete dump.
func (s *dumpSink) Close() ([]Chunk, int64, error) {
	s.scratch.remove() // the driver is done with it
	if s.err != nil {
		return nil, 0, s.err
	}
	if err := s.cut(true); err != nil {
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
