package dump

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"sort"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// The commit's manifest knows every entry, its size, mode and chunks, so
// the tree of a commit is read without restoring anything.

var _ dotmesh.TreeReader = (*Backend)(nil)

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
	m, err := b.commitManifestLocked(c)
	if err != nil {
		return nil, false, err
	}
	i := sort.Search(len(m.Entries), func(i int) bool { return comparePath(m.Entries[i].Path, path) >= 0 })
	if i == len(m.Entries) || m.Entries[i].Path != path {
		return nil, false, fmt.Errorf("%w: %s is not in commit %s", dotmesh.ErrNotFound, path, c.ID)
	}
	e := &m.Entries[i]
	if e.Type != TypeFile {
		return nil, false, fmt.Errorf("%w: %s is a %s in commit %s, not a regular file", dotmesh.ErrInvalidArgument, path, e.Type, c.ID)
	}
	out := make([]byte, 0, min(max, e.Size))
	var buf []byte
	for _, ch := range e.Chunks {
		if int64(len(out)) >= max {
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
		buf, err = b.store.Get(ch.Hash, buf)
		if err != nil {
			return nil, false, corruptIfMissing(fmt.Errorf("read %s of commit %s: %w", path, c.ID, err))
		}
		out = append(out, buf[:min(int64(len(buf)), max-int64(len(out)))]...)
	}
	return out, e.Size > int64(len(out)), nil
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
	m, err := loadManifest(b.store, root)
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", c, err)
	}
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
// lists mean different bytes.
func contentID(chunks []Chunk) string {
	h := sha256.New()
	for _, c := range chunks {
		h.Write(c.Hash[:])
	}
	return hex.EncodeToString(h.Sum(nil))
}
