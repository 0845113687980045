// Package cas is a content-addressed object store: each object is keyed by
// the BLAKE3 hash of its plaintext and kept zstd-compressed in a pack file
// (see pack.go for the format). Every read decompresses and re-hashes, so
// a flipped bit is reported, never returned.
//
// New objects are written through a Batch into packs of their own (of at
// most packTarget bytes each) in staging/, fsynced, then published into
// packs/ with their indexes. Prune deletes packs whose objects all died
// unread, punches the dead objects out of large packs in place
// (punch.go) and rewrites small ones. An object
// is therefore only ever found (and deduplicated against) once it is
// complete and durable, so a crash can never turn a torn write into a
// deduplication hit.
//
// The store keeps the index of every pack in memory; it is the only
// process using its directory. It does not lock itself against garbage
// collection: the caller keeps Prune away from batches in flight (the dump
// backend uses a read/write lock).
package cas

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/dotmesh-io/dotmesh/backend/internal/durable"
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
	packsDir   = "packs"
	stagingDir = "staging"
	looseDir   = "objects" // one file per object, before packs: imported by Open

	// packMode: packs are never written again once published, and only
	// the node's user reads them.
	packMode = 0o400

	// encoderWindow is the zstd window of compression (see Open).
	encoderWindow = 4 << 20

	// maxOpenPacks bounds the pack files kept open for reading; reads
	// from others open and close them.
	maxOpenPacks = 256
)

// Options tune a Store.
type Options struct {
	// Level is the zstd level (1 fastest .. 22 smallest); 0 picks the
	// fastest, because committing speed matters more than a few percent.
	Level int
	// Concurrency bounds parallel compressions; 0 means GOMAXPROCS.
	Concurrency int
	Logger      *slog.Logger
	// Seal encrypts the store at rest (see Sealing); nil keeps it plain.
	Seal *Sealing
}

// Store is a content-addressed object store rooted at one directory.
type Store struct {
	dir    string
	enc    *zstd.Encoder
	serial *zstd.Encoder // one encoder: see CompressSerial
	dec    *zstd.Decoder
	log    *slog.Logger
	seal   *Sealing // nil: plain

	mu    sync.RWMutex
	index map[Hash]loc
	packs map[string]*pack

	openPacks atomic.Int32
	punchState
}

// loc is where an object is.
type loc struct {
	p   *pack
	off int64
	n   uint32
}

// pack is one published pack file.
type pack struct {
	id   string
	size int64 // of the pack file
	mu   sync.Mutex
	f    *os.File // kept open for reads, up to maxOpenPacks of them
}

func (s *Store) packPath(id, ext string) string {
	return filepath.Join(s.dir, packsDir, id+ext)
}

