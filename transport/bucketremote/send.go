package bucketremote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/dotmesh-io/dotmesh/bucket/repo"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/internal/cdc"
	"github.com/dotmesh-io/dotmesh/transport/neutral"
)

// SendCommit implements dotmesh.Transport: it stores commit c from a
// neutral stream (the only format it takes), chunk by chunk; the commit
// stays invisible until Finish. With base the stream is a delta against
// that stored commit (State advertises AcceptsNeutralBase).
func (r *Remote) SendCommit(ctx context.Context, dot dotmesh.DotName, branch string, c dotmesh.Commit, base *dotmesh.CommitID, format string, data io.Reader) error {
	if format != dotmesh.FormatNeutral {
		return fmt.Errorf("%w: a bucket stores commits from the %s stream only, not %q", dotmesh.ErrNotSupported, dotmesh.FormatNeutral, format)
	}
	dot, err := checkNames(dot, branch)
	if err != nil {
		return err
	}
	// base is not checked: a neutral stream is whole, so it goes unused.
	if err := dotmesh.ValidateIncomingCommit(c, nil); err != nil {
		return err
	}
	name := CommitName(dot, c.ID)
	if err := checkRecordName("commit record", name); err != nil {
		return err
	}
	params, err := r.chunkParams()
	if err != nil {
		return err
	}
	if err := r.writeLock(ctx); err != nil {
		return err
	}
	if _, err := r.repo.GetRecord(ctx, KindCommit, name); err == nil {
		// Stored by an earlier run: as a node, take the stream and keep
		// what is there.
		_, err := io.Copy(io.Discard, data)
		return err
	} else if !errors.Is(err, dotmesh.ErrNotFound) {
		return err
	}
	var baseRec *CommitRecord
	if base != nil {
		if err := dotmesh.ValidateID("base commit", string(*base), false); err != nil {
			return err
		}
		if baseRec, err = r.commit(ctx, dot, *base); err != nil {
			return fmt.Errorf("commit %s was sent as a delta against %s: %w; run the transfer again", c.ID, *base, err)
		}
	}
	if dotmesh.InProcessStream(ctx) {
		data = neutral.UncheckedReader(data) // the node's writer in this process
	}
	var offers *offerSink
	detach := func() {}
	if dotmesh.ChunksWanted(ctx) {
		offers = &offerSink{ctx: ctx, r: r, files: map[string]offeredFile{}}
		detach = dotmesh.AttachChunkSink(ctx, offers)
	}
	rec, err := r.storeTree(ctx, params, data, baseRec, offers)
	detach()
	if err != nil {
		// The chunks stored so far are sound (named by their content):
		// flushed, a run again does not upload them anew.
		if ferr := r.repo.Flush(context.WithoutCancel(ctx)); ferr != nil {
			r.log.Warn("bucket: storing the chunks of a failed transfer", "commit", c.ID, "err", ferr)
		}
		return fmt.Errorf("storing commit %s of %s: %w", c.ID, dot, err)
	}
	rec.Commit = c
	rec.Stored = r.now()
	// The record names the blobs: their packs and index go first.
	if err := r.repo.Flush(ctx); err != nil {
		return fmt.Errorf("storing commit %s of %s: %w", c.ID, dot, err)
	}
	if err := r.lockErr(); err != nil {
		return err
	}
	if err := r.repo.PutRecord(ctx, KindCommit, name, EncodeCommitRecord(rec)); err != nil {
		return fmt.Errorf("recording commit %s of %s: %w", c.ID, dot, err)
	}
	r.commits.put(name, rec)
	r.log.Info("bucket: stored commit", "dot", dot.String(), "branch", branch, "commit", c.ID, "files", rec.Files, "bytes", rec.Bytes)
	return nil
}

// chunkParams are the repository's chunker's, which every writer uses
// so that they all deduplicate against each other.
func (r *Remote) chunkParams() (cdc.Params, error) {
	ch := r.repo.Config().Chunker
	if ch.Name != repo.DefaultChunker.Name {
		return cdc.Params{}, fmt.Errorf("%w: the repository's chunker is %q; this dotmesh knows %q", dotmesh.ErrNotSupported, ch.Name, repo.DefaultChunker.Name)
	}
	p := cdc.Params{Min: ch.Min, Max: ch.Max, AvgBits: ch.AvgBits}
	if err := p.Validate(); err != nil {
		return p, fmt.Errorf("%w: the repository's chunker: %v", dotmesh.ErrNotSupported, err)
	}
	return p, nil
}

// chunkJob is one chunk of a file on its way to the repository.
type chunkJob struct {
	data []byte // a pooled buffer, returned once stored
	n    int    // its length
	hash [32]byte
	err  error
	done chan struct{}
}

// pendingEntry is an entry of the stream whose chunks are being stored.
type pendingEntry struct {
	e    neutral.Entry
	jobs []*chunkJob
	// chunks are an unchanged file's, from the base of a delta.
	chunks []Chunk
}

