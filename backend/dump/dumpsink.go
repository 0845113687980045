package dump

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/dotmesh-io/dotmesh/backend/dump/cas"
	"github.com/dotmesh-io/dotmesh/backend/dump/internal/cdc"
	"github.com/dotmesh-io/dotmesh/backend/dump/source"
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
// unstaged, so they never reach the store.
type dumpSink struct {
	scratch // the driver's temporary files, removed by Close and Abort
	b       *Backend
	batch   *cas.Batch
	file    *os.File

	off    int64        // bytes written, after rewinds: the file's size
	cutEnd int64        // where the next chunk starts
	rd     sinkReader   // the chunker's input: the file from cutEnd on
	c      *cdc.Chunker // cuts rd; offsets relative to rd's start
	base   int64        // stream offset of rd's start
	chunks []sinkChunk
	buf    []byte // chunk data: of the largest chunk's capacity, never grown
	comp   []byte // compressed chunk
	err    error  // sticky: the first failure
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
		buf: make([]byte, 0, fileChunks.Max),
	}
	s.rd.s = s
	s.c = newChunker(&s.rd, fileChunks)
	return s
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
	if err := s.cut(false); err != nil {
		return 0, err
	}
	return len(p), nil
}

// cut takes chunks from the chunker while their ends are certain, or to
// the end when final.
func (s *dumpSink) cut(final bool) error {
	s.rd.final = final
	for final || s.off-s.cutEnd >= int64(fileChunks.Max) {
		ch, err := s.c.Next(s.buf[:0])
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return s.fail(err)
		}
		sc := sinkChunk{hash: cas.Sum(ch.Data), start: s.base + ch.Start, size: uint32(ch.Length)}
		claimed, err := s.batch.Claim(sc.hash)
		if err == nil && claimed {
			s.comp = s.b.store.Compress(ch.Data, s.comp)
			if err = s.batch.WriteCompressed(sc.hash, s.comp, ch.Length); err == nil {
				sc.staged = len(s.comp)
			}
		}
		if err != nil {
			return s.fail(err)
		}
		s.chunks = append(s.chunks, sc)
		s.cutEnd = sc.start + int64(sc.size)
	}
	return nil
}

func (s *dumpSink) fail(err error) error {
	if s.err == nil {
		s.err = fmt.Errorf("storing the dump: %w", err)
	}
	return s.err
}

// Rewind implements source.Rewinder.
func (s *dumpSink) Rewind(off int64) error {
	if s.err != nil {
		return s.err
	}
	if off < 0 || off > s.off {
		return fmt.Errorf("dump rewound to %d, outside the %d bytes written", off, s.off)
	}
	base, err := s.dropAfter(off)
	if err != nil {
		return s.fail(err)
	}
	if err := s.file.Truncate(off); err != nil {
		return s.fail(fmt.Errorf("rewind the dump: %w", err))
	}
	s.off, s.cutEnd, s.base = off, base, base
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
	out := make([]Chunk, 0, len(s.chunks))
	for _, c := range s.chunks {
		out = append(out, Chunk{Hash: c.hash, Size: c.size})
	}
	return out, s.off, nil
}

// dropAfter forgets the chunks that do not end by off, unstaging those
// staged for them unless a kept chunk has the same content, and returns
// where the kept ones end.
func (s *dumpSink) dropAfter(off int64) (int64, error) {
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
				return 0, err
			}
		}
	}
	s.chunks = s.chunks[:i]
	if i == 0 {
		return 0, nil
	}
	return s.chunks[i-1].start + int64(s.chunks[i-1].size), nil
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
