package repo

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

const dataDir = "data/"

// BlobID is the ID a blob whose plaintext has BLAKE3-256 hash h has in
// this repository (package doc): a writer holding chunk hashes asks
// HasBlobs without reading the chunks.
func (r *Repo) BlobID(h [32]byte) ID { return r.codec.blobID(h) }

// PutBlob stores data as a blob unless the repository has it, and
// returns its ID and whether it was written.
func (r *Repo) PutBlob(ctx context.Context, data []byte) (ID, bool, error) {
	return r.PutHashedBlob(ctx, ContentHash(data), data)
}

// PutHashedBlob is PutBlob for a writer that already holds data's
// ContentHash h (a chunker hashes every chunk to ask which are missing),
// so the chunk is not hashed twice. A wrong h stores a blob that GetBlob
// and Check then report as corrupt, never as data.
//
// The blob goes into a pack, stored once full; it is present (HasBlobs)
// only once Flush (or a later pack) stored its pack and an index naming
// it, so flush before writing a record that names it.
func (r *Repo) PutHashedBlob(ctx context.Context, h [32]byte, data []byte) (ID, bool, error) {
	return r.putBlob(ctx, h, len(data), func(name string) []byte { return r.codec.seal(kindBlob, name, data, true) })
}

// PutHashedBlobFrame is PutHashedBlob for a writer that also holds
// frame, a zstd frame it has seen decompress to data (the stored form
// of a chunk store such as the dump backend's), or nil for data that
// does not compress: the blob is stored from the frame as it is, not
// compressed again (nor tried). A frame that saves too little is not
// used, as PutBlob would not. A wrong frame stores a blob that GetBlob
// and Check report as corrupt, never as data.
func (r *Repo) PutHashedBlobFrame(ctx context.Context, h [32]byte, data, frame []byte) (ID, bool, error) {
	if len(frame) > MaxObjectSize {
		return r.codec.blobID(h), false, fmt.Errorf("%w: a blob's frame is %d bytes; at most %d are allowed", dotmesh.ErrInvalidArgument, len(frame), MaxObjectSize)
	}
	return r.putBlob(ctx, h, len(data), func(name string) []byte {
		if frame != nil && savesSpace(len(frame), len(data)) {
			return r.codec.sealEncoded(kindBlob, name, encZstd, frame)
		}
		return r.codec.sealEncoded(kindBlob, name, encRaw, data)
	})
}

// putBlob stores the blob whose plaintext of size bytes hashes to h,
// sealed by seal (given the blob's object name), unless the repository
// has it or a pack of this Repo holds it already.
func (r *Repo) putBlob(ctx context.Context, h [32]byte, size int, seal func(name string) []byte) (ID, bool, error) {
	id := r.codec.blobID(h)
	if size > MaxObjectSize {
		return id, false, fmt.Errorf("%w: blob is %d bytes; at most %d are allowed", dotmesh.ErrInvalidArgument, size, MaxObjectSize)
	}
	if present, err := r.HasPendingBlob(ctx, id); err != nil || present {
		return id, false, err
	}
	stored, err := r.pk.add(ctx, id, seal(BlobObject(id)))
	return id, stored, err
}

// HasPendingBlob says whether blob id is stored or waits in this Repo's
// packs to be (PutBlob took it): present once Flush returned nil.
func (r *Repo) HasPendingBlob(ctx context.Context, id ID) (bool, error) {
	if r.pk.has(id) {
		return true, nil
	}
	has, err := r.HasBlobs(ctx, []ID{id})
	if err != nil {
		return false, err
	}
	return has[0], nil
}

// Flush stores the blobs put so far (their packs, then an index naming
// them), so that they are present to every reader. It reports a pack or
// index that failed to store since the last Flush: the records naming
// those blobs must not be written.
func (r *Repo) Flush(ctx context.Context) error { return r.pk.flush(ctx) }

