package bucketremote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/dotmesh-io/dotmesh/bucket/repo"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/transport/neutral"
)

// FetchCommit implements dotmesh.Transport: the neutral stream of commit
// id, rebuilt from its blobs (each checked against its seal and ID); a
// delta against base when base is set (walkDelta).
func (r *Remote) FetchCommit(ctx context.Context, dot dotmesh.DotName, id dotmesh.CommitID, base *dotmesh.CommitID, format string) (io.ReadCloser, error) {
	if format != dotmesh.FormatNeutral {
		return nil, fmt.Errorf("%w: a bucket sends commits in the %s stream only, not %q", dotmesh.ErrNotSupported, dotmesh.FormatNeutral, format)
	}
	dot, err := checkDot(dot)
	if err != nil {
		return nil, err
	}
	if err := dotmesh.ValidateID("commit", string(id), false); err != nil {
		return nil, err
	}
	rec, err := r.commit(ctx, dot, id)
	if err != nil {
		return nil, err
	}
	var baseRec *CommitRecord
	if base != nil {
		if err := dotmesh.ValidateID("base commit", string(*base), false); err != nil {
			return nil, err
		}
		if baseRec, err = r.commit(ctx, dot, *base); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	f := &fetchReader{PipeReader: pr, cancel: cancel, done: make(chan struct{})}
	f.start = func() {
		go func() {
			defer close(f.done)
			pw.CloseWithError(r.writeCommit(ctx, rec, baseRec, pw))
		}()
	}
	return f, nil
}

// fetchReader is FetchCommit's stream. Its writer starts with the first
// Read: the fetch reads ahead, and a receiving node in this process
// attaches its ChunkSink before it reads, so no chunk is offered before
// it can be taken. Close stops the writer and waits for it, so nothing of
// a fetch outlives its reader.
type fetchReader struct {
	*io.PipeReader
	cancel  context.CancelFunc
	start   func()
	once    sync.Once
	started bool
	done    chan struct{}
}

func (f *fetchReader) Read(p []byte) (int, error) {
	f.once.Do(func() {
		f.started = true
		f.start()
	})
	return f.PipeReader.Read(p)
}

func (f *fetchReader) Close() error {
	f.cancel()
	err := f.PipeReader.Close()
	f.once.Do(func() {}) // never started: nothing to wait for
	if f.started {
		<-f.done
	}
	return err
}

// commit reads commit id's record of dot.
func (r *Remote) commit(ctx context.Context, dot dotmesh.DotName, id dotmesh.CommitID) (*CommitRecord, error) {
	name := CommitName(dot, id)
	if rec := r.commits.get(name); rec != nil {
		return rec, nil
	}
	rec, err := loadCommit(ctx, r.repo, name)
	if errors.Is(err, dotmesh.ErrNotFound) {
		return nil, fmt.Errorf("%w: dot %s in the bucket has no commit %s", dotmesh.ErrNotFound, dot, id)
	}
	if err != nil {
		return nil, err
	}
	if rec.Commit.ID != id {
		return nil, fmt.Errorf("%w: commit record %s holds commit %s", dotmesh.ErrCorrupt, name, rec.Commit.ID)
	}
	r.commits.put(name, rec)
	return rec, nil
}

// chunkBatch is one read of a fetch: in stream order, the tree entries
// and the chunks of their files that one repo.GetBlobs(Frames) call
// fetches. done is closed once data (one slice per chunk) or err is set.
type chunkBatch struct {
	items  []fetchItem
	ids    []repo.ID
	hashes [][32]byte
	lens   []uint32
	bytes  int64
	data   [][]byte
	err    error
	done   chan struct{}
}

// fetchItem is an entry of the tree, or (entry nil) the next chunk of the
// file before it in its batch.
type fetchItem struct {
	entry *TreeEntry
}

// fetchAhead is how many batches a fetch reads ahead of the stream's
// writer: the reads, their opening (decryption, decompression, the hash
// check) and the stream's writing run at once, on every core, instead
// of taking turns. With fetchBatch bytes a batch it bounds the chunks a
// fetch holds to about fetchAhead*chunkBatch.
const fetchAhead = 6

// writeCommit writes rec's tree as a neutral stream to w, or the delta
// from base's when base is set. One goroutine walks the tree, cuts it
// into batches (fetchBatch bytes of chunks, or 256 items) and starts
// their reads, at most max(Parallel/2, 2) at once and fetchAhead batches
// ahead of the writer, which takes them in order.
func (r *Remote) writeCommit(ctx context.Context, rec, base *CommitRecord, w io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	batches := make(chan *chunkBatch, fetchAhead)
	// A receiving node in this process may store the chunks as the
	// bucket holds them, compressed, and take its files' chunk lists
	// instead of cutting them again (dotmesh.ChunkStager).
	offer := dotmesh.ChunksWanted(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		for range batches { // the walker ends at its next send
		}
		wg.Wait()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(batches)
		sem := make(chan struct{}, max(r.cfg.Parallel/2, 2))
		what := fmt.Sprintf("commit %s", rec.Commit.ID)
		b := &chunkBatch{done: make(chan struct{})}
		start := func() error {
			cur := b
			b = &chunkBatch{done: make(chan struct{})}
			if len(cur.ids) == 0 {
				close(cur.done)
			} else {
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					return ctx.Err()
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer close(cur.done)
					r.readChunks(ctx, cur, offer, what)
					<-sem
				}()
			}
			select {
			case batches <- cur:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		walk := func(fn func(TreeEntry) error) error { return WalkTree(ctx, r.repo, rec, r.cfg.Parallel, fn) }
		if base != nil {
			walk = func(fn func(TreeEntry) error) error { return r.walkDelta(ctx, base, rec, fn) }
		}
		err := walk(func(te TreeEntry) error {
			b.items = append(b.items, fetchItem{entry: &te})
			for _, c := range te.Chunks {
				b.items = append(b.items, fetchItem{})
				b.ids = append(b.ids, r.repo.BlobID(c.Hash))
				b.hashes = append(b.hashes, c.Hash)
				b.lens = append(b.lens, c.Length)
				b.bytes += int64(c.Length)
				if b.bytes >= fetchBatch {
					if err := start(); err != nil {
						return err
					}
				}
			}
			if len(b.items) >= 256 {
				return start()
			}
			return nil
		})
		if err == nil && len(b.items) > 0 {
			err = start()
		}
		if err != nil {
			fail := &chunkBatch{err: err, done: make(chan struct{})}
			close(fail.done)
			select {
			case batches <- fail:
			case <-ctx.Done():
			}
		}
	}()

	if dotmesh.InProcessStream(ctx) {
		w = neutral.UncheckedWriter(w) // read by a node in this process
	}
	var nw *neutral.Writer
	var err error
	if base != nil {
		nw, err = neutral.NewDeltaWriter(w, string(base.Commit.ID))
	} else {
		nw, err = neutral.NewWriter(w)
	}
	if err != nil {
		return err
	}
	items := &batchItems{ctx: ctx, batches: batches}
	for {
		it, _, err := items.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if it.entry == nil {
			return fmt.Errorf("bucketremote: a chunk out of order") // cannot happen: chunks follow their entry
		}
		var content io.Reader
		if it.entry.Kind == neutral.KindFile {
			content = &chunksReader{items: items, left: len(it.entry.Chunks)}
		}
		if err := nw.Add(it.entry.Entry, content); err != nil {
			return err
		}
		if offer && it.entry.Kind == neutral.KindFile {
			cs := make([]dotmesh.FileChunk, len(it.entry.Chunks))
			for i, c := range it.entry.Chunks {
				cs[i] = dotmesh.FileChunk{Hash: c.Hash, Size: c.Length}
			}
			dotmesh.OfferFile(ctx, it.entry.Path, it.entry.Size, cs)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return nw.Close()
}

// readChunks reads b's chunks (one GetBlobs call, so that chunks lying
// next to each other in a pack come in one request), checks their
// lengths, offers them to a receiving node when offer is set, and sets
// b.data or b.err.
func (r *Remote) readChunks(ctx context.Context, b *chunkBatch, offer bool, what string) {
	var data, frames [][]byte
	var err error
	if offer {
		data, frames, err = r.repo.GetBlobsFrames(ctx, b.ids)
	} else {
		data, err = r.repo.GetBlobs(ctx, b.ids)
	}
	if err != nil {
		id := b.ids[0]
		var be *repo.BlobError
		if errors.As(err, &be) {
			id = be.ID
		}
		b.err = fmt.Errorf("%s: %w", what, blobErr(err, id))
		return
	}
	for i, d := range data {
		if len(d) != int(b.lens[i]) {
			b.err = fmt.Errorf("%s: %w", what, fmt.Errorf("%w: blob %s holds %d bytes where the tree says %d", dotmesh.ErrCorrupt, b.ids[i], len(d), b.lens[i]))
			return
		}
	}
	if offer {
		for i, d := range data {
			// The blob checked out against its ID, the keyed hash of
			// hashes[i]: its data and frame are the chunk hashing to it.
			dotmesh.OfferChunk(ctx, b.hashes[i], d, frames[i])
		}
	}
	b.data = data
}

// batchItems hands out the items of a fetch's batches in order, each
// chunk with its data once its batch is read.
type batchItems struct {
	ctx     context.Context
	batches <-chan *chunkBatch
	cur     *chunkBatch
	i, c    int // the next item of cur, and the next chunk
}

// next returns the next item (and a chunk's data), or io.EOF after the
// last.
func (b *batchItems) next() (fetchItem, []byte, error) {
	for b.cur == nil || b.i == len(b.cur.items) {
		cur, ok := <-b.batches
		if !ok {
			if err := b.ctx.Err(); err != nil {
				return fetchItem{}, nil, err
			}
			return fetchItem{}, nil, io.EOF
		}
		<-cur.done
		if cur.err != nil {
			return fetchItem{}, nil, cur.err
		}
		b.cur, b.i, b.c = cur, 0, 0
	}
	it := b.cur.items[b.i]
	b.i++
	if it.entry != nil {
		return it, nil, nil
	}
	d := b.cur.data[b.c]
	b.cur.data[b.c] = nil // the stream holds it no longer than it needs
	b.c++
	return it, d, nil
}

// fetchBatch is the chunk bytes one read of a fetch asks for.
const fetchBatch = 8 << 20

// chunksReader reads a file's content from the next left chunks.
type chunksReader struct {
	items *batchItems
	left  int
	cur   []byte
}

func (c *chunksReader) Read(p []byte) (int, error) {
	for len(c.cur) == 0 {
		if c.left == 0 {
			return 0, io.EOF
		}
		it, d, err := c.items.next()
		if err == io.EOF {
			return 0, fmt.Errorf("bucketremote: the tree walk ended inside a file")
		}
		if err != nil {
			return 0, err
		}
		if it.entry != nil {
			return 0, fmt.Errorf("bucketremote: an entry inside a file") // cannot happen
		}
		c.cur = d
		c.left--
	}
	n := copy(p, c.cur)
	c.cur = c.cur[n:]
	return n, nil
}
