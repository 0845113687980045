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
	"golang.org/x/sync/semaphore"
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
	// A receiving node in this process writes the chunks' pieces to
	// its files straight from the fetch's buffers (neutral.Pipe).
	pr, pw := neutral.Pipe()
	done, start := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		// The reads start with the stream's first read: a receiving
		// node in this process has attached its chunk sink by then;
		// chunks read ahead before that were offered to no one (a
		// small dot's cut clone could stage nothing).
		select {
		case <-start:
		case <-ctx.Done():
			pw.CloseWithError(ctx.Err())
			return
		}
		pw.CloseWithError(r.writeCommit(ctx, rec, baseRec, pw))
	}()
	return &fetchReader{PipeReader: pr, cancel: cancel, done: done, start: start}, nil
}

// fetchReader is FetchCommit's stream: its first Read starts the
// writer; Close stops it and waits for it, so nothing of a fetch
// outlives its reader.
type fetchReader struct {
	*neutral.PipeReader
	cancel  context.CancelFunc
	done    chan struct{}
	start   chan struct{}
	started sync.Once
}

func (f *fetchReader) Read(p []byte) (int, error) {
	f.started.Do(func() { close(f.start) })
	return f.PipeReader.Read(p)
}

func (f *fetchReader) WriteNTo(w io.Writer, n int64) (int64, error) {
	f.started.Do(func() { close(f.start) })
	return f.PipeReader.WriteNTo(w, n)
}

