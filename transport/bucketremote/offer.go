package bucketremote

import (
	"context"
	"fmt"
	"sync"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// offerSink takes the chunks a sender in this process offers while it
// streams a commit to the bucket (dotmesh.AttachChunkSink): the dump
// backend knows each file's chunks (cut with the repository's chunker,
// the dump backend's) and reads each one checked against its hash and
// still compressed. So a push from a files-backend node stores the
// chunks from their frames as they come, and storeTree takes an offered
// file's chunk list instead of cutting, hashing and compressing its
// bytes again; the bytes still pass in the stream, unread.
//
// The sender offers a file's list before the stream carries its entry
// and each chunk before its bytes, so by the end of a file's bytes in
// the stream every chunk of it was offered; storeTree checks that each
// was stored (or was present) before it uses the list.
type offerSink struct {
	ctx context.Context
	r   *Remote

	mu    sync.Mutex
	files map[string]offeredFile // by path, until storeTree takes it
	err   error                  // the first PutChunk failure
}

type offeredFile struct {
	size   int64
	chunks []Chunk
}

var _ dotmesh.ChunkSink = (*offerSink)(nil)

// PutChunk implements dotmesh.ChunkSink: it stores the chunk unless the
// repository has it, from its frame when it comes compressed. It runs in
// the sender's goroutine, which the sealing paces.
func (s *offerSink) PutChunk(h [32]byte, data, frame []byte) error {
	if len(data) == 0 {
		return fmt.Errorf("%w: an empty chunk", dotmesh.ErrInvalidArgument)
	}
	_, _, err := s.r.repo.PutHashedBlobFrame(s.ctx, h, data, frame)
	if err != nil {
		s.mu.Lock()
		if s.err == nil {
			s.err = err
		}
		s.mu.Unlock()
	}
	return err
}

// PutFile implements dotmesh.ChunkSink: it keeps the chunk list for
// storeTree, which takes it when the stream brings path.
func (s *offerSink) PutFile(path string, size int64, chunks []dotmesh.FileChunk) error {
	cs := make([]Chunk, len(chunks))
	var sum int64
	for i, c := range chunks {
		cs[i] = Chunk{Hash: c.Hash, Length: c.Size}
		sum += int64(c.Size)
	}
	if sum != size {
		return fmt.Errorf("%w: the chunks offered for %s are %d bytes, not %d", dotmesh.ErrInvalidArgument, path, sum, size)
	}
	s.mu.Lock()
	s.files[path] = offeredFile{size: size, chunks: cs}
	s.mu.Unlock()
	return nil
}

// take returns the chunks offered for the file at path of size bytes,
// and forgets them; false when none were.
func (s *offerSink) take(path string, size int64) ([]Chunk, bool) {
	if s == nil {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.files[path]
	if !ok {
		return nil, false
	}
	delete(s.files, path)
	return f.chunks, f.size == size
}

// stored checks, once the stream carried a file's bytes, that every
// chunk of its offered list is stored or waits in a pack.
func (s *offerSink) stored(ctx context.Context, path string, cs []Chunk) error {
	s.mu.Lock()
	err := s.err
	s.mu.Unlock()
	if err != nil {
		return err
	}
	for _, c := range cs {
		ok, err := s.r.repo.HasPendingBlob(ctx, s.r.repo.BlobID(c.Hash))
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: chunk %x of %s was offered by the sender but not stored; run the push again", dotmesh.ErrCorrupt, c.Hash[:8], path)
		}
	}
	return nil
}

// Flush and Release implement dotmesh.ChunkSink: the chunks go with the
// commit's other blobs (SendCommit flushes the repository).
func (s *offerSink) Flush() error { return nil }
func (s *offerSink) Release()     {}
