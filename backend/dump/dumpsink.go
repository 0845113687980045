package dump

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/dotmesh-io/dotmesh/backend/dump/cas"
	"github.com/dotmesh-io/dotmesh/backend/dump/source"
)

// dumpSink takes a source's dump as the driver produces it and, while the
// dump tool still runs, writes it to a temporary file, cuts it into
// chunks exactly as the commit would cut that file, hashes them and
// compresses those the store lacks. Close then stages the new chunks in
// the batch: the commit neither writes the dump and reads it back nor
// waits for chunking after the tool is done.
//
// It is a source.Rewinder: output taken back (the postgres normalizer
// streams rows ahead of sorting them) is cut from the file and the
// chunker restarts at the last chunk boundary before it. Chunk
// boundaries depend only on the bytes since the previous boundary, so the
// chunks come out as they would from the final file. New chunks are
// compressed and staged as they come; those taken back are unstaged, so
// they never reach the store.
type dumpSink struct {
	scratch // the driver's temporary files, removed by finish
	b       *Backend
	batch   *cas.Batch
	file    *os.File

	// Producer side (the driver's writes).
	cur    []byte
	off    int64 // bytes written, after rewinds
	msgs   chan sinkMsg
	closed bool

	// Consumer side: one goroutine chunking, and compressors.
	msgBufs chan []byte
	bufs    chan []byte
	jobs    chan sinkJob
	comps   sync.WaitGroup
	busy    sync.WaitGroup // jobs not done yet
	done    chan struct{}
	err     error // the consumer's, once done is closed
	errMu   sync.Mutex
	jerr    error // the first compressor's
	chunks  []*sinkChunk
	size    int64
}

type sinkMsg struct {
	data   []byte
	rewind int64         // with nil data and synced: rewind to this offset
	synced chan struct{} // closed once everything before is in the file
}

type sinkChunk struct {
	hash   cas.Hash
	start  int64
	size   uint32
	staged int // stored bytes, when this chunk's compressor staged it
}

type sinkJob struct {
	c    *sinkChunk
	data []byte
}

const sinkMsgSize = 1 << 20

var errRewind = errors.New("dump rewound")

var (
	_ source.Rewinder = (*dumpSink)(nil)
	_ source.Scratch  = (*dumpSink)(nil)
)

func (b *Backend) newDumpSink(batch *cas.Batch, file *os.File) *dumpSink {
	nbuf := 2*b.workers + 2
	s := &dumpSink{
		scratch: scratch{parent: filepath.Dir(file.Name())},
		b:       b, batch: batch, file: file,
		msgs:    make(chan sinkMsg, 16),
		msgBufs: make(chan []byte, 20),
		bufs:    make(chan []byte, nbuf),
		jobs:    make(chan sinkJob, nbuf),
		done:    make(chan struct{}),
	}
	for i := 0; i < nbuf; i++ {
		s.bufs <- nil // allocated on first use
	}
	for i := 0; i < b.workers; i++ {
		s.comps.Add(1)
		go func() {
			defer s.comps.Done()
			var scratch []byte
			for j := range s.jobs {
				claimed, err := batch.Claim(j.c.hash)
				if err == nil && claimed {
					scratch = b.store.Compress(j.data, scratch)
					if err = batch.WriteCompressed(j.c.hash, scratch, int(j.c.size)); err == nil {
						j.c.staged = len(scratch)
					}
				}
				if err != nil {
					s.jobErr(err)
				}
				s.bufs <- j.data[:0]
				s.busy.Done()
			}
		}()
	}
	go s.run()
	return s
}

// Write implements io.Writer; it fails once the consumer has failed.
func (s *dumpSink) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if s.cur == nil {
			select {
			case s.cur = <-s.msgBufs:
			default:
				s.cur = make([]byte, 0, sinkMsgSize)
			}
		}
		k := copy(s.cur[len(s.cur):cap(s.cur)], p)
		s.cur = s.cur[:len(s.cur)+k]
		p = p[k:]
		s.off += int64(k)
		if len(s.cur) == cap(s.cur) {
			if err := s.send(sinkMsg{data: s.cur}); err != nil {
				return n - len(p), err
			}
			s.cur = nil
		}
	}
	return n, nil
}

// Rewind implements source.Rewinder.
func (s *dumpSink) Rewind(off int64) error {
	if off < 0 || off > s.off {
		return fmt.Errorf("dump rewound to %d, outside the %d bytes written", off, s.off)
	}
	if err := s.sendCur(); err != nil {
		return err
	}
	s.off = off
	return s.send(sinkMsg{rewind: off})
}

// ReadAt implements source.Rewinder: once the consumer has written
// everything sent before to the file, the file has it.
func (s *dumpSink) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > s.off {
		return 0, fmt.Errorf("dump read back at %d+%d, outside the %d bytes written", off, len(p), s.off)
	}
	if err := s.sendCur(); err != nil {
		return 0, err
	}
	synced := make(chan struct{})
	if err := s.send(sinkMsg{synced: synced}); err != nil {
		return 0, err
	}
	select {
	case <-synced:
	case <-s.done:
		return 0, s.doneErr()
	}
	return s.file.ReadAt(p, off)
}

func (s *dumpSink) sendCur() error {
	if len(s.cur) == 0 {
		return nil
	}
	err := s.send(sinkMsg{data: s.cur})
	s.cur = nil
	return err
}