func (f *fetchReader) Close() error {
	f.cancel()
	err := f.PipeReader.Close()
	<-f.done
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

// fetchItem is, in stream order, an entry of the tree or one chunk of
// the file before it, as a future.
type fetchItem struct {
	entry *TreeEntry
	chunk chan chunkResult
	size  int64 // the chunk's bytes, held from the read-ahead budget
	err   error
}

type chunkResult struct {
	data []byte
	err  error
}

// writeCommit writes rec's tree as a neutral stream to w, or the delta
// from base's when base is set. One goroutine walks the tree and starts
// the chunks' reads in batches, at most max(Parallel/2, 2) at once and
// at most fetchAhead bytes of chunks ahead of the writer, which takes
// them in order.
func (r *Remote) writeCommit(ctx context.Context, rec, base *CommitRecord, w io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	items := make(chan fetchItem, fetchAheadItems)
	ahead := semaphore.NewWeighted(fetchAhead)
	// A receiving node in this process may store the chunks as the
	// bucket holds them, compressed, and take its files' chunk lists
	// instead of cutting them again (dotmesh.ChunkStager).
	offer := dotmesh.ChunksWanted(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		for range items { // the walker ends at its next send
		}
		wg.Wait()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(items)
		send := func(it fetchItem) error {
			select {
			case items <- it:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		// Chunks are read in batches, one repo.GetBlobs each, so chunks
		// lying next to each other in a pack come in one request; a batch
		// holds back its items until its read started.
		sem := make(chan struct{}, max(r.cfg.Parallel/2, 2))
		what := fmt.Sprintf("commit %s", rec.Commit.ID)
		var (
			held   []fetchItem
			ids    []repo.ID
			hashes [][32]byte
			lens   []uint32
			futs   []chan chunkResult
			bytes  int64
		)
		start := func() error {
			if len(ids) > 0 {
				// Read ahead by bytes, not by items: a batch waits until
				// the writer took enough of the chunks before it, so
				// several whole batches are under way while the tree is
				// written (a batch is at most fetchBatchMax plus one
				// chunk, well under fetchAhead).
				if err := ahead.Acquire(ctx, min(bytes, fetchAhead)); err != nil {
					return err
				}
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					return ctx.Err()
				}
				ids, hashes, lens, futs := ids, hashes, lens, futs
				wg.Add(1)
				go func() {
					defer wg.Done()
					var data, frames [][]byte
					var err error
					if offer {
						data, frames, err = r.repo.GetBlobsFrames(ctx, ids)
					} else {
						data, err = r.repo.GetBlobs(ctx, ids)
					}
					<-sem
					for i, f := range futs {
						res := chunkResult{err: err}
						if err == nil {
							res.data = data[i]
							if len(res.data) != int(lens[i]) {
								res.err = fmt.Errorf("%w: blob %s holds %d bytes where the tree says %d", dotmesh.ErrCorrupt, ids[i], len(res.data), lens[i])
							} else if offer {
								// The blob checked out against its ID, the
								// keyed hash of hashes[i]: its data and frame
								// are the chunk hashing to it.
								dotmesh.OfferChunk(ctx, hashes[i], res.data, frames[i])
							}
						}
						if res.err != nil {
							id := ids[i]
							var be *repo.BlobError
							if errors.As(res.err, &be) {
								id = be.ID
							}
							res.err = fmt.Errorf("%s: %w", what, blobErr(res.err, id))
						}
						f <- res
					}
				}()
			}
			for _, it := range held {
				if err := send(it); err != nil {
					return err
				}
			}
			held, ids, hashes, lens, futs, bytes = nil, nil, nil, nil, nil, 0
			return nil
		}
		walk := func(fn func(TreeEntry) error) error { return WalkTree(ctx, r.repo, rec, r.cfg.Parallel, fn) }
		if base != nil {
			walk = func(fn func(TreeEntry) error) error { return r.walkDelta(ctx, base, rec, fn) }
		}
		lastPack := ""
		err := walk(func(te TreeEntry) error {
			held = append(held, fetchItem{entry: &te})
			for _, c := range te.Chunks {
				id := r.repo.BlobID(c.Hash)
				// A batch ends where the chunks move to another pack
				// once it is big enough, so that a tree stored in order
				// is read a whole pack a request (cheaper for the server
				// than ranges across pack boundaries).
				pack, _, _, _ := r.repo.BlobLocation(ctx, id)
				if pack != lastPack && bytes >= fetchBatchMin {
					if err := start(); err != nil {
						return err
					}
				}
				lastPack = pack
				f := make(chan chunkResult, 1)
				held = append(held, fetchItem{chunk: f, size: int64(c.Length)})
				ids = append(ids, id)
				hashes = append(hashes, c.Hash)
				lens = append(lens, c.Length)
				futs = append(futs, f)
				bytes += int64(c.Length)
				if bytes >= fetchBatchMax {
					if err := start(); err != nil {
						return err
					}
				}
			}
			if len(held) >= 256 {
				return start()
			}
			return nil
		})
		if err == nil {
			err = start()
		}
		if err != nil {
			send(fetchItem{err: err})
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
	for it := range items {
		if it.err != nil {
			return it.err
		}
		if it.entry == nil {
			return fmt.Errorf("bucketremote: a chunk out of order") // cannot happen: chunks follow their entry
		}
		var content io.Reader
		if it.entry.Kind == neutral.KindFile {
			content = &chunksReader{items: items, ahead: ahead, left: len(it.entry.Chunks), size: it.entry.Size}
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

// A read of a fetch asks for the chunks up to the end of their pack once
// it has fetchBatchMin bytes of them, and at most fetchBatchMax (one
// ranged read: under repo's maxReadRun of stored bytes).
const (
	fetchBatchMin = 4 << 20
	fetchBatchMax = 20 << 20
)

// A fetch reads at most fetchAhead bytes of chunks ahead of the stream's
// writer (so two or three batches are read and opened while the tree is
// written), in at most fetchAheadItems entries and chunks.
const (
	fetchAhead      = 48 << 20
	fetchAheadItems = 4096
)

// chunksReader reads a file's content, size bytes, from the next left
// chunk futures. It is a neutral.SizedContent: the stream takes each
// chunk whole (WriteTo), without a copy through a buffer between.
type chunksReader struct {
	items <-chan fetchItem
	ahead *semaphore.Weighted // given back each chunk's size once taken
	left  int
	size  int64
	cur   []byte
}

func (c *chunksReader) Size() int64 { return c.size }

// next makes c.cur the next chunk's bytes; io.EOF after the last.
func (c *chunksReader) next() error {
	if c.left == 0 {
		return io.EOF
	}
	it, ok := <-c.items
	if !ok {
		return fmt.Errorf("bucketremote: the tree walk ended inside a file")
	}
	if it.err != nil {
		return it.err
	}
	if it.chunk == nil {
		return fmt.Errorf("bucketremote: an entry inside a file") // cannot happen
	}
	res := <-it.chunk
	c.ahead.Release(it.size)
	if res.err != nil {
		return res.err
	}
	c.cur = res.data
	c.left--
	return nil
}

func (c *chunksReader) Read(p []byte) (int, error) {
	for len(c.cur) == 0 {
		if err := c.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, c.cur)
	c.cur = c.cur[n:]
	return n, nil
}

func (c *chunksReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if len(c.cur) > 0 {
			n, err := w.Write(c.cur)
			total += int64(n)
			c.cur = c.cur[n:]
			if err != nil {
				return total, err
			}
		}
		if err := c.next(); err == io.EOF {
			return total, nil
		} else if err != nil {
			return total, err
		}
	}
}
