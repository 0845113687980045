package cas

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/dotmesh-io/dotmesh/backend/internal/durable"
	"github.com/dotmesh-io/dotmesh/internal/seal"
	"golang.org/x/sys/unix"
)

type objState uint8

const (
	stateExisting objState = iota + 1 // already in the store
	stateClaimed                      // a writer will stage it
	stateStaged                       // complete in the batch's pack
)

// objEntry is 16 bytes (24 with a 64-bit offset): a first commit of
// 500,000 small files holds one per file until it is published. An
// offset in a batch's pack fits 32 bits: packs end past packTarget by
// one record at most (see maxPackOffset).
type objEntry struct {
	off  uint32 // staged: of the stored bytes in that pack
	n    uint32
	part int32 // staged: which of the batch's packs
	st   objState
}

// maxPackOffset bounds where a record of a batch's pack can start.
const maxPackOffset = packTarget + recordHeader + MaxStoredSize

var _ uint32 = maxPackOffset // does not compile when it outgrows objEntry.off

// kickBytes is how much a batch writes between starts of writeback, so
// the disk works while chunks are computed and Commit's fsync finds
// little left to do.
const kickBytes = 8 << 20

// packTarget bounds a pack: a batch starts another once its pack holds
// this much. Bounded packs keep a pack's index small to rewrite and let
// garbage collection delete whole packs unread when all their objects
// die; a pack still holds a record over the bound when one is.
const packTarget = 64 << 20

// Batch collects the new objects of one commit or one received stream in
// packs of its own (a new one each packTarget bytes). They stay invisible
// to other batches' deduplication until Commit, and vanish with Abort. A
// Batch is safe for concurrent use.
type Batch struct {
	s *Store

	io sync.RWMutex // writes hold it shared; finishing holds it exclusively

	mu    sync.Mutex
	state map[Hash]objEntry
	parts []*batchPack // the packs being written; the last takes new objects
	done  bool

	replace bool // published objects take over from other packs' copies (Prune)

	newObjects atomic.Int64
	newStored  atomic.Int64 // compressed bytes
	newPlain   atomic.Int64
}

// batchPack is one pack a batch writes, in staging/ until published.
type batchPack struct {
	id, path string
	f        *os.File
	size     int64 // bytes reserved so far
	kicked   int64 // writeback started up to here
}

// NewBatch starts a batch. Its first pack is made when the first object
// comes.
func (s *Store) NewBatch() (*Batch, error) {
	return &Batch{s: s, state: make(map[Hash]objEntry)}, nil
}

// newPackID is a random pack name.
func newPackID() (string, error) {
	var rnd [16]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return "", fmt.Errorf("random pack name: %w", err)
	}
	return hex.EncodeToString(rnd[:]), nil
}

// Stats returns how many objects the batch added, their stored
// (compressed) bytes and their plaintext bytes.
func (b *Batch) Stats() (objects, stored, plain int64) {
	return b.newObjects.Load(), b.newStored.Load(), b.newPlain.Load()
}

// Claim reports whether the caller must write object h: true exactly once
// per batch for an object the store lacks; false when it is stored
// already or another writer of this batch claimed it.
func (b *Batch) Claim(h Hash) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return false, fmt.Errorf("cas: claim object %s: the batch is finished", h)
	}
	if _, seen := b.state[h]; seen {
		return false, nil
	}
	if _, ok := b.s.lookup(h); ok {
		b.state[h] = objEntry{st: stateExisting}
		return false, nil
	}
	b.state[h] = objEntry{st: stateClaimed}
	return true, nil
}

// WriteClaimed compresses plain (whose hash is h, claimed by the caller)
// into the batch. scratch is a reusable compression buffer; the possibly
// grown buffer is returned.
func (b *Batch) WriteClaimed(h Hash, plain, scratch []byte) ([]byte, error) {
	comp := b.s.Compress(plain, scratch)
	if err := b.stage(h, comp); err != nil {
		return comp, err
	}
	b.newPlain.Add(int64(len(plain)))
	return comp, nil
}

