package dotmesh

import (
	"context"
	"testing"
)

// recordingSink counts what a relay hands it.
type recordingSink struct{ chunks, files int }

func (s *recordingSink) PutChunk(h [32]byte, data, frame []byte) error {
	s.chunks++
	return nil
}

func (s *recordingSink) PutFile(path string, size int64, chunks []FileChunk) error {
	s.files++
	return nil
}
func (s *recordingSink) Flush() error { return nil }
func (s *recordingSink) Release()     {}

// Offers reach the sink attached to the copy's context, only while it is
// attached; a context of no in-process copy carries none.
func TestChunkRelay(t *testing.T) {
	plain := context.Background()
	if ChunksWanted(plain) {
		t.Fatal("chunks wanted without a relay")
	}
	ctx := withChunkRelay(plain)
	if !ChunksWanted(ctx) {
		t.Fatal("chunks not wanted under a relay")
	}
	s := &recordingSink{}
	OfferChunk(ctx, [32]byte{1}, []byte("x"), nil) // before the receive attaches: dropped
	detach := attachChunkSink(ctx, s)
	OfferChunk(ctx, [32]byte{2}, []byte("y"), nil)
	OfferFile(ctx, "a", 1, []FileChunk{{Hash: [32]byte{2}, Size: 1}})
	attachChunkSink(plain, s)() // no relay: nothing to attach to
	detach()
	OfferChunk(ctx, [32]byte{3}, []byte("z"), nil)
	if s.chunks != 1 || s.files != 1 {
		t.Fatalf("the sink got %d chunks and %d files, want 1 and 1", s.chunks, s.files)
	}
}