// storeTree reads a neutral stream (a delta against base when base is
// set: mergeDelta) and stores it: each file cut into
// chunks, the chunks the repository lacks stored by r.cfg.Parallel
// workers, and the tree encoding as blobs. A file whose chunks the
// sender offered (offers, nil when it offers none) is not cut: its
// bytes are skipped and its offered chunks, stored as they came, taken. It returns the commit record
// to write (without its commit) only when the stream's trailer checked
// out. Memory stays bounded: chunks wait for workers in a fixed number
// of buffers.
func (r *Remote) storeTree(ctx context.Context, params cdc.Params, data io.Reader, base *CommitRecord, offers *offerSink) (*CommitRecord, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	workers := r.cfg.Parallel
	slots := make(chan []byte, 2*workers) // free chunk buffers
	for range cap(slots) {
		slots <- nil // allocated on first use
	}
	jobs := make(chan *chunkJob)
	entries := make(chan *pendingEntry, 256)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				j.err = r.storeChunk(ctx, j)
				if j.err != nil {
					cancel(j.err)
				}
				slots <- j.data[:0]
				j.data = nil
				close(j.done)
			}
		}()
	}

	// The tree's encoding streams through a pipe to its own chunker.
	pr, pw := io.Pipe()
	rec := &CommitRecord{}
	treeDone := make(chan error, 1)
	go func() {
		err := r.storeTreeBlobs(ctx, params, pr, rec)
		pr.CloseWithError(err)
		treeDone <- err
	}()
	encDone := make(chan error, 1)
	go func() {
		err := r.encodeTree(ctx, entries, pw, rec)
		if err != nil {
			cancel(err)
			for range entries { // let the scan end
			}
		}
		pw.CloseWithError(err)
		encDone <- err
	}()

	ch := cdc.New(nil, params)
	emit := func(pe *pendingEntry) error {
		select {
		case entries <- pe:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	add := func(e neutral.Entry, content io.Reader) error {
		pe := &pendingEntry{e: e}
		if e.Kind == neutral.KindFile && e.Size > 0 {
			if cs, ok := offers.take(e.Path, e.Size); ok {
				if _, err := io.Copy(io.Discard, content); err != nil {
					return err
				}
				if err := offers.stored(ctx, e.Path, cs); err != nil {
					return err
				}
				pe.chunks = cs
				return emit(pe)
			}
			ch.Reset(content, params)
			for {
				var buf []byte
				select {
				case buf = <-slots:
				case <-ctx.Done():
					return context.Cause(ctx)
				}
				if buf == nil {
					buf = make([]byte, 0, params.Max)
				}
				c, err := ch.Next(buf)
				if err != nil {
					slots <- buf
					if err == io.EOF {
						break
					}
					return err
				}
				j := &chunkJob{data: c.Data, n: c.Length, done: make(chan struct{})}
				pe.jobs = append(pe.jobs, j)
				select {
				case jobs <- j:
				case <-ctx.Done():
					slots <- buf
					pe.jobs = pe.jobs[:len(pe.jobs)-1]
					return context.Cause(ctx)
				}
			}
		}
		return emit(pe)
	}
	var scanErr error
	if base == nil {
		scanErr = neutral.Scan(data, add)
	} else {
		scanErr = r.mergeDelta(ctx, base, data, add, func(te TreeEntry) error {
			return emit(&pendingEntry{e: te.Entry, chunks: te.Chunks})
		})
	}
	if scanErr != nil {
		cancel(scanErr)
	}
	close(jobs)
	close(entries)
	wg.Wait()
	encErr := <-encDone
	treeErr := <-treeDone
	switch {
	case scanErr != nil:
		// A failure of this side stopped the scan: report it, not the
		// scan's echo of it.
		if cause := context.Cause(ctx); cause != nil && cause != scanErr && !errors.Is(scanErr, cause) {
			return nil, cause
		}
		if errors.Is(scanErr, neutral.ErrCorrupt) && !errors.Is(scanErr, dotmesh.ErrCorrupt) {
			scanErr = corruptStream{scanErr}
		}
		return nil, scanErr
	case encErr != nil:
		return nil, encErr
	case treeErr != nil:
		return nil, treeErr
	}
	return rec, nil
}

// corruptStream is a damaged neutral stream's error, which is
// dotmesh.ErrCorrupt too; its text stays the stream's.
type corruptStream struct{ error }

func (e corruptStream) Unwrap() []error { return []error{e.error, dotmesh.ErrCorrupt} }

// storeChunk hashes a chunk and stores it unless the repository has it.
func (r *Remote) storeChunk(ctx context.Context, j *chunkJob) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	j.hash = repo.ContentHash(j.data)
	_, _, err := r.repo.PutHashedBlob(ctx, j.hash, j.data)
	return err
}

// encodeTree writes the entries, in order, as the tree encoding to w
// once their chunks are stored, counting them into rec.
func (r *Remote) encodeTree(ctx context.Context, entries <-chan *pendingEntry, w io.Writer, rec *CommitRecord) error {
	enc := NewTreeEncoder(w)
	for pe := range entries {
		te := TreeEntry{Entry: pe.e, Chunks: pe.chunks}
		if len(pe.jobs) > 0 {
			te.Chunks = make([]Chunk, len(pe.jobs))
		}
		for i, j := range pe.jobs {
			<-j.done
			if j.err != nil {
				return j.err
			}
			te.Chunks[i] = Chunk{Hash: j.hash, Length: uint32(j.n)}
		}
		if err := enc.Add(te); err != nil {
			return err
		}
		switch te.Kind {
		case neutral.KindDir:
			rec.Dirs++
		case neutral.KindSymlink:
			rec.Symlinks++
		case neutral.KindFile:
			rec.Files++
			rec.Bytes += te.Size
			rec.Chunks += int64(len(te.Chunks))
		}
	}
	if err := context.Cause(ctx); err != nil {
		return err // the scan failed: no tree to store
	}
	return enc.Close()
}

// storeTreeBlobs cuts the tree encoding read from r into blobs and
// stores them, recording their IDs and size in rec.
func (r *Remote) storeTreeBlobs(ctx context.Context, params cdc.Params, rd io.Reader, rec *CommitRecord) error {
	ch := cdc.New(rd, params)
	buf := make([]byte, 0, params.Max)
	for {
		c, err := ch.Next(buf)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		id, _, err := r.repo.PutBlob(ctx, c.Data)
		if err != nil {
			return err
		}
		rec.Tree = append(rec.Tree, id)
		rec.TreeBytes += int64(c.Length)
	}
}
