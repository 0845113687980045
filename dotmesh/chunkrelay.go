package dotmesh

import (
	"context"
	"log/slog"
	"sync"
)

// chunkRelay carries the chunks a sender in this process offers
// (OfferChunk) to the receiving backend's ChunkSink, once the receive
// has attached one; offers before that, or without one, are dropped (the
// commit then stores those chunks itself).
type chunkRelay struct {
	mu   sync.RWMutex
	sink ChunkSink
}

type chunkRelayKey struct{}

// withChunkRelay marks ctx, that of a copy whose both ends run in this
// process, as able to carry chunks (see ChunkStager).
func withChunkRelay(ctx context.Context) context.Context {
	return context.WithValue(ctx, chunkRelayKey{}, &chunkRelay{})
}

func relayOf(ctx context.Context) *chunkRelay {
	r, _ := ctx.Value(chunkRelayKey{}).(*chunkRelay)
	return r
}

// ChunksWanted reports whether a sender running under ctx may offer
// chunks (OfferChunk): the receiver runs in this process.
func ChunksWanted(ctx context.Context) bool { return relayOf(ctx) != nil }

// OfferChunk hands a chunk of the stream being sent under ctx to the
// receiver when it takes chunks (a ChunkStager backend, or a Transport
// that attached a sink: AttachChunkSink), before the stream carries the
// chunk's bytes: data hashing
// (BLAKE3-256) to h, checked by the caller, and frame, the zstd frame that
// the caller has seen decompress to data, or nil. The chunk's bytes are
// still sent in the stream. Neither slice is kept after the call.
func OfferChunk(ctx context.Context, h [32]byte, data, frame []byte) {
	offer(ctx, func(s ChunkSink) error { return s.PutChunk(h, data, frame) })
}

// OfferFile hands the chunks of a file, whose bytes the stream sent under
// ctx carries, to the receiver when it takes chunks (see
// ChunkSink.PutFile); a sender that knows them before it streams the
// file (dump) offers them before the file's entry, so that a receiver
// may skip its bytes. chunks is not kept after the call.
func OfferFile(ctx context.Context, path string, size int64, chunks []FileChunk) {
	offer(ctx, func(s ChunkSink) error { return s.PutFile(path, size, chunks) })
}

func offer(ctx context.Context, put func(ChunkSink) error) {
	r := relayOf(ctx)
	if r == nil {
		return
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.sink == nil {
		return
	}
	if err := put(r.sink); err != nil {
		// The commit reads the file itself; a lasting fault shows there.
		slog.DebugContext(ctx, "a received chunk or file was not staged", "err", err)
	}
}

// AttachChunkSink makes s the sink of the chunks a sender in this
// process offers under ctx (OfferChunk, OfferFile), for a receiving
// Transport that runs in the node's process and keeps chunks itself (a
// bucket remote), as a ChunkStager backend's sink is attached for a
// receive; a no-op when ctx carries no relay. detach, which waits for
// the offers under way, ends it.
func AttachChunkSink(ctx context.Context, s ChunkSink) (detach func()) {
	return attachChunkSink(ctx, s)
}

// attachChunkSink makes s the sink of ctx's relay, if ctx has one;
// detach, which waits for the offers under way, ends it.
func attachChunkSink(ctx context.Context, s ChunkSink) (detach func()) {
	r := relayOf(ctx)
	if r == nil {
		return func() {}
	}
	r.mu.Lock()
	r.sink = s
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		r.sink = nil
		r.mu.Unlock()
	}
}