// WriteCompressed stages the stored form comp (made by Compress) of an
// object h of plainLen bytes claimed by the caller.
func (b *Batch) WriteCompressed(h Hash, comp []byte, plainLen int) error {
	if err := b.stage(h, comp); err != nil {
		return err
	}
	b.newPlain.Add(int64(plainLen))
	return nil
}

// RawScratch is WriteRaw's reusable room for the pieces of a frame.
type RawScratch struct {
	hdr   []byte
	parts [][]byte
}

// WriteRaw stages plain (whose hash is h, claimed by the caller) kept
// uncompressed, in a raw frame (RawFrame), for content that does not
// compress. The frame goes to the pack in pieces, its headers between
// slices of plain (pwritev), not copied into one buffer first (which
// cost a memmove of every byte of a clone of random data); a sealed
// store seals it whole. scratch may be nil.
func (b *Batch) WriteRaw(h Hash, plain []byte, scratch *RawScratch) error {
	if b.s.seal != nil {
		return b.WriteCompressed(h, RawFrame(plain, nil), len(plain))
	}
	if scratch == nil {
		scratch = new(RawScratch)
	}
	scratch.parts, scratch.hdr = rawFrameParts(plain, scratch.hdr, append(scratch.parts[:0], nil))
	defer clear(scratch.parts) // keeps no reference to plain
	if err := b.stageParts(h, scratch.parts); err != nil {
		return err
	}
	b.newPlain.Add(int64(len(plain)))
	return nil
}

// Unstage takes back an object the caller claimed and staged (comp
// bytes stored for plainLen): it leaves the batch as if never claimed.
// For writers that stage ahead of knowing whether they keep an object.
// Its bytes stay in the pack, unindexed, until Prune rewrites the pack.
func (b *Batch) Unstage(h Hash, plainLen, storedLen int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state[h].st != stateStaged || b.done {
		return fmt.Errorf("cas: unstage object %s: not staged in an open batch", h)
	}
	delete(b.state, h)
	b.newObjects.Add(-1)
	b.newStored.Add(-int64(storedLen))
	b.newPlain.Add(-int64(plainLen))
	return nil
}

// Put stores plain unless present and returns its hash and whether it was
// new.
func (b *Batch) Put(plain []byte) (Hash, bool, error) {
	h := Sum(plain)
	claimed, err := b.Claim(h)
	if err != nil || !claimed {
		return h, false, err
	}
	_, err = b.WriteClaimed(h, plain, nil)
	return h, err == nil, err
}

// PutStored stores an object received in stored (compressed) form after
// checking that it decompresses to content hashing to h; scratch is a
// reusable decompression buffer. It reports whether the object was new.
// A mismatch wraps dotmesh.ErrCorrupt and stores nothing.
func (b *Batch) PutStored(h Hash, comp, scratch []byte) (bool, []byte, error) {
	plain, err := b.s.Decode(h, comp, scratch)
	if err != nil {
		return false, scratch, err
	}
	claimed, err := b.Claim(h)
	if err != nil || !claimed {
		return false, plain, err
	}
	if err := b.stage(h, comp); err != nil {
		return false, plain, err
	}
	b.newPlain.Add(int64(len(plain)))
	return true, plain, nil
}

// stage appends object h's record to the pack. Writers reserve their
// range under the lock and write outside it, so compressors never wait
// for each other's writes.
func (b *Batch) stage(h Hash, comp []byte) error {
	if len(comp) > MaxStoredSize-64 { // room for a seal
		return fmt.Errorf("object %s compresses to %d bytes, over the %d limit", h, len(comp), MaxStoredSize-64)
	}
	return b.stageParts(h, [][]byte{nil, b.s.sealObject(h, comp)})
}

