package repo

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/dotmesh-io/dotmesh/bucket"
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
func (r *Repo) PutHashedBlob(ctx context.Context, h [32]byte, data []byte) (ID, bool, error) {
	id := r.codec.blobID(h)
	has, err := r.HasBlobs(ctx, []ID{id})
	if err != nil {
		return id, false, err
	}
	if has[0] {
		return id, false, nil
	}
	if err := r.put(ctx, kindBlob, BlobObject(id), data, true, false); err != nil {
		return id, false, err
	}
	r.mu.Lock()
	if r.index != nil {
		r.index[id] = struct{}{}
	}
	r.mu.Unlock()
	return id, true, nil
}

// GetBlob reads blob id. A blob changed, truncated, renamed or swapped in
// the store is a CorruptError naming its object, never data; a missing
// one wraps dotmesh.ErrNotFound.
func (r *Repo) GetBlob(ctx context.Context, id ID) ([]byte, error) {
	name := BlobObject(id)
	data, err := r.get(ctx, kindBlob, name)
	if err != nil {
		return nil, err
	}
	if got := r.codec.blobID(ContentHash(data)); got != id {
		return nil, corrupt(name, fmt.Errorf("holds blob %s", got))
	}
	return data, nil
}

// HasBlobs says for each of ids whether the repository holds it. It
// answers from the index, one listing of data/ made on first use and
// again after each Lock; blobs this Repo wrote are added.
func (r *Repo) HasBlobs(ctx context.Context, ids []ID) ([]bool, error) {
	idx, err := r.loadIndex(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]bool, len(ids))
	r.mu.Lock()
	for i, id := range ids {
		_, out[i] = idx[id]
	}
	r.mu.Unlock()
	return out, nil
}

func (r *Repo) loadIndex(ctx context.Context) (map[ID]struct{}, error) {
	r.mu.Lock()
	idx := r.index
	r.mu.Unlock()
	if idx != nil {
		return idx, nil
	}
	idx = map[ID]struct{}{}
	err := r.ListBlobs(ctx, func(id ID, _ int64) error {
		idx[id] = struct{}{}
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	if r.index == nil {
		r.index = idx
	}
	idx = r.index
	r.mu.Unlock()
	return idx, nil
}

// ReloadIndex drops the index of blobs; the next HasBlobs or PutBlob
// lists data/ again. Lock calls it.
func (r *Repo) ReloadIndex() {
	r.mu.Lock()
	r.index = nil
	r.mu.Unlock()
}

// ListBlobs calls fn with the ID and stored size of every blob, in ID
// order. Objects under data/ that are no blob's name are logged and
// skipped (Check reports them).
func (r *Repo) ListBlobs(ctx context.Context, fn func(id ID, size int64) error) error {
	return r.store.List(ctx, dataDir, func(oi bucket.ObjectInfo) error {
		id, err := ParseBlobObject(oi.Name)
		if err != nil {
			r.log.Warn("repository: not a blob's name", "object", oi.Name, "err", err)
			return nil
		}
		return fn(id, oi.Size)
	})
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

// DeleteBlob removes blob id (no error when missing). Only a holder of
// an exclusive lock may delete: others may be about to reference it.
func (r *Repo) DeleteBlob(ctx context.Context, id ID) error {
	if err := r.store.Delete(ctx, BlobObject(id)); err != nil {
		return err
	}
	r.mu.Lock()
	if r.index != nil {
		delete(r.index, id)
	}
	r.mu.Unlock()
	return nil
}

// errMissing wraps ErrNotFound for a missing object of the repository.
func errMissing(what, name string) error {
	return fmt.Errorf("%w: %s %s is not in the repository", dotmesh.ErrNotFound, what, name)
}
