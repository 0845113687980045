package dump

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// The commit's manifest knows every entry, its size, mode and chunks, so
// the tree of a commit is read without restoring anything.

var (
	_ dotmesh.TreeReader     = (*Backend)(nil)
	_ dotmesh.TreeFileOpener = (*Backend)(nil)
)

// CommitTree implements dotmesh.TreeReader from the commit's manifest.
func (b *Backend) CommitTree(ctx context.Context, c dotmesh.CommitRef) ([]dotmesh.TreeEntry, error) {
	m, err := b.commitManifest(c)
	if err != nil {
		return nil, err
	}
	out := make([]dotmesh.TreeEntry, len(m.Entries))
	for i := range m.Entries {
		e := &m.Entries[i]
		t := dotmesh.TreeEntry{FileEntry: dotmesh.FileEntry{
			Path: e.Path, Size: e.Size, Mode: fileMode(e), Target: e.Target,
			ModTime: time.Unix(0, e.MTime).UTC(),
		}}
		if e.Type == TypeFile {
			t.Content = contentID(e.Chunks)
		}
		out[i] = t
	}
	return out, nil
}

// ReadCommitFile implements dotmesh.TreeReader: the file's chunks, read
// and verified from the store, up to max bytes.
func (b *Backend) ReadCommitFile(ctx context.Context, c dotmesh.CommitRef, path string, max int64) ([]byte, bool, error) {
	defer b.useStore()()
	e, err := b.commitFileLocked(c, path)
	if err != nil {
		return nil, false, err
	}
	out := make([]byte, 0, min(max, e.Size))
	r := &chunkReader{ctx: ctx, b: b, chunks: e.Chunks, what: fmt.Sprintf("%s of commit %s", path, c.ID)}
	for int64(len(out)) < max {
		p, err := r.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, false, err
		}
		out = append(out, p[:min(int64(len(p)), max-int64(len(out)))]...)
	}
	return out, e.Size > int64(len(out)), nil
}

// commitFileLocked finds the regular file path in c's manifest; the
// caller holds useStore.
func (b *Backend) commitFileLocked(c dotmesh.CommitRef, path string) (*Entry, error) {
	m, err := b.commitManifestLocked(c)
	if err != nil {
		return nil, err
	}
	i := sort.Search(len(m.Entries), func(i int) bool { return comparePath(m.Entries[i].Path, path) >= 0 })
	if i == len(m.Entries) || m.Entries[i].Path != path {
		return nil, fmt.Errorf("%w: %s is not in commit %s", dotmesh.ErrNotFound, path, c.ID)
	}
	e := &m.Entries[i]
	if e.Type != TypeFile {
		return nil, fmt.Errorf("%w: %s is a %s in commit %s, not a regular file", dotmesh.ErrInvalidArgument, path, e.Type, c.ID)
	}
	return e, nil
}

// OpenCommitFile implements dotmesh.TreeFileOpener. Unlike
// openCommitFile it holds the store per chunk, not until Close: a
// neutral stream goes at the receiver's pace, and gc must not wait for
// it (nor, waiting, block every other reader).
func (b *Backend) OpenCommitFile(ctx context.Context, c dotmesh.CommitRef, path string) (io.ReadCloser, error) {
	done := b.useStore()
	e, err := b.commitFileLocked(c, path)
	done()
	if err != nil {
		return nil, err
	}
	r := &chunkReader{ctx: ctx, b: b, chunks: e.Chunks, what: fmt.Sprintf("%s of commit %s", path, c.ID), perChunk: true}
	if dotmesh.ChunksWanted(ctx) && len(e.Chunks) > 0 {
		// The receiver runs in this process and takes chunks (a bucket
		// remote): it learns the file's chunks before the stream carries
		// its entry, and each chunk, checked and still compressed, as it
		// is read, so it neither cuts, hashes nor compresses the file.
		fcs := make([]dotmesh.FileChunk, len(e.Chunks))
		for i, ch := range e.Chunks {
			fcs[i] = dotmesh.FileChunk{Hash: ch.Hash, Size: ch.Size}
		}
		dotmesh.OfferFile(ctx, path, e.Size, fcs)
		r.offer = true
	}
	return r, nil
}

