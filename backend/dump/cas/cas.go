// Package cas is a content-addressed object store: each object is keyed by
// the BLAKE3 hash of its plaintext and kept zstd-compressed in a file of its
// own under objects/<first two hex digits>/<hash>. Every read decompresses
// and re-hashes, so a flipped bit is reported, never returned.
//
// New objects are written through a Batch: staged in staging/<batch>/,
// fsynced, then renamed into objects/. An object file therefore only ever
// appears under objects/ complete and durable, so a crash can never turn a
// torn write into a deduplication hit.
//
// The store does not lock itself against garbage collection: the caller
// keeps Remove away from batches in flight (the dump backend uses a
// read/write lock).
package cas

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/klauspost/compress/zstd"
)

const (
	// MaxObjectSize bounds the plaintext of one object. Chunks and manifest
	// pieces are far smaller; anything decoding to more is corrupt.
	MaxObjectSize = 16 << 20
	// MaxStoredSize bounds the compressed form of one object (zstd adds at
	// most a few bytes per 128 KiB block to incompressible data).
	MaxStoredSize = MaxObjectSize + MaxObjectSize/64 + 4096
)

const (
	objectsDir = "objects"
	stagingDir = "staging"
)

// Options tune a Store.
type Options struct {
	// Level is the zstd level (1 fastest .. 22 smallest); 0 picks the
	// fastest, because committing speed matters more than a few percent.
	Level int
	// Concurrency bounds parallel compressions; 0 means GOMAXPROCS.
	Concurrency int
	Logger      *slog.Logger
}

// Store is a content-addressed object store rooted at one directory.
type Store struct {
	dir string
	enc *zstd.Encoder
	dec *zstd.Decoder
	log *slog.Logger

	publishMu sync.Mutex // see Batch.Commit
}

// Open opens (creating if needed) the store in dir and removes staging
// directories left by batches that never committed. The caller must make
// sure no other process uses dir at the same time.
func Open(dir string, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = runtime.GOMAXPROCS(0)
	}
	level := zstd.SpeedFastest
	if opts.Level > 0 {
		level = zstd.EncoderLevelFromZstd(opts.Level)
	}
	for i := 0; i < 256; i++ {
		if err := os.MkdirAll(filepath.Join(dir, objectsDir, fmt.Sprintf("%02x", i)), 0o755); err != nil {
			return nil, fmt.Errorf("create object store in %s: %w", dir, err)
		}
	}
	staging := filepath.Join(dir, stagingDir)
	if err := os.RemoveAll(staging); err != nil {
		return nil, fmt.Errorf("remove stale staging area %s: %w", staging, err)
	}
	if err := os.Mkdir(staging, 0o755); err != nil {
		return nil, fmt.Errorf("create staging area %s: %w", staging, err)
	}
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(level),
		zstd.WithEncoderConcurrency(opts.Concurrency),
		zstd.WithEncoderCRC(false), // the BLAKE3 key already covers the plaintext
		zstd.WithZeroFrames(true),
	)
	if err != nil {
		return nil, fmt.Errorf("create zstd encoder: %w", err)
	}
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(opts.Concurrency),
		zstd.WithDecoderMaxMemory(MaxObjectSize),
		zstd.WithDecoderMaxWindow(MaxObjectSize),
	)
	if err != nil {
		enc.Close()
		return nil, fmt.Errorf("create zstd decoder: %w", err)
	}
	return &Store{dir: dir, enc: enc, dec: dec, log: opts.Logger}, nil
}

// Close releases the codecs.
func (s *Store) Close() error {
	s.dec.Close()
	return s.enc.Close()
}

// Dir is the store's root directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) path(h Hash) string {
	name := h.String()
	return filepath.Join(s.dir, objectsDir, name[:2], name)
}

// Has reports whether object h is stored.
func (s *Store) Has(h Hash) (bool, error) {
	_, err := os.Lstat(s.path(h))
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, fmt.Errorf("look up object %s: %w", h, err)
}

