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
// a chunk without one in a raw frame, none hashed again. Every recvFlush bytes
// and at Flush they are published and pinned for c, like a Receive's
// objects, so a crash keeps them for a re-run until the pin expires.
// After Flush, c's commit takes the offered files' chunks from their
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
	return &chunkSink{b: b, target: c, flush: b.recvFlush(), batch: batch, endRecv: endRecv, endUse: sync.OnceFunc(endUse)}, nil
}

// rawFrames holds buffers for the raw frames of chunks offered without
// one; the batch does not keep what it writes.
var rawFrames sync.Pool

// chunkSink is StageChunks' sink.
type chunkSink struct {
	b       *Backend
	target  dotmesh.CommitRef
	flush   int64
	endRecv func()
	endUse  func() // the store is in use (no collection) until Flush

	// mu is held shared by PutChunk, exclusively to publish and swap
	// batches, so that nothing is claimed in a batch being published.
	mu      sync.RWMutex
	batch   *cas.Batch // nil when finished
	pmu     sync.Mutex // guards pending and bytes
	pending []cas.Hash
	bytes   int64
	pubMu   sync.Mutex         // held while publishing
	files   map[string][]Chunk // offered, by path
	flushed bool
}

func (s *chunkSink) PutChunk(h [32]byte, data, frame []byte) error {
	if len(data) == 0 || len(data) > cas.MaxObjectSize {
		return fmt.Errorf("%w: a chunk of %d bytes (1 to %d)", dotmesh.ErrInvalidArgument, len(data), cas.MaxObjectSize)
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
			// compress: so does this store, framed in a reused buffer
			// (a fresh one per chunk cost a clone of random data a
			// tenth of its CPU in zeroing it).
			bp, _ := rawFrames.Get().(*[]byte)
			if bp == nil {
				bp = new([]byte)
			}
			*bp = cas.RawFrame(data, *bp)
			defer rawFrames.Put(bp)
			frame = *bp
		}
		err = s.batch.WriteCompressed(h, frame, len(data))
	}
	full := false
	if err == nil && claimed {
		s.pmu.Lock()
		s.pending = append(s.pending, h)
		s.bytes += int64(len(frame))
		full = s.bytes >= s.flush
		s.pmu.Unlock()
	}
	s.mu.RUnlock()
	if err != nil || !full {
		return err
	}
	return s.publish(true)
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

// publish pins and publishes what is staged; with more, a new batch takes
// the next chunks meanwhile, so that offers do not wait for the syncs.
func (s *chunkSink) publish(more bool) error {
	s.mu.Lock()
	if s.batch == nil || more && s.bytes < s.flush { // another published first
		s.mu.Unlock()
		return nil
	}
	batch := s.batch
	s.pmu.Lock()
	pending := s.pending
	s.pending, s.bytes = nil, 0
	s.pmu.Unlock()
	var err error
	s.batch = nil
	if more {
		s.batch, err = s.b.store.NewBatch()
	}
	s.mu.Unlock()
	s.pubMu.Lock() // one publish at a time, in order: Flush waits for all
	defer s.pubMu.Unlock()
	if perr := s.b.addPins(s.target, pending); perr != nil {
		batch.Abort()
		return perr
	}
	if _, perr := batch.CommitStaged(); perr != nil {
		return perr
	}
	return err
}

func (s *chunkSink) Flush() error {
	err := s.publish(false)
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
	if flushed {
		s.b.dropPin(s.target)
	} else if err := s.publish(false); err != nil {
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