// Open opens (creating if needed) the store in dir: it loads the index
// of every pack, removes packs that were never published and staging
// left by batches that never committed, and imports objects kept one
// file each by earlier versions. The caller must make sure no other
// process uses dir at the same time.
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
	// The store is private to the node's user whatever made its
	// directories before (earlier versions: 0755).
	for _, d := range []string{dir, filepath.Join(dir, packsDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create object store in %s: %w", dir, err)
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return nil, fmt.Errorf("object store in %s: %w", dir, err)
		}
	}
	staging := filepath.Join(dir, stagingDir)
	if err := os.RemoveAll(staging); err != nil {
		return nil, fmt.Errorf("remove stale staging area %s: %w", staging, err)
	}
	if err := os.Mkdir(staging, 0o700); err != nil {
		return nil, fmt.Errorf("create staging area %s: %w", staging, err)
	}
	newEnc := func(concurrency int) (*zstd.Encoder, error) {
		return zstd.NewWriter(nil,
			zstd.WithEncoderLevel(level),
			zstd.WithEncoderConcurrency(concurrency),
			zstd.WithEncoderCRC(false), // the BLAKE3 key already covers the plaintext
			zstd.WithZeroFrames(true),
			// Objects are chunks of at most a few MiB: a larger window
			// compresses them no better, and each concurrent encoder keeps
			// two windows of history (16 MiB at the default 8 MiB).
			zstd.WithWindowSize(encoderWindow),
		)
	}
	enc, err := newEnc(opts.Concurrency)
	if err != nil {
		return nil, fmt.Errorf("create zstd encoder: %w", err)
	}
	serial, err := newEnc(1) // its buffers are allocated on first use
	if err != nil {
		enc.Close()
		return nil, fmt.Errorf("create zstd encoder: %w", err)
	}
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(opts.Concurrency),
		zstd.WithDecoderMaxMemory(MaxObjectSize),
		zstd.WithDecoderMaxWindow(MaxObjectSize),
	)
	if err != nil {
		enc.Close()
		serial.Close()
		return nil, fmt.Errorf("create zstd decoder: %w", err)
	}
	s := &Store{dir: dir, enc: enc, serial: serial, dec: dec, log: opts.Logger, seal: opts.Seal, index: map[Hash]loc{}, packs: map[string]*pack{}}
	if err := s.loadPacks(); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.importLoose(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// loadPacks indexes every published pack. A pack without an index was
// never published and is removed, as is an index without its pack. A
// damaged index is rebuilt from its pack's records.
func (s *Store) loadPacks() error {
	dir := filepath.Join(s.dir, packsDir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list packs in %s: %w", dir, err)
	}
	names := map[string]bool{}
	for _, e := range ents {
		names[e.Name()] = true
	}
	for _, e := range ents {
		name := e.Name()
		id, ext := strings.TrimSuffix(name, filepath.Ext(name)), filepath.Ext(name)
		switch {
		case ext == ".pack" && !names[id+".idx"]:
			s.log.Info("removing a pack that was never published", "path", filepath.Join(dir, name))
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return fmt.Errorf("remove unpublished pack: %w", err)
			}
		case ext == ".idx" && !names[id+".pack"]:
			s.log.Warn("removing an index without its pack", "path", filepath.Join(dir, name))
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return fmt.Errorf("remove stray index: %w", err)
			}
		case ext == ".pack":
			if err := s.loadPack(id); err != nil {
				return err
			}
		case ext == ".tmp": // an index being rewritten when a crash came
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return fmt.Errorf("remove stray index: %w", err)
			}
		case ext != ".idx":
			s.log.Warn("stray file in object store", "path", filepath.Join(dir, name))
		}
	}
	return nil
}

func (s *Store) loadPack(id string) error {
	st, err := os.Stat(s.packPath(id, ".pack"))
	if err != nil {
		return fmt.Errorf("open pack %s: %w", id, err)
	}
	p := &pack{id: id, size: st.Size()}
	raw, err := os.ReadFile(s.packPath(id, ".idx"))
	if err != nil {
		return fmt.Errorf("read index of pack %s: %w", id, err)
	}
	es, err := s.decodeIndexOf(id, raw, p.size)
	if errors.Is(err, errMode) {
		return err
	}
	if err != nil {
		s.log.Warn("rebuilding a damaged pack index from its pack", "pack", id, "err", err)
		f, oerr := os.Open(s.packPath(id, ".pack"))
		if oerr != nil {
			return fmt.Errorf("open pack %s: %w", id, oerr)
		}
		es, err = s.rescan(f, p.size, s.packPath(id, ".pack"))
		f.Close()
		if err != nil {
			return fmt.Errorf("pack %s: %w", id, err)
		}
		if err := writeFileDurably(s.packPath(id, ".idx"), s.encodeIndexOf(id, es)); err != nil {
			return fmt.Errorf("rewrite index of pack %s: %w", id, err)
		}
	}
	s.install(p, es, false)
	return nil
}

// install adds a published pack and its objects to the index; an object
// some other pack holds already keeps that copy unless replace is set.
func (s *Store) install(p *pack, es []entry, replace bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.packs[p.id] = p
	for _, e := range es {
		if _, ok := s.index[e.h]; replace || !ok {
			s.index[e.h] = loc{p: p, off: e.off, n: e.n}
		}
	}
}

// installStaged is install for the objects a batch staged (state) in
// its packs (packs[part], nil for a pack left empty).
func (s *Store) installStaged(packs []*pack, state map[Hash]objEntry, replace bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range packs {
		if p != nil {
			s.packs[p.id] = p
		}
	}
	for h, e := range state {
		if e.st != stateStaged {
			continue
		}
		if _, ok := s.index[h]; replace || !ok {
			s.index[h] = loc{p: packs[e.part], off: int64(e.off), n: e.n}
		}
	}
}