// openCommitFile streams the regular file path of commit c from the
// store, chunk by chunk (each verified), holding the store until Close.
func (b *Backend) openCommitFile(ctx context.Context, c dotmesh.CommitRef, path string) (io.ReadCloser, error) {
	done := b.useStore()
	e, err := b.commitFileLocked(c, path)
	if err != nil {
		done()
		return nil, err
	}
	return &chunkReader{ctx: ctx, b: b, chunks: e.Chunks, what: fmt.Sprintf("%s of commit %s", path, c.ID), done: done}, nil
}

// chunkReader reads a file's chunks from the store in order.
type chunkReader struct {
	ctx    context.Context
	b      *Backend
	chunks []Chunk
	what   string
	buf    []byte
	rest   []byte // unread part of the current chunk
	done   func()
	// perChunk: hold the store for each chunk's read only.
	perChunk bool
	// offer: hand each chunk read to the receiver (dotmesh.OfferChunk).
	offer bool
}

// next returns the next chunk's bytes (valid until the next call).
func (r *chunkReader) next() ([]byte, error) {
	if len(r.chunks) == 0 {
		return nil, io.EOF
	}
	if err := r.ctx.Err(); err != nil {
		return nil, err
	}
	if r.perChunk {
		defer r.b.useStore()()
	}
	var err error
	if r.offer {
		h := r.chunks[0].Hash
		r.buf, err = r.b.store.GetFrame(h, r.buf, func(data, frame []byte) {
			if len(frame) >= len(data) {
				frame = nil // stored raw: it does not compress
			}
			dotmesh.OfferChunk(r.ctx, h, data, frame)
		})
	} else {
		r.buf, err = r.b.store.Get(r.chunks[0].Hash, r.buf)
	}
	if err != nil {
		return nil, corruptIfMissing(fmt.Errorf("read %s: %w", r.what, err))
	}
	r.chunks = r.chunks[1:]
	return r.buf, nil
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.rest) == 0 {
		c, err := r.next()
		if err != nil {
			return 0, err
		}
		r.rest = c
	}
	n := copy(p, r.rest)
	r.rest = r.rest[n:]
	return n, nil
}

func (r *chunkReader) Close() error {
	if r.done != nil {
		r.done()
		r.done = nil
	}
	return nil
}

func (b *Backend) commitManifest(c dotmesh.CommitRef) (*storedManifest, error) {
	defer b.useStore()()
	return b.commitManifestLocked(c)
}

// commitManifestLocked loads c's manifest; the caller holds useStore.
func (b *Backend) commitManifestLocked(c dotmesh.CommitRef) (*storedManifest, error) {
	_, root, err := b.readRecord(c)
	if err != nil {
		return nil, err
	}
	if m := b.manifests.get(root); m != nil {
		return m, nil
	}
	m, err := loadManifest(b.store, root)
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", c, err)
	}
	b.manifests.put(m)
	return m, nil
}

// fileMode turns an entry's type and unix permission bits into an
// fs.FileMode.
func fileMode(e *Entry) fs.FileMode {
	m := fs.FileMode(e.Mode & 0o777)
	if e.Mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if e.Mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if e.Mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	switch e.Type {
	case TypeDir:
		m |= fs.ModeDir
	case TypeSymlink:
		m |= fs.ModeSymlink
	}
	return m
}

// contentID names a file's bytes by its chunk list: chunks are named by
// the hash of their plaintext, so equal lists mean equal bytes; the
// content-defined chunker cuts equal bytes the same way, so different
// lists mean different bytes. A file of one chunk (most files) is named
// by that chunk's hash, with a prefix that keeps it apart from the hashes
// of lists: hashing every file's list was most of a diff's time.
func contentID(chunks []Chunk) string {
	if len(chunks) == 1 {
		return "1" + hex.EncodeToString(chunks[0].Hash[:])
	}
	h := sha256.New()
	for _, c := range chunks {
		h.Write(c.Hash[:])
	}
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0]))
}