func (s *dumpSink) send(m sinkMsg) error {
	select {
	case s.msgs <- m:
		return nil
	case <-s.done:
		return s.doneErr()
	}
}

// doneErr is why the consumer, done, takes nothing more.
func (s *dumpSink) doneErr() error {
	if s.err != nil {
		return s.err
	}
	return errors.New("dump sink closed")
}

// finish ends the input and waits for the consumer and compressors.
func (s *dumpSink) finish() error {
	s.scratch.remove() // the driver is done with it
	var err error
	if !s.closed {
		err = s.sendCur()
		s.closed = true
		close(s.msgs)
	}
	<-s.done
	s.comps.Wait()
	if s.err != nil {
		return s.err
	}
	return err
}

// Abort stops the consumer; nothing was staged.
func (s *dumpSink) Abort() { s.finish() }

// Close waits for the last chunks to be staged and returns the chunk
// list and the dump's size. The temporary file then holds the complete
// dump.
func (s *dumpSink) Close() ([]Chunk, int64, error) {
	if err := s.finish(); err != nil {
		return nil, 0, err
	}
	s.errMu.Lock()
	err := s.jerr
	s.errMu.Unlock()
	if err != nil {
		return nil, 0, fmt.Errorf("storing the dump: %w", err)
	}
	out := make([]Chunk, 0, len(s.chunks))
	for _, c := range s.chunks {
		out = append(out, Chunk{Hash: c.hash, Size: c.size})
	}
	return out, s.size, nil
}

func (s *dumpSink) jobErr(err error) {
	s.errMu.Lock()
	if s.jerr == nil {
		s.jerr = err
	}
	s.errMu.Unlock()
}

// dropAfter forgets the chunks that do not end by off, unstaging those
// staged for them unless a kept chunk has the same content, and returns
// where the kept ones end.
func (s *dumpSink) dropAfter(off int64) (int64, error) {
	i := len(s.chunks)
	for i > 0 && s.chunks[i-1].start+int64(s.chunks[i-1].size) > off {
		i--
	}
	s.busy.Wait() // compressors finish with the chunks dropped
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

// run is the consumer: file, chunker, hashes, store look-ups.
func (s *dumpSink) run() {
	defer close(s.done)
	defer close(s.jobs)
	rd := &sinkReader{s: s}
	c := newChunker(rd, fileChunks)
	var base int64 // stream offset of the chunker's start
	for {
		buf := <-s.bufs
		if cap(buf) < fileChunks.Max {
			buf = make([]byte, 0, fileChunks.Max)
		}
		ch, err := c.Next(buf[:0])
		switch {
		case err == io.EOF:
			s.bufs <- buf[:0]
			s.size = rd.pos
			return
		case errors.Is(err, errRewind):
			s.bufs <- buf[:0]
			off := rd.rewindTo
			if base, err = s.dropAfter(off); err != nil {
				s.fail(err)
				return
			}
			if err := s.file.Truncate(off); err != nil {
				s.fail(fmt.Errorf("rewind the dump: %w", err))
				return
			}
			rd.pos, rd.data = off, nil
			rd.replay = io.NewSectionReader(s.file, base, off-base)
			c.Reset(rd, fileChunks)
		case err != nil:
			s.bufs <- buf[:0]
			s.fail(err)
			return
		default:
			sc := &sinkChunk{hash: cas.Sum(ch.Data), start: base + ch.Start, size: uint32(ch.Length)}
			s.chunks = append(s.chunks, sc)
			has, err := s.batch.Has(sc.hash)
			if err != nil {
				s.bufs <- buf[:0]
				s.fail(err)
				return
			}
			if has {
				s.bufs <- buf[:0]
			} else {
				s.busy.Add(1)
				s.jobs <- sinkJob{c: sc, data: ch.Data}
			}
		}
	}
}

// fail records err and drains the input so the producer never blocks.
func (s *dumpSink) fail(err error) {
	s.err = fmt.Errorf("storing the dump: %w", err)
	go func() {
		for range s.msgs {
		}
	}()
}

// sinkReader feeds the chunker: replayed bytes from the file after a
// rewind, then the producer's messages, each written to the file as it
// arrives. A rewind message ends the current read with errRewind.
type sinkReader struct {
	s        *dumpSink
	replay   io.Reader
	data     []byte // unread part of msg
	msg      []byte
	pos      int64 // bytes in the file
	rewindTo int64
}

func (r *sinkReader) Read(p []byte) (int, error) {
	if r.replay != nil {
		n, err := r.replay.Read(p)
		if err != io.EOF {
			return n, err
		}
		r.replay = nil
		if n > 0 {
			return n, nil
		}
	}
	for len(r.data) == 0 {
		if r.msg != nil {
			select {
			case r.s.msgBufs <- r.msg[:0]:
			default:
			}
			r.msg = nil
		}
		m, ok := <-r.s.msgs
		if !ok {
			return 0, io.EOF
		}
		if m.synced != nil {
			close(m.synced)
			continue
		}
		if m.data == nil {
			r.rewindTo = m.rewind
			return 0, errRewind
		}
		if _, err := r.s.file.WriteAt(m.data, r.pos); err != nil {
			return 0, fmt.Errorf("write the dump: %w", err)
		}
		r.pos += int64(len(m.data))
		r.data, r.msg = m.data, m.data
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}