// importLoose moves objects that earlier versions kept one file each
// (objects/<xx>/<hash>) into a pack, then removes them.
func (s *Store) importLoose() error {
	dir := filepath.Join(s.dir, looseDir)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	b, err := s.NewBatch()
	if err != nil {
		return err
	}
	defer b.Abort()
	n := 0
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		h, herr := ParseHash(d.Name())
		if herr != nil {
			return nil
		}
		if ok, _ := b.Has(h); ok {
			return nil
		}
		comp, err := readLoose(p, h)
		if err != nil {
			return err
		}
		n++
		return b.stage(h, comp)
	})
	if err == nil {
		err = b.Commit()
	}
	if err != nil {
		return fmt.Errorf("import loose objects from %s: %w", dir, err)
	}
	s.log.Info("imported loose objects into a pack", "objects", n)
	return os.RemoveAll(dir)
}

func readLoose(path string, h Hash) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > MaxStoredSize {
		return nil, fmt.Errorf("%w: object %s is %d bytes, more than any object may be (%s)", dotmesh.ErrCorrupt, h, st.Size(), path)
	}
	return os.ReadFile(path)
}

// Close releases the codecs and open packs.
func (s *Store) Close() error {
	s.mu.Lock()
	for _, p := range s.packs {
		s.closePack(p)
	}
	s.mu.Unlock()
	s.dec.Close()
	s.serial.Close()
	return s.enc.Close()
}

// Dir is the store's root directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) lookup(h Hash) (loc, bool) {
	s.mu.RLock()
	l, ok := s.index[h]
	s.mu.RUnlock()
	return l, ok
}

// Has reports whether object h is stored.
func (s *Store) Has(h Hash) (bool, error) {
	_, ok := s.lookup(h)
	return ok, nil
}

// Get returns the plaintext of object h, appended to dst[:0]. The content
// is verified against h: a mismatch wraps dotmesh.ErrCorrupt, a missing
// object dotmesh.ErrNotFound.
func (s *Store) Get(h Hash, dst []byte) ([]byte, error) {
	return s.getPooled(h, dst, func(buf *[]byte) ([]byte, error) { return s.readStored(h, buf) }, nil)
}

// GetFrame is Get, also handing frame (h's stored zstd frame, from
// which data was decoded and checked) and data to fn before the frame's
// buffer is reused: a caller that passes chunks on compressed (a bucket
// push) needs not compress them again. Neither slice outlives fn.
func (s *Store) GetFrame(h Hash, dst []byte, fn func(data, frame []byte)) ([]byte, error) {
	return s.getPooled(h, dst, func(buf *[]byte) ([]byte, error) { return s.readStored(h, buf) }, fn)
}

// getPooled decodes into dst the stored bytes of h that read reads into
// a buffer of recordBufs.
func (s *Store) getPooled(h Hash, dst []byte, read func(buf *[]byte) ([]byte, error), fn func(data, frame []byte)) ([]byte, error) {
	bp, _ := recordBufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	comp, err := read(bp)
	if err == nil {
		dst, err = s.Decode(h, comp, dst)
	}
	if err == nil && fn != nil {
		fn(dst, comp)
	}
	if cap(*bp) <= maxPooledRecord {
		recordBufs.Put(bp)
	}
	if err != nil {
		return nil, err
	}
	return dst, nil
}

// recordBufs recycles the buffers Get reads stored bytes into (the
// plaintext goes to the caller's dst): a checkout of a tree of small
// files reads an object per file, and a fresh buffer each made most of
// its garbage. Buffers over maxPooledRecord are left to the collector.
var recordBufs sync.Pool // of *[]byte

const maxPooledRecord = 1 << 20

// ReadStored returns the stored (compressed) bytes of object h, unverified
// (but read from a record that names h); Send forwards them as they are
// and the receiver verifies them.
func (s *Store) ReadStored(h Hash) ([]byte, error) {
	return s.readStored(h, nil)
}

// readStored is ReadStored reading into *buf (grown as needed) when buf
// is not nil.
func (s *Store) readStored(h Hash, buf *[]byte) ([]byte, error) {
	l, ok := s.lookup(h)
	if !ok {
		return nil, fmt.Errorf("%w: object %s is missing from the store", dotmesh.ErrNotFound, h)
	}
	return s.readFrom(l.p, entry{h: h, off: l.off, n: l.n}, buf)
}

// readFrom reads object e's stored bytes from pack p, into *buf when
// buf is not nil (see readRecord).
func (s *Store) readFrom(p *pack, e entry, buf *[]byte) ([]byte, error) {
	f, done, err := s.openPack(p)
	if err != nil {
		return nil, fmt.Errorf("open pack of object %s: %w", e.h, err)
	}
	defer done()
	return s.readObject(f, e.off, e.n, e.h, s.packPath(p.id, ".pack"), buf)
}

