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

// readFiles fills in the chunk lists (and fresh stat data) of the entries
// listed in todo, storing new chunks through batch, and returns the bytes
// read. Files that vanished since the walk get Type 0; the caller drops
// them.
func (b *Backend) readFiles(ctx context.Context, tree string, entries []Entry, todo []int, batch *cas.Batch, meter *dotmesh.ProgressMeter) (int64, error) {
	if len(todo) == 0 {
		return 0, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
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

	var compressors sync.WaitGroup
	for i := 0; i < b.workers; i++ {
		compressors.Add(1)
		go func() {
			defer compressors.Done()
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

	files := make(chan int)
	var readers sync.WaitGroup
	for i := 0; i < b.workers; i++ {
		readers.Add(1)
		go func() {
			defer readers.Done()
			c := newChunker(nil, fileChunks)
			for idx := range files {
				if s.ctx.Err() != nil {
					continue
				}
				if err := s.readFile(c, &entries[idx]); err != nil {
					s.fail(err)
				}
			}
		}()
	}
	for _, idx := range todo {
		if s.ctx.Err() != nil {
			break
		}
		files <- idx
	}
	close(files)
	readers.Wait()
	close(s.chunks)
	compressors.Wait()
	b.bytesRead.Add(s.read.Load())
	if s.err != nil {
		return 0, s.err
	}
	return s.read.Load(), ctx.Err()
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
	// chunker would do: read them directly and skip its extra copy.
	var rd io.Reader = f
	if e.Size < int64(fileChunks.Min) {
		buf := s.getBuf()
		n, err := io.ReadFull(f, buf[:fileChunks.Min])
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
		// It grew since the stat: chunk it after all.
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
		buf := s.getBuf()
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

func (s *snapshotter) getBuf() []byte {
	buf := <-s.bufs
	if cap(buf) < fileChunks.Max {
		buf = make([]byte, 0, fileChunks.Max)
	}
	return buf[:0]
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
