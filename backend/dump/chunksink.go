package dump

import (
	"context"
	"fmt"
	"sync"

	"github.com/dotmesh-io/dotmesh/backend/dump/cas"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// StageChunks implements dotmesh.ChunkStager. The chunks go into a batch
// of the store as they come: a zstd frame as it is (the cas store's
// stored form is a zstd frame; the sender checked it, in this process),
// a chunk without one in a raw frame, none hashed again. Every recvFlush
// bytes and at Flush they are published and pinned for c, like a
// Receive's objects, so a crash keeps them for a re-run until the pin
// expires. The publishing (the pack's fsyncs) runs on a goroutine of the
// sink's own while the next batch fills, so the receive does not wait
// for the disk; at most one batch waits for it (backpressure), so a crash
// loses at most three batches' worth. After Flush, which waits for every
// publication, c's commit takes the offered files' chunks from their
// lists when its scan finds the file of that size and every chunk
// stored (receivedChunks), instead of reading the file.
func (b *Backend) StageChunks(ctx context.Context, c dotmesh.CommitRef) (dotmesh.ChunkSink, error) {
	endRecv := b.startReceive(c.BranchRef)
	endUse := b.useStore()
	batch, err := b.store.NewBatch()
	if err != nil {
		endUse()
		endRecv()
		return nil, err
	}
	s := &chunkSink{b: b, target: c, flush: b.recvFlush(), batch: batch, endRecv: endRecv, endUse: sync.OnceFunc(endUse),
		pubq: make(chan stagedBatch, 1), pubDone: make(chan struct{})}
	s.finish = sync.OnceValue(s.closePublisher)
	go s.publisher()
	return s, nil
}

// rawScratch holds the room for the pieces of the raw frames of chunks
// offered without one.
var rawScratch sync.Pool

// chunkSink is StageChunks' sink.
type chunkSink struct {
	b       *Backend
	target  dotmesh.CommitRef
	flush   int64
	endRecv func()
	endUse  func() // the store is in use (no collection) until Flush

	// mu is held shared by PutChunk, exclusively to hand a batch to the
	// publisher and swap in the next, so that nothing is claimed in a
	// batch being published.
	mu      sync.RWMutex
	batch   *cas.Batch // nil when finished
	pmu     sync.Mutex // guards pending, bytes, files and pubErr
	pending []cas.Hash
	bytes   int64
	files   map[string][]Chunk // offered, by path
	flushed bool

	pubq    chan stagedBatch // to the publisher, in order
	pubDone chan struct{}    // closed when the publisher ended
	pubErr  error            // the first publication's failure
	finish  func() error     // closes pubq once, waits for the publisher
}

// stagedBatch is a batch handed to the publisher with the objects staged
// in it.
type stagedBatch struct {
	batch   *cas.Batch
	pending []cas.Hash
}

func (s *chunkSink) PutChunk(h [32]byte, data, frame []byte) error {
	if len(data) == 0 || len(data) > cas.MaxObjectSize {
		return fmt.Errorf("%w: a chunk of %d bytes (1 to %d)", dotmesh.ErrInvalidArgument, len(data), cas.MaxObjectSize)
	}
	if err := s.publishErr(); err != nil {
		return err
	}
	s.mu.RLock()
	if s.batch == nil {
		s.mu.RUnlock()
		return fmt.Errorf("%w: the chunks of %s are stored already", dotmesh.ErrConflict, s.target)
	}
	claimed, err := s.batch.Claim(h)
	if err == nil && claimed {
		if frame == nil {
			// The sender kept it uncompressed, finding it did not
			// compress: so does this store, in a raw frame written
			// in pieces around data (no copy; the pieces' room is
			// reused).
			sc, _ := rawScratch.Get().(*cas.RawScratch)
			if sc == nil {
				sc = new(cas.RawScratch)
			}
			err = s.batch.WriteRaw(h, data, sc)
			rawScratch.Put(sc)
		} else {
			err = s.batch.WriteCompressed(h, frame, len(data))
		}
	}
	full := false
	if err == nil && claimed {
		s.pmu.Lock()
		s.pending = append(s.pending, h)
		s.bytes += int64(max(len(frame), len(data)))
		full = s.bytes >= s.flush
		s.pmu.Unlock()
	}
	s.mu.RUnlock()
	if err != nil || !full {
		return err
	}
	s.handOff(true)
	return nil
}

func (s *chunkSink) PutFile(path string, size int64, chunks []dotmesh.FileChunk) error {
	var sum int64
	cs := make([]Chunk, len(chunks))
	for i, c := range chunks {
		sum += int64(c.Size)
		cs[i] = Chunk{Hash: c.Hash, Size: c.Size}
	}
	if path == "" || sum != size {
		return fmt.Errorf("%w: file %q of %d bytes offered as %d bytes of chunks", dotmesh.ErrInvalidArgument, path, size, sum)
	}
	s.pmu.Lock()
	defer s.pmu.Unlock()
	if s.files == nil {
		s.files = map[string][]Chunk{}
	}
	s.files[path] = cs
	return nil
}

// handOff gives what is staged to the publisher; with more, a new batch
// takes the next chunks meanwhile. It waits only while the publisher has
// a batch queued already.
func (s *chunkSink) handOff(more bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.batch == nil || more && s.bytes < s.flush { // another handed off first
		return
	}
	s.pmu.Lock()
	sb := stagedBatch{s.batch, s.pending}
	s.pending, s.bytes = nil, 0
	s.pmu.Unlock()
	s.batch = nil
	if more {
		next, err := s.b.store.NewBatch()
		if err != nil {
			s.setPublishErr(err)
		} else {
			s.batch = next
		}
	}
	s.pubq <- sb // under mu: nothing is handed off after finish closed pubq
}

// publisher pins and publishes the batches handed to it, one at a time.
func (s *chunkSink) publisher() {
	defer close(s.pubDone)
	for sb := range s.pubq {
		if err := s.b.addPins(s.target, sb.pending); err != nil {
			sb.batch.Abort()
			s.setPublishErr(err)
			continue
		}
		if _, err := sb.batch.CommitStaged(); err != nil {
			s.setPublishErr(err)
		}
	}
}

func (s *chunkSink) setPublishErr(err error) {
	s.pmu.Lock()
	if s.pubErr == nil {
		s.pubErr = err
	}
	s.pmu.Unlock()
}

func (s *chunkSink) publishErr() error {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	return s.pubErr
}

// closePublisher hands off the last batch, ends the publisher and waits
// for it: what was staged is published (or failed) when it returns.
func (s *chunkSink) closePublisher() error {
	s.handOff(false)
	s.mu.Lock()
	close(s.pubq)
	s.mu.Unlock()
	<-s.pubDone
	return s.publishErr()
}

func (s *chunkSink) Flush() error {
	err := s.finish()
	s.mu.Lock()
	s.flushed = err == nil
	s.mu.Unlock()
	if err == nil {
		s.pmu.Lock()
		s.b.setReceived(s.target, s.files)
		s.pmu.Unlock()
	}
	s.endUse()
	return err
}

// Release ends the sink. After a Flush the commit holds the chunks (or
// failed), and the pin goes; without one (the stream broke off) what was
// staged is published and stays pinned for a re-run until it expires.
func (s *chunkSink) Release() {
	s.mu.RLock()
	flushed := s.flushed
	s.mu.RUnlock()
	s.b.setReceived(s.target, nil)
	if err := s.finish(); flushed {
		s.b.dropPin(s.target)
	} else if err != nil {
		s.b.log.Warn("cannot keep the chunks of an interrupted receive", "commit", s.target, "err", err)
	}
	s.endUse()
	s.endRecv()
}

// setReceived keeps (nil: forgets) the files offered for commit c.
func (b *Backend) setReceived(c dotmesh.CommitRef, files map[string][]Chunk) {
	b.recvMu.Lock()
	defer b.recvMu.Unlock()
	if files == nil {
		delete(b.receivedFiles, c)
		return
	}
	if b.receivedFiles == nil {
		b.receivedFiles = map[dotmesh.CommitRef]map[string][]Chunk{}
	}
	b.receivedFiles[c] = files
}

// receivedChunks returns the chunks offered for file e of commit c's
// received tree (StageChunks), when they add up to its size and all are
// stored: the receive wrote exactly their bytes there. Otherwise nil, and
// the commit reads the file.
func (b *Backend) receivedChunks(c dotmesh.CommitRef, e *Entry) []Chunk {
	b.recvMu.Lock()
	cs := b.receivedFiles[c][e.Path]
	b.recvMu.Unlock()
	if cs == nil {
		return nil
	}
	var sum int64
	for _, ch := range cs {
		sum += int64(ch.Size)
		if ok, err := b.store.Has(ch.Hash); err != nil || !ok {
			return nil
		}
	}
	if sum != e.Size {
		return nil
	}
	return cs
}