// Get returns the plaintext of object h, appended to dst[:0]. The content
// is verified against h: a mismatch wraps dotmesh.ErrCorrupt, a missing
// object dotmesh.ErrNotFound.
func (s *Store) Get(h Hash, dst []byte) ([]byte, error) {
	comp, err := s.ReadStored(h)
	if err != nil {
		return nil, err
	}
	return s.Decode(h, comp, dst)
}

// ReadStored returns the stored (compressed) bytes of object h, unverified;
// Send forwards them as they are and the receiver verifies them.
func (s *Store) ReadStored(h Hash) ([]byte, error) {
	return readObjectFile(s.path(h), h)
}

func readObjectFile(path string, h Hash) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: object %s is missing from the store", dotmesh.ErrNotFound, h)
		}
		return nil, fmt.Errorf("open object %s: %w", h, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat object %s: %w", h, err)
	}
	if st.Size() > MaxStoredSize {
		return nil, fmt.Errorf("%w: object %s is %d bytes, more than any object may be (%s)", dotmesh.ErrCorrupt, h, st.Size(), path)
	}
	buf := make([]byte, st.Size())
	if _, err := io.ReadFull(f, buf); err != nil {
		return nil, fmt.Errorf("read object %s: %w", h, err)
	}
	return buf, nil
}

// Decode decompresses stored bytes claimed to be object h into dst[:0] and
// verifies the plaintext hashes to h. Any failure wraps dotmesh.ErrCorrupt.
// Memory use is bounded by MaxObjectSize whatever comp contains.
func (s *Store) Decode(h Hash, comp, dst []byte) ([]byte, error) {
	out, err := s.dec.DecodeAll(comp, dst[:0])
	if err != nil {
		return nil, fmt.Errorf("%w: object %s does not decompress: %v", dotmesh.ErrCorrupt, h, err)
	}
	if len(out) > MaxObjectSize {
		return nil, fmt.Errorf("%w: object %s decompresses to %d bytes, more than the %d allowed", dotmesh.ErrCorrupt, h, len(out), MaxObjectSize)
	}
	if Sum(out) != h {
		return nil, fmt.Errorf("%w: object %s does not match its hash (damaged on disk or in transit); run a check and restore it from a peer", dotmesh.ErrCorrupt, h)
	}
	return out, nil
}

// Compress returns the stored form of plaintext, appended to dst[:0].
func (s *Store) Compress(plain, dst []byte) []byte {
	return s.enc.EncodeAll(plain, dst[:0])
}

// Verify reads object h and checks its hash; it returns the stored size.
func (s *Store) Verify(h Hash, scratch []byte) (int64, []byte, error) {
	comp, err := s.ReadStored(h)
	if err != nil {
		return 0, scratch, err
	}
	out, err := s.Decode(h, comp, scratch)
	if err != nil {
		return int64(len(comp)), scratch, err
	}
	return int64(len(comp)), out, nil
}

// Remove deletes object h and returns the bytes it occupied. Removing a
// missing object is not an error. The caller guarantees no batch in flight
// relies on h.
func (s *Store) Remove(h Hash) (int64, error) {
	p := s.path(h)
	st, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("stat object %s: %w", h, err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("remove object %s: %w", h, err)
	}
	return st.Size(), nil
}

// List calls fn for every stored object with its stored size. Files that
// are not named like objects are skipped with a warning.
func (s *Store) List(fn func(h Hash, size int64) error) error {
	for i := 0; i < 256; i++ {
		sub := filepath.Join(s.dir, objectsDir, fmt.Sprintf("%02x", i))
		ents, err := os.ReadDir(sub)
		if err != nil {
			return fmt.Errorf("list objects in %s: %w", sub, err)
		}
		for _, e := range ents {
			h, err := ParseHash(e.Name())
			if err != nil || e.Name()[:2] != filepath.Base(sub) {
				s.log.Warn("stray file in object store", "path", filepath.Join(sub, e.Name()))
				continue
			}
			info, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return fmt.Errorf("stat object %s: %w", h, err)
			}
			if err := fn(h, info.Size()); err != nil {
				return err
			}
		}
	}
	return nil
}