// GetBlob reads blob id. A blob changed, truncated, renamed or swapped in
// the store is a CorruptError naming its object (the pack, or the loose
// blob of an older repository), never data; a missing one wraps
// dotmesh.ErrNotFound.
func (r *Repo) GetBlob(ctx context.Context, id ID) ([]byte, error) {
	out, err := r.GetBlobs(ctx, []ID{id})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// GetBlobs reads blobs ids (as GetBlob), with one ranged read for blobs
// that lie next to each other in a pack: a reader asking for a file's
// chunks in order gets them in few requests. The first failure is
// returned.
func (r *Repo) GetBlobs(ctx context.Context, ids []ID) ([][]byte, error) {
	out, _, err := r.getBlobsFrames(ctx, ids, false)
	return out, err
}

// GetBlobsFrames is GetBlobs, also returning for each blob the zstd frame
// it was decompressed from, checked with it (nil for a blob stored
// uncompressed or loose): a reader that stores the blob compressed in
// the same way needs not compress it again.
func (r *Repo) GetBlobsFrames(ctx context.Context, ids []ID) (data, frames [][]byte, err error) {
	return r.getBlobsFrames(ctx, ids, true)
}

func (r *Repo) getBlobsFrames(ctx context.Context, ids []ID, withFrames bool) ([][]byte, [][]byte, error) {
	out := make([][]byte, len(ids))
	var frames [][]byte
	if withFrames {
		frames = make([][]byte, len(ids))
	}
	for retry := 0; ; retry++ {
		err := r.getBlobs(ctx, ids, out, frames)
		var mp *missingPackError
		if err == nil || !errors.As(err, &mp) {
			return out, frames, err
		}
		if retry > 0 {
			// The index names a pack the store lacks: damage.
			return out, frames, &BlobError{mp.blob, corrupt(mp.pack, fmt.Errorf("missing: the index names it (it holds blob %s)", mp.blob))}
		}
		// A pack named by the index is gone: a gc repacked it since the
		// index was read. Read the index again.
		r.ReloadIndex()
	}
}

// missingPackError: a pack the index names is not in the store.
type missingPackError struct {
	pack string
	blob ID
}

func (e *missingPackError) Error() string {
	return fmt.Sprintf("%v: pack %s holding blob %s is not in the repository", dotmesh.ErrNotFound, e.pack, e.blob)
}

func (e *missingPackError) Unwrap() error { return dotmesh.ErrNotFound }

// BlobError is GetBlobs' failure to read blob ID.
type BlobError struct {
	ID  ID
	Err error
}

func (e *BlobError) Error() string { return e.Err.Error() }
func (e *BlobError) Unwrap() error { return e.Err }

// getBlobs fills the missing blobs of out, and their frames when frames
// is not nil.
func (r *Repo) getBlobs(ctx context.Context, ids []ID, out, frames [][]byte) error {
	ix, err := r.loadIndex(ctx)
	if err != nil {
		return err
	}
	type want struct {
		i   int
		loc blobLoc
	}
	var packed []want
	for i, id := range ids {
		if out[i] != nil {
			continue
		}
		r.mu.Lock()
		loc, ok := ix.blobs[id]
		r.mu.Unlock()
		switch {
		case ok && !loc.Loose:
			packed = append(packed, want{i, loc})
			continue
		case !ok:
			b, name, pending, err := r.pk.read(ctx, id)
			if err != nil {
				return &BlobError{id, err}
			}
			if pending {
				if out[i], err = r.codec.openBlobData(id, b); err != nil {
					return &BlobError{id, corrupt(name, fmt.Errorf("blob %s: %w", id, err))}
				}
				continue
			}
		}
		// Loose (an older repository's), or unknown: a writer of the
		// older layout may have stored it since.
		if out[i], err = r.getLoose(ctx, id); err != nil {
			return &BlobError{id, err}
		}
	}
	// Runs of blobs next to each other in one pack: one read each.
	slices.SortFunc(packed, func(a, b want) int {
		if c := bytes.Compare(a.loc.Pack[:], b.loc.Pack[:]); c != 0 {
			return c
		}
		return cmp.Compare(a.loc.Offset, b.loc.Offset)
	})
	for len(packed) > 0 {
		n, end := 1, packed[0].loc.end()
		for n < len(packed) && packed[n].loc.Pack == packed[0].loc.Pack && packed[n].loc.Offset >= packed[n-1].loc.Offset &&
			int64(packed[n].loc.Offset) <= end+maxReadGap && packed[n].loc.end()-int64(packed[0].loc.Offset) <= maxReadRun {
			end = max(end, packed[n].loc.end())
			n++
		}
		first := packed[0].loc
		name := PackObject(first.Pack)
		run := packEntry{Offset: first.Offset, Length: uint32(end - int64(first.Offset))}
		b, err := r.readRange(ctx, name, run)
		if errors.Is(err, dotmesh.ErrNotFound) {
			return &BlobError{first.ID, &missingPackError{name, first.ID}}
		}
		if err != nil {
			return &BlobError{first.ID, err}
		}
		for k, w := range packed[:n] {
			if k > 0 && packed[k-1].loc == w.loc { // asked twice: opened once
				out[w.i] = out[packed[k-1].i]
				if frames != nil {
					frames[w.i] = frames[packed[k-1].i]
				}
				continue
			}
			off := int64(w.loc.Offset) - int64(first.Offset)
			// b is this call's own and each blob's range is opened once,
			// in place.
			data, frame, err := r.codec.openBlobFrame(w.loc.ID, b[off:off+int64(w.loc.Length):off+int64(w.loc.Length)], true)
			if err != nil {
				return &BlobError{w.loc.ID, corrupt(name, fmt.Errorf("blob %s at offset %d: %w", w.loc.ID, w.loc.Offset, err))}
			}
			out[w.i] = data
			if frames != nil {
				frames[w.i] = frame
			}
		}
		packed = packed[n:]
	}
	return nil
}

// getLoose reads the loose blob id (the layout before packs).
func (r *Repo) getLoose(ctx context.Context, id ID) ([]byte, error) {
	name := BlobObject(id)
	b, err := r.get(ctx, kindBlob, name)
	if err != nil {
		return nil, err
	}
	if got := r.codec.blobID(ContentHash(b)); got != id {
		return nil, corrupt(name, fmt.Errorf("holds blob %s", got))
	}
	return b, nil
}

// BlobLocation says which object holds blob id, as the index says, and
// where in it its stored form lies (a loose blob: all of it);
// ErrNotFound when the index does not name it.
func (r *Repo) BlobLocation(ctx context.Context, id ID) (object string, off, length int64, err error) {
	ix, err := r.loadIndex(ctx)
	if err != nil {
		return "", 0, 0, err
	}
	r.mu.Lock()
	l, ok := ix.blobs[id]
	r.mu.Unlock()
	switch {
	case !ok:
		return "", 0, 0, errMissing("blob", id.String())
	case l.Loose:
		return BlobObject(id), 0, int64(l.Length), nil
	}
	return PackObject(l.Pack), int64(l.Offset), int64(l.Length), nil
}

// A run of blobs read at once spans at most maxReadRun bytes, and skips
// gaps of at most maxReadGap (blobs of the pack not asked for).
const (
	maxReadRun = 32 << 20
	maxReadGap = 256 << 10
)

// readRange reads e's bytes of object name.
func (r *Repo) readRange(ctx context.Context, name string, e packEntry) ([]byte, error) {
	rc, err := r.store.Get(ctx, name, int64(e.Offset), int64(e.Length))
	if errors.Is(err, dotmesh.ErrCorrupt) {
		return nil, corrupt(name, err) // a short object: truncated
	}
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b := make([]byte, e.Length)
	if _, err := io.ReadFull(rc, b); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, corrupt(name, fmt.Errorf("shorter than the index says (%d bytes at offset %d)", e.Length, e.Offset))
		}
		return nil, err
	}
	return b, nil
}

