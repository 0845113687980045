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
	stateExisting objState = iota + 1 // already in objects/
	stateClaimed                      // a writer will stage it
	stateStaged                       // complete in the staging dir
)

// Batch collects the new objects of one commit or one received stream.
// They stay invisible to other batches' deduplication until Commit, and
// vanish with Abort. A Batch is safe for concurrent use.
type Batch struct {
	s   *Store
	dir string

	mu    sync.Mutex
	state map[Hash]objState
	done  bool

	syncer     *durable.Syncer // fsyncs staged objects as they come
	syncOnce   sync.Once
	syncResult error

	newObjects atomic.Int64
	newStored  atomic.Int64 // compressed bytes
	newPlain   atomic.Int64
}

// NewBatch starts a batch with its own staging directory.
func (s *Store) NewBatch() (*Batch, error) {
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("random staging name: %w", err)
	}
	dir := filepath.Join(s.dir, stagingDir, fmt.Sprintf("%d-%s", os.Getpid(), hex.EncodeToString(rnd[:])))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create staging directory: %w", err)
	}
	return &Batch{s: s, dir: dir, state: make(map[Hash]objState), syncer: durable.NewSyncer(syncWorkers, 4*syncWorkers)}, nil
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
	if _, seen := b.state[h]; seen {
		b.mu.Unlock()
		return false, nil
	}
	b.state[h] = stateClaimed
	b.mu.Unlock()

	ok, err := b.s.Has(h)
	if err != nil {
		b.mu.Lock()
		delete(b.state, h)
		b.mu.Unlock()
		return false, err
	}
	if ok {
		b.mu.Lock()
		b.state[h] = stateExisting
		b.mu.Unlock()
		return false, nil
	}
	return true, nil
}

// WriteClaimed compresses plain (whose hash is h, claimed by the caller)
// into the staging directory. scratch is a reusable compression buffer;
// the possibly grown buffer is returned.
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
func (b *Batch) Unstage(h Hash, plainLen, storedLen int) error {
	b.mu.Lock()
	st := b.state[h]
	if st != stateStaged || b.done {
		b.mu.Unlock()
		return fmt.Errorf("cas: unstage object %s: not staged in an open batch", h)
	}
	delete(b.state, h)
	b.mu.Unlock()
	if err := os.Remove(b.stagedPath(h)); err != nil {
		return fmt.Errorf("unstage object %s: %w", h, err)
	}
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

func (b *Batch) stage(h Hash, comp []byte) error {
	if len(comp) > MaxStoredSize {
		return fmt.Errorf("object %s compresses to %d bytes, over the %d limit", h, len(comp), MaxStoredSize)
	}
	p, err := b.stagePath(h)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("stage object %s: %w", h, err)
	}
	if _, err := f.Write(comp); err != nil {
		f.Close()
		return fmt.Errorf("stage object %s: %w", h, err)
	}
	// Start writeback now, without waiting for it, so the disk works while
	// we compute; the syncer's fsync then finds little left to do.
	_ = unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
	b.syncer.Add(f)
	b.mu.Lock()
	b.state[h] = stateStaged
	b.mu.Unlock()
	b.newObjects.Add(1)
	b.newStored.Add(int64(len(comp)))
	return nil
}

// stagePath returns where h is staged: flat in the batch's directory. A
// batch holds one commit's new objects, few enough for one directory, and
// a fan-out would cost a directory create (and its fsync) per new object
// on a first commit.
func (b *Batch) stagePath(h Hash) (string, error) {
	return b.stagedPath(h), nil
}

func (b *Batch) stagedPath(h Hash) string {
	return filepath.Join(b.dir, h.String())
}

// Has reports whether h is in the store or staged in this batch.
func (b *Batch) Has(h Hash) (bool, error) {
	b.mu.Lock()
	st := b.state[h]
	b.mu.Unlock()
	if st == stateStaged || st == stateExisting {
		return true, nil
	}
	return b.s.Has(h)
}

// Get returns the verified plaintext of h from this batch or the store.
func (b *Batch) Get(h Hash, dst []byte) ([]byte, error) {
	b.mu.Lock()
	st := b.state[h]
	b.mu.Unlock()
	if st != stateStaged {
		return b.s.Get(h, dst)
	}
	comp, err := readObjectFile(b.stagedPath(h), h)
	if err != nil {
		return nil, err
	}
	return b.s.Decode(h, comp, dst)
}

// Commit makes the staged objects visible: once each is durable (fsynced
// in the background as it was staged), they are renamed into objects/
// and the directories they went to are fsynced.
//
// Publishing is serialised store-wide, and Commit takes that lock even
// when nothing is staged: an object this batch found present may have
// been renamed in by a concurrent batch that has not synced its directory
// yet, and the caller is about to write a record that relies on it.
func (b *Batch) Commit() error {
	b.mu.Lock()
	if b.done {
		b.mu.Unlock()
		return errors.New("cas: batch already finished")
	}
	b.done = true
	var staged []Hash
	var incomplete error
	for h, st := range b.state {
		switch st {
		case stateStaged:
			staged = append(staged, h)
		case stateClaimed:
			incomplete = fmt.Errorf("cas: object %s was claimed but never written; the batch is incomplete", h)
		}
	}
	b.mu.Unlock()
	defer b.cleanup()
	if err := b.waitSynced(); err != nil {
		return err
	}
	if incomplete != nil {
		return incomplete
	}

	b.s.publishMu.Lock()
	defer b.s.publishMu.Unlock()
	var dirs []string
	var seen [256]bool
	for _, h := range staged {
		if err := os.Rename(b.stagedPath(h), b.s.path(h)); err != nil {
			return fmt.Errorf("publish object %s: %w", h, err)
		}
		if !seen[h[0]] {
			seen[h[0]] = true
			dirs = append(dirs, filepath.Dir(b.s.path(h)))
		}
	}
	return durable.SyncDirs(dirs, syncWorkers)
}

// syncWorkers is how many fsyncs run at once; the filesystem folds
// concurrent ones into shared journal commits.
const syncWorkers = 16

func (b *Batch) waitSynced() error {
	b.syncOnce.Do(func() { b.syncResult = b.syncer.Wait() })
	return b.syncResult
}

// Abort drops every staged object. It is safe after Commit (a no-op then).
func (b *Batch) Abort() {
	b.mu.Lock()
	done := b.done
	b.done = true
	b.mu.Unlock()
	if !done {
		b.cleanup()
	}
}

func (b *Batch) cleanup() {
	_ = b.waitSynced() // closes the staged files
	if err := os.RemoveAll(b.dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		b.s.log.Warn("could not remove staging directory; it is removed on next open", "dir", b.dir, "err", err)
	}
}