// readRecord reads the record of object h whose n stored bytes start at
// off, checking that its header names h and n. The record goes to *buf,
// grown as needed, when buf is not nil, else to a new buffer.
func readRecord(f *os.File, off int64, n uint32, h Hash, path string, into *[]byte) ([]byte, error) {
	var buf []byte
	if into != nil {
		buf = slices.Grow((*into)[:0], recordHeader+int(n))[:recordHeader+int(n)]
		*into = buf
	} else {
		buf = make([]byte, recordHeader+int(n))
	}
	if _, err := f.ReadAt(buf, off-recordHeader); err != nil {
		return nil, fmt.Errorf("%w: reading object %s from %s: %v", dotmesh.ErrCorrupt, h, path, err)
	}
	if string(buf[:recordHeader]) != string(recordHead(h, int(n))) {
		return nil, fmt.Errorf("%w: the record of object %s in %s does not match its index (damaged on disk); run a check and restore it from a peer", dotmesh.ErrCorrupt, h, path)
	}
	return buf[recordHeader:], nil
}

// openPack returns p's file for reading and a func to call when done.
func (s *Store) openPack(p *pack) (*os.File, func(), error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.f != nil {
		return p.f, func() {}, nil
	}
	f, err := os.Open(s.packPath(p.id, ".pack"))
	if err != nil {
		return nil, nil, err
	}
	if s.openPacks.Add(1) <= maxOpenPacks {
		p.f = f
		return f, func() {}, nil
	}
	s.openPacks.Add(-1)
	return f, func() { f.Close() }, nil
}

// closePack closes p's file if it is kept open.
func (s *Store) closePack(p *pack) {
	p.mu.Lock()
	if p.f != nil {
		p.f.Close()
		p.f = nil
		s.openPacks.Add(-1)
	}
	p.mu.Unlock()
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

// CompressSerial is Compress for a caller that compresses one object at
// a time in one goroutine (a database dump's sink): it uses an encoder
// of its own. The shared encoder hands its encoders out in turn, so one
// goroutine's objects fill the history buffers of all of them, and on
// this project's virtual machines the first touch of a page costs about
// 20 µs: two buffers of a few MiB were 4.4 MiB of fresh pages, a tenth
// of the node's CPU time in a PostgreSQL commit. Overlapping calls wait
// for each other.
func (s *Store) CompressSerial(plain, dst []byte) []byte {
	return s.serial.EncodeAll(plain, dst[:0])
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

// Location tells where object h's stored bytes are: the pack file, their
// offset and length. For tools and tests that inspect (or damage) the
// store.
func (s *Store) Location(h Hash) (path string, off int64, n int, err error) {
	l, ok := s.lookup(h)
	if !ok {
		return "", 0, 0, fmt.Errorf("%w: object %s is missing from the store", dotmesh.ErrNotFound, h)
	}
	return s.packPath(l.p.id, ".pack"), l.off, int(l.n), nil
}

// placed is an object with the pack that holds it.
type placed struct {
	p *pack
	e entry
}

// sortByPlace orders objects as their packs hold them, so that reading
// them in turn reads each pack from start to end.
func sortByPlace(ps []placed) {
	slices.SortFunc(ps, func(a, b placed) int {
		if c := strings.Compare(a.p.id, b.p.id); c != 0 {
			return c
		}
		return cmp.Compare(a.e.off, b.e.off)
	})
}

// List calls fn for every stored object with its stored size, in pack
// order (see sortByPlace), from a snapshot of the index taken first (fn
// may use the store).
func (s *Store) List(fn func(h Hash, size int64) error) error {
	s.mu.RLock()
	ps := make([]placed, 0, len(s.index))
	for h, l := range s.index {
		ps = append(ps, placed{l.p, entry{h: h, off: l.off, n: l.n}})
	}
	s.mu.RUnlock()
	sortByPlace(ps)
	for _, p := range ps {
		if err := fn(p.e.h, int64(p.e.n)); err != nil {
			return err
		}
	}
	return nil
}

// writeFileDurably replaces path through a temporary file, fsyncing the
// file and its directory.
func writeFileDurably(path string, data []byte) error {
	tmp := path + ".tmp"
	os.Remove(tmp)
	err := writeSynced(tmp, data)
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return durable.SyncDirs([]string{filepath.Dir(path)}, 1)
}