// stageParts appends object h's record to the pack, its stored bytes
// the concatenation of parts[1:] (parts[0] is room for the record's
// header), sealed already in a sealed store.
func (b *Batch) stageParts(h Hash, parts [][]byte) error {
	n := 0
	for _, p := range parts[1:] {
		n += len(p)
	}
	if n > MaxStoredSize {
		return fmt.Errorf("object %s is stored in %d bytes, over the %d limit", h, n, MaxStoredSize)
	}
	stats := n
	if b.s.seal != nil {
		stats -= seal.Overhead(b.s.seal.AEAD)
	}
	b.io.RLock()
	defer b.io.RUnlock()
	b.mu.Lock()
	if b.done {
		b.mu.Unlock()
		return fmt.Errorf("stage object %s: the batch is finished", h)
	}
	if n := len(b.parts); n == 0 || b.parts[n-1].size >= packTarget {
		if err := b.create(); err != nil {
			b.mu.Unlock()
			return fmt.Errorf("stage object %s: %w", h, err)
		}
	}
	part := int32(len(b.parts) - 1)
	bp := b.parts[part]
	off := bp.size
	bp.size += recordHeader + int64(n)
	kick := bp.size-bp.kicked >= kickBytes || bp.size >= packTarget
	if kick {
		bp.kicked = bp.size
	}
	b.mu.Unlock()

	parts[0] = recordHead(b.s.name(h), n)
	if err := pwriteAll(bp.f, parts, off); err != nil {
		return fmt.Errorf("stage object %s: %w", h, err)
	}
	if kick {
		_ = unix.SyncFileRange(int(bp.f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
	}
	b.mu.Lock()
	b.state[h] = objEntry{st: stateStaged, part: part, off: uint32(off + recordHeader), n: uint32(n)}
	b.mu.Unlock()
	b.newObjects.Add(1)
	b.newStored.Add(int64(stats))
	return nil
}

// pwriteAll writes parts at off in f, all of them (pwritev may write
// fewer bytes than asked).
func pwriteAll(f *os.File, parts [][]byte, off int64) error {
	for len(parts) > 0 {
		n, err := unix.Pwritev(int(f.Fd()), parts, off)
		if err != nil {
			return err
		}
		if n == 0 {
			return io.ErrShortWrite
		}
		off += int64(n)
		for len(parts) > 0 && n >= len(parts[0]) {
			n -= len(parts[0])
			parts = parts[1:]
		}
		if len(parts) > 0 {
			parts[0] = parts[0][n:]
		}
	}
	return nil
}

// create starts the batch's next pack file; b.mu is held.
func (b *Batch) create() error {
	id, err := newPackID()
	if err != nil {
		return err
	}
	path := filepath.Join(b.s.dir, stagingDir, id+".pack")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, packMode)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt([]byte(packMagic), 0); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	b.parts = append(b.parts, &batchPack{id: id, path: path, f: f, size: int64(len(packMagic))})
	return nil
}

// Has reports whether h is in the store or staged in this batch.
func (b *Batch) Has(h Hash) (bool, error) {
	b.mu.Lock()
	st := b.state[h].st
	b.mu.Unlock()
	if st == stateStaged || st == stateExisting {
		return true, nil
	}
	return b.s.Has(h)
}

// Get returns the verified plaintext of h from this batch or the store.
func (b *Batch) Get(h Hash, dst []byte) ([]byte, error) {
	b.io.RLock()
	defer b.io.RUnlock()
	b.mu.Lock()
	e := b.state[h]
	var bp *batchPack
	if e.st == stateStaged {
		bp = b.parts[e.part]
	}
	b.mu.Unlock()
	if bp == nil {
		return b.s.Get(h, dst)
	}
	return b.s.getPooled(h, dst, func(buf *[]byte) ([]byte, error) { return b.s.readObject(bp.f, int64(e.off), e.n, h, bp.path, buf) }, nil)
}

// Commit makes the staged objects visible: the pack is fsynced, renamed
// into packs/ and published with its fsynced index, and only then are
// its objects found by Has and other batches. An object this batch found
// present was published the same way, so the caller may write a record
// that relies on any of them as soon as Commit returns.
func (b *Batch) Commit() error {
	_, err := b.publish(true)
	return err
}

// CommitStaged is Commit for a batch that may be incomplete: it publishes
// the objects that were staged completely (each was verified when it was
// put) and ignores claims that were never written. It returns the hashes
// it published. A received stream that breaks off uses it to keep what
// did arrive, so a re-run need not send it again; whether a commit is
// complete is the caller's check, made against the store afterwards.
func (b *Batch) CommitStaged() ([]Hash, error) {
	return b.publish(false)
}

func (b *Batch) publish(complete bool) ([]Hash, error) {
	hs, _, err := b.publishPacks(complete)
	return hs, err
}

// publishPacks publishes the batch's packs, each fsynced and renamed into
// packs/ before its fsynced index, with one fsync of packs/ after all: a
// crash leaves each pack published whole or not at all. It returns the
// ids of the packs and, unless complete, the objects published. A batch's objects are
// published only when all its packs are, so a commit record written
// after it never names a missing object.
func (b *Batch) publishPacks(complete bool) ([]Hash, []string, error) {
	b.io.Lock() // waits for writes in flight
	defer b.io.Unlock()
	b.mu.Lock()
	if b.done {
		b.mu.Unlock()
		return nil, nil, errors.New("cas: batch already finished")
	}
	b.done = true
	counts := make([]int, len(b.parts))
	var incomplete error
	n := 0
	for h, e := range b.state {
		switch e.st {
		case stateStaged:
			counts[e.part]++
			n++
		case stateClaimed:
			incomplete = fmt.Errorf("cas: object %s was claimed but never written; the batch is incomplete", h)
		}
	}
	parts, state := b.parts, b.state
	b.state = nil
	b.mu.Unlock()
	defer b.cleanup()
	if complete && incomplete != nil {
		return nil, nil, incomplete
	}
	if n == 0 {
		return nil, nil, nil
	}
	// Each pack's index is made from the state map in a pass of its own
	// and dropped once written, and the store's index is filled from
	// the map: a copy of every object's entry beside the map and the
	// growing index was a third of a 500,000-file commit's peak.
	s := b.s
	var ids []string
	for i, bp := range parts {
		if counts[i] == 0 {
			continue // every object taken back: cleanup removes it
		}
		if err := bp.f.Sync(); err != nil {
			return nil, nil, fmt.Errorf("make pack durable: %w", err)
		}
		es := make([]entry, 0, counts[i])
		for h, e := range state {
			if e.st == stateStaged && int(e.part) == i {
				es = append(es, entry{h: h, off: int64(e.off), n: e.n})
			}
		}
		idx := filepath.Join(s.dir, stagingDir, bp.id+".idx")
		if err := writeSynced(idx, s.encodeIndexOf(bp.id, es)); err != nil {
			return nil, nil, fmt.Errorf("write pack index: %w", err)
		}
		if err := os.Rename(bp.path, s.packPath(bp.id, ".pack")); err != nil {
			return nil, nil, fmt.Errorf("publish pack: %w", err)
		}
		if err := os.Rename(idx, s.packPath(bp.id, ".idx")); err != nil {
			return nil, nil, fmt.Errorf("publish pack index: %w", err)
		}
		ids = append(ids, bp.id)
	}
	if err := durable.SyncDirs([]string{filepath.Join(s.dir, packsDir)}, 1); err != nil {
		return nil, nil, err
	}
	packs := make([]*pack, len(parts))
	for i, bp := range parts {
		if counts[i] > 0 {
			packs[i] = &pack{id: bp.id, size: bp.size}
		}
	}
	var hs []Hash // only an incomplete batch's caller needs them
	s.installStaged(packs, state, b.replace)
	if !complete {
		hs = make([]Hash, 0, n)
		for h, e := range state {
			if e.st == stateStaged {
				hs = append(hs, h)
			}
		}
	}
	return hs, ids, nil
}

// writeSynced writes a new file and fsyncs it.
func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, packMode)
	if err != nil {
		return err
	}
	if _, err = f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Abort drops every staged object. It is safe after Commit (a no-op then).
func (b *Batch) Abort() {
	b.io.Lock()
	defer b.io.Unlock()
	b.mu.Lock()
	done := b.done
	b.done = true
	b.mu.Unlock()
	if !done {
		b.cleanup()
	}
}

// cleanup closes the packs and removes what is left in staging; b.io is
// held.
func (b *Batch) cleanup() {
	for _, bp := range b.parts {
		bp.f.Close()
		for _, p := range []string{bp.path, filepath.Join(b.s.dir, stagingDir, bp.id+".idx")} {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				b.s.log.Warn("could not remove staged pack; it is removed on next open", "path", p, "err", err)
			}
		}
	}
}