// HasBlobs says for each of ids whether the repository holds it. It
// answers from the index (the index objects, and loose blobs of older
// repositories), read on first use and again after each Lock; blobs this
// Repo flushed are added.
func (r *Repo) HasBlobs(ctx context.Context, ids []ID) ([]bool, error) {
	ix, err := r.loadIndex(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]bool, len(ids))
	r.mu.Lock()
	for i, id := range ids {
		_, out[i] = ix.blobs[id]
	}
	r.mu.Unlock()
	return out, nil
}

func (r *Repo) loadIndex(ctx context.Context) (*repoIndex, error) {
	r.mu.Lock()
	ix := r.index
	r.mu.Unlock()
	if ix != nil {
		return ix, nil
	}
	ix, err := r.readIndex(ctx, false)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	if r.index == nil {
		r.index = ix
	}
	ix = r.index
	r.mu.Unlock()
	return ix, nil
}

// ReloadIndex drops the index of blobs; the next HasBlobs or PutBlob
// reads it again. Lock calls it.
func (r *Repo) ReloadIndex() {
	r.dropPrefetch()
	r.mu.Lock()
	r.index = nil
	r.mu.Unlock()
}

// ListBlobs calls fn with the ID and stored size of every blob the
// index names, in ID order.
func (r *Repo) ListBlobs(ctx context.Context, fn func(id ID, size int64) error) error {
	ix, err := r.loadIndex(ctx)
	if err != nil {
		return err
	}
	r.mu.Lock()
	locs := make([]blobLoc, 0, len(ix.blobs))
	for _, l := range ix.blobs {
		locs = append(locs, l)
	}
	r.mu.Unlock()
	slices.SortFunc(locs, func(a, b blobLoc) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	for _, l := range locs {
		if err := fn(l.ID, int64(l.Length)); err != nil {
			return err
		}
	}
	return nil
}

// ParseBlobObject is the blob ID whose store object is name; names of
// other objects are an error.
func ParseBlobObject(name string) (ID, error) {
	rest, ok := strings.CutPrefix(name, dataDir)
	if !ok || len(rest) != 3+64 || rest[2] != '/' || rest[:2] != rest[3:5] {
		return ID{}, errors.New("not data/<2 hex>/<64 hex>")
	}
	return ParseID(rest[3:])
}

// DeleteBlob removes blob id (no error when missing): its pack is
// repacked without it (Prune). Only a holder of an exclusive lock may
// delete: others may be about to reference it.
func (r *Repo) DeleteBlob(ctx context.Context, id ID) error {
	_, err := r.prune(ctx, func(b ID) bool { return b != id }, PruneOptions{}, &id)
	return err
}

// errMissing wraps ErrNotFound for a missing object of the repository.
func errMissing(what, name string) error {
	return fmt.Errorf("%w: %s %s is not in the repository", dotmesh.ErrNotFound, what, name)
}
