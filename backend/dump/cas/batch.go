package cas

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/dotmesh-io/dotmesh/backend/dump/internal/durable"
	"golang.org/x/sys/unix"
)

type objState uint8

const (
	stateExisting objState = iota + 1 // already in the store
	stateClaimed                      // a writer will stage it
	stateStaged                       // complete in the batch's pack
)

type objEntry struct {
	st  objState
	off int64 // staged: of the stored bytes in the batch's pack
	n   uint32
}

// kickBytes is how much a batch writes between starts of writeback, so
// the disk works while chunks are computed and Commit's fsync finds
// little left to do.
const kickBytes = 8 << 20

// Batch collects the new objects of one commit or one received stream in
// a pack of its own. They stay invisible to other batches' deduplication
// until Commit, and vanish with Abort. A Batch is safe for concurrent use.
type Batch struct {
	s    *Store
	id   string
	path string // the pack being written, in staging/

	io sync.RWMutex // writes hold it shared; finishing holds it exclusively
	f  *os.File     // created with the first object

	mu     sync.Mutex
	state  map[Hash]objEntry
	size   int64 // bytes of the pack reserved so far
	kicked int64 // writeback started up to here
	done   bool

	replace bool // published objects take over from other packs' copies (Prune)

	newObjects atomic.Int64
	newStored  atomic.Int64 // compressed bytes
	newPlain   atomic.Int64
}

// NewBatch starts a batch. Its pack is made when the first object comes.
func (s *Store) NewBatch() (*Batch, error) {
	var rnd [16]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("random pack name: %w", err)
	}
	id := hex.EncodeToString(rnd[:])
	return &Batch{s: s, id: id, path: filepath.Join(s.dir, stagingDir, id+".pack"), state: make(map[Hash]objEntry)}, nil
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
	stats := len(comp)
	comp = b.s.sealObject(h, comp)
	b.io.RLock()
	defer b.io.RUnlock()
	b.mu.Lock()
	if b.done {
		b.mu.Unlock()
		return fmt.Errorf("stage object %s: the batch is finished", h)
	}
	if b.f == nil {
		if err := b.create(); err != nil {
			b.mu.Unlock()
			return fmt.Errorf("stage object %s: %w", h, err)
		}
	}
	off := b.size
	b.size += recordHeader + int64(len(comp))
	kick := b.size-b.kicked >= kickBytes
	if kick {
		b.kicked = b.size
	}
	b.mu.Unlock()

	if _, err := unix.Pwritev(int(b.f.Fd()), [][]byte{recordHead(b.s.name(h), len(comp)), comp}, off); err != nil {
		return fmt.Errorf("stage object %s: %w", h, err)
	}
	if kick {
		_ = unix.SyncFileRange(int(b.f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
	}
	b.mu.Lock()
	b.state[h] = objEntry{st: stateStaged, off: off + recordHeader, n: uint32(len(comp))}
	b.mu.Unlock()
	b.newObjects.Add(1)
	b.newStored.Add(int64(stats))
	return nil
}

// create makes the pack file; b.mu is held.
func (b *Batch) create() error {
	f, err := os.OpenFile(b.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, packMode)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt([]byte(packMagic), 0); err != nil {
		f.Close()
		os.Remove(b.path)
		return err
	}
	b.f, b.size = f, int64(len(packMagic))
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
	f := b.f
	b.mu.Unlock()
	if e.st != stateStaged || f == nil {
		return b.s.Get(h, dst)
	}
	comp, err := b.s.readObject(f, e.off, e.n, h, b.path)
	if err != nil {
		return nil, err
	}
	return b.s.Decode(h, comp, dst)
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
	b.io.Lock() // waits for writes in flight
	defer b.io.Unlock()
	b.mu.Lock()
	if b.done {
		b.mu.Unlock()
		return nil, errors.New("cas: batch already finished")
	}
	b.done = true
	var staged []entry
	var incomplete error
	for h, e := range b.state {
		switch e.st {
		case stateStaged:
			staged = append(staged, entry{h: h, off: e.off, n: e.n})
		case stateClaimed:
			incomplete = fmt.Errorf("cas: object %s was claimed but never written; the batch is incomplete", h)
		}
	}
	size := b.size
	b.mu.Unlock()
	defer b.cleanup()
	if complete && incomplete != nil {
		return nil, incomplete
	}
	if len(staged) == 0 {
		return nil, nil
	}
	if err := b.f.Sync(); err != nil {
		return nil, fmt.Errorf("make pack durable: %w", err)
	}
	s := b.s
	idx := filepath.Join(s.dir, stagingDir, b.id+".idx")
	if err := writeSynced(idx, s.encodeIndexOf(b.id, staged)); err != nil {
		return nil, fmt.Errorf("write pack index: %w", err)
	}
	if err := os.Rename(b.path, s.packPath(b.id, ".pack")); err != nil {
		return nil, fmt.Errorf("publish pack: %w", err)
	}
	if err := os.Rename(idx, s.packPath(b.id, ".idx")); err != nil {
		return nil, fmt.Errorf("publish pack index: %w", err)
	}
	if err := durable.SyncDirs([]string{filepath.Join(s.dir, packsDir)}, 1); err != nil {
		return nil, err
	}
	s.install(&pack{id: b.id, size: size}, staged, b.replace)
	hs := make([]Hash, len(staged))
	for i, e := range staged {
		hs[i] = e.h
	}
	return hs, nil
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

// cleanup closes the pack and removes what is left in staging; b.io is
// held.
func (b *Batch) cleanup() {
	if b.f == nil {
		return
	}
	b.f.Close()
	for _, p := range []string{b.path, filepath.Join(b.s.dir, stagingDir, b.id+".idx")} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			b.s.log.Warn("could not remove staged pack; it is removed on next open", "path", p, "err", err)
		}
	}
}
