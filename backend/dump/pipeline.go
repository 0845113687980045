package dump

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/dotmesh-io/dotmesh/backend/dump/cas"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/internal/cdc"
	"golang.org/x/sys/unix"
)

// The commit pipeline has two stages so that even one huge file keeps two
// cores busy: file workers read and chunk files and hash each chunk;
// compress workers compress new chunks and stage them. Chunk buffers
// circulate through a bounded pool, which bounds memory and applies
// back-pressure to the readers.

type chunkJob struct {
	hash cas.Hash
	data []byte // a pool buffer, returned after staging
}

type snapshotter struct {
	b      *Backend
	tree   string
	batch  *cas.Batch
	bufs   chan []byte
	chunks chan chunkJob

	read  atomic.Int64 // file bytes read
	meter *dotmesh.ProgressMeter

	ctx    context.Context
	cancel context.CancelFunc
	errMu  sync.Mutex
	err    error
}

func (s *snapshotter) fail(err error) {
	s.errMu.Lock()
	if s.err == nil {
		s.err = err
		s.cancel()
	}
	s.errMu.Unlock()
}

// fileReader fills in the chunk lists (and fresh stat data) of the file
// entries handed to read, storing new chunks through batch. One runs for
// a whole commit while the walk goes on, so its workers never wait for
// the walk nor for each other at the end of a directory. Files that
// vanished since the walk get Type 0; the caller drops them.
type fileReader struct {
	s                    *snapshotter
	files                chan fileJob
	readers, compressors sync.WaitGroup
}

// fileJob is one entry to read; done is called when it is filled in.
type fileJob struct {
	e    *Entry
	done *sync.WaitGroup
}

func (b *Backend) startReading(ctx context.Context, tree string, batch *cas.Batch, meter *dotmesh.ProgressMeter) *fileReader {
	ctx, cancel := context.WithCancel(ctx)
	// Enough buffers and queue that a reader stuck on one large file and
	// a compressor stuck on a hard chunk rarely idle the other stage.
	nbuf := 4*b.workers + 4
	s := &snapshotter{
		b: b, tree: tree, batch: batch, meter: meter,
		bufs:   make(chan []byte, nbuf),
		chunks: make(chan chunkJob, nbuf),
		ctx:    ctx, cancel: cancel,
	}
	for i := 0; i < nbuf; i++ {
		s.bufs <- nil // allocated on first use: unchanged commits need none
	}
	r := &fileReader{s: s, files: make(chan fileJob, nbuf)}
	for i := 0; i < b.workers; i++ {
		r.compressors.Add(1)
		go func() {
			defer r.compressors.Done()
			var scratch []byte
			for j := range s.chunks {
				if s.ctx.Err() == nil {
					var err error
					scratch, err = batch.WriteClaimed(j.hash, j.data, scratch)
					if err != nil {
						s.fail(err)
					}
				}
				s.bufs <- j.data[:0]
			}
		}()
	}
	for i := 0; i < b.workers; i++ {
		r.readers.Add(1)
		go func() {
			defer r.readers.Done()
			c := newChunker(nil, fileChunks)
			for j := range r.files {
				if s.ctx.Err() == nil {
					if err := s.readFile(c, j.e); err != nil {
						s.fail(err)
					}
				}
				j.done.Done()
			}
		}()
	}
	return r
}

// read queues e; done.Add(1) is the caller's, done.Done is the reader's.
func (r *fileReader) read(e *Entry, done *sync.WaitGroup) {
	r.files <- fileJob{e: e, done: done}
}

// failed returns the first error of a reader or compressor, if any.
func (r *fileReader) failed() error {
	r.s.errMu.Lock()
	defer r.s.errMu.Unlock()
	return r.s.err
}

// finish waits for every queued file and chunk and returns the bytes read.
func (r *fileReader) finish() (int64, error) {
	s := r.s
	close(r.files)
	r.readers.Wait()
	close(s.chunks)
	r.compressors.Wait()
	s.cancel()
	s.b.bytesRead.Add(s.read.Load())
	if s.err != nil {
		return 0, s.err
	}
	return s.read.Load(), nil
}

// openNoFollow opens a file for reading without following a symlink that
// replaced it, and without updating its atime where permitted.
func openNoFollow(path string) (*os.File, error) {
	flags := unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_NOATIME
	fd, err := unix.Open(path, flags, 0)
	if errors.Is(err, unix.EPERM) { // O_NOATIME needs ownership
		fd, err = unix.Open(path, flags&^unix.O_NOATIME, 0)
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

func (s *snapshotter) readFile(c *cdc.Chunker, e *Entry) error {
	path := filepath.Join(s.tree, e.Path)
	f, err := openNoFollow(path)
	if errors.Is(err, fs.ErrNotExist) {
		e.Type = 0 // deleted since the walk
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	// The entry's stat comes from the open file before reading: if the
	// file changes while we read, its ctime moves on and the next commit
	// reads it again.
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	fresh := entryFromStat(e.Path, &st)
	if fresh.Type != TypeFile {
		return fmt.Errorf("%s changed from a file to a %s during the commit; commit again", path, fresh.Type)
	}
	*e = fresh
	e.Chunks = nil

	var total int64
	defer func() { s.read.Add(total) }()

	// Files below the minimum chunk size are one chunk whatever the
	// chunker would do: read them directly and skip its extra copy, into
	// a buffer of their size with room to notice growth (whole-chunk
	// buffers were 48 MB of a commit of small files).
	var rd io.Reader = f
	if e.Size < int64(fileChunks.Min) {
		buf := s.getBuf(smallBuf(e.Size))
		n, err := io.ReadFull(f, buf[:cap(buf)])
		total += int64(n)
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			e.Size = total
			if n == 0 {
				s.bufs <- buf[:0]
				return nil
			}
			return s.emit(e, buf[:n])
		case err != nil:
			s.bufs <- buf[:0]
			return fmt.Errorf("read %s: %w", path, err)
		}
		// It filled the buffer, so it grew since the stat: chunk it
		// after all (the chunker cuts a file below the minimum as one).
		rd = io.MultiReader(bytes.NewReader(append([]byte(nil), buf[:n]...)), f)
		total = 0 // the chunker's reader counts these bytes again
		s.bufs <- buf[:0]
	}
	cr := &countingReader{r: rd}
	c.Reset(cr, fileChunks)
	for {
		if err := s.ctx.Err(); err != nil {
			return err
		}
		buf := s.getBuf(fileChunks.Max)
		chunk, err := c.Next(buf)
		total = cr.n
		if err == io.EOF {
			s.bufs <- buf[:0]
			break
		}
		if err != nil {
			s.bufs <- buf[:0]
			return fmt.Errorf("read %s: %w", path, err)
		}
		if err := s.emit(e, chunk.Data); err != nil {
			return err
		}
	}
	e.Size = total
	return nil
}

// getBuf takes a pool buffer of at least n bytes' capacity.
func (s *snapshotter) getBuf(n int) []byte {
	buf := <-s.bufs
	if cap(buf) < n {
		buf = make([]byte, 0, n)
	}
	return buf[:0]
}

// smallBuf is the buffer size that reads a file of size bytes below the
// minimum chunk size and one byte more: a power of two from 4 KiB, so
// that the pool's buffers fit the next files too.
func smallBuf(size int64) int {
	n := 4 << 10
	for int64(n) <= size && n < fileChunks.Min {
		n *= 2
	}
	return n
}

// emit records one chunk of e and hands it to a compressor when it is new;
// it takes ownership of data (a pool buffer).
func (s *snapshotter) emit(e *Entry, data []byte) error {
	h := cas.Sum(data)
	e.Chunks = append(e.Chunks, Chunk{Hash: h, Size: uint32(len(data))})
	s.meter.Add(int64(len(data)))
	claimed, err := s.batch.Claim(h)
	if err != nil || !claimed {
		s.bufs <- data[:0]
		return err
	}
	select {
	case s.chunks <- chunkJob{hash: h, data: data}:
		return nil
	case <-s.ctx.Done():
		s.bufs <- data[:0]
		return s.ctx.Err()
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
