package bucket

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// dirStore is the local kind: one file per object under a directory.
// Objects are written to a temporary file beside their place (a name part
// starting with a dot, which no object name has), synced, and renamed
// (Put) or hard-linked (Create) into place, so readers see them whole.
// A directory cannot hold both "a" and "a/b"; writing one while the other
// exists fails with ErrConflict.
type dirStore struct{ root string }

// OpenDir opens the local store in dir, which must be an existing
// absolute directory.
func OpenDir(dir string) (Store, error) {
	return openDir(context.Background(), URL{Scheme: "file", Path: dir}, Config{})
}

func openDir(_ context.Context, u URL, _ Config) (Store, error) {
	s := &dirStore{root: filepath.Clean(u.Path)}
	if !filepath.IsAbs(u.Path) {
		return nil, s.fail("open", "", fmt.Errorf("%w: %q is not an absolute directory", dotmesh.ErrInvalidArgument, u.Path))
	}
	fi, err := os.Stat(s.root)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, s.fail("open", "", fmt.Errorf("%w: directory %s does not exist; create it first", dotmesh.ErrNotFound, s.root))
		}
		return nil, s.fail("open", "", s.classify(err))
	}
	if !fi.IsDir() {
		return nil, s.fail("open", "", fmt.Errorf("%w: %s is not a directory", dotmesh.ErrInvalidArgument, s.root))
	}
	return s, nil
}

func (s *dirStore) Location() string { return "file://" + s.root }

func (s *dirStore) fail(op, name string, err error) error {
	return &Error{Op: op, Name: name, Location: s.Location(), Err: err}
}

func (s *dirStore) classify(err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %v", dotmesh.ErrNotFound, err)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%w: %v; check the owner and mode of %s", dotmesh.ErrPermissionDenied, err, s.root)
	case errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.EISDIR), errors.Is(err, syscall.EEXIST):
		return fmt.Errorf("%w: %v (a local store cannot hold both an object and objects under its name)", dotmesh.ErrConflict, err)
	}
	return err
}

func (s *dirStore) path(name string) string { return filepath.Join(s.root, filepath.FromSlash(name)) }

func (s *dirStore) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	return s.write(ctx, "put", name, r, size, os.Rename)
}

func (s *dirStore) Create(ctx context.Context, name string, r io.Reader, size int64) error {
	return s.write(ctx, "create", name, r, size, func(tmp, final string) error {
		err := os.Link(tmp, final)
		if errors.Is(err, fs.ErrExist) {
			if fi, serr := os.Stat(final); serr == nil && !fi.IsDir() {
				return fmt.Errorf("%w: object exists", dotmesh.ErrAlreadyExists)
			}
		}
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.ENOTSUP) {
			return fmt.Errorf("%w: the file system of %s has no hard links for an atomic create (%v)", dotmesh.ErrNotSupported, s.root, err)
		}
		return err
	})
}

// write puts r into a synced temporary file and hands it to place.
func (s *dirStore) write(ctx context.Context, op, name string, r io.Reader, size int64, place func(tmp, final string) error) error {
	if err := ValidateName(name); err != nil {
		return s.fail(op, name, err)
	}
	if err := ctx.Err(); err != nil {
		return s.fail(op, name, err)
	}
	final := s.path(name)
	dir := filepath.Dir(final)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return s.fail(op, name, s.classify(err))
	}
	tmp := filepath.Join(dir, ".tmp-"+randomHex())
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return s.fail(op, name, s.classify(err))
	}
	defer os.Remove(tmp) // after a rename or link this removes nothing, or the extra link
	err = copySized(f, ctxReader{ctx, r}, size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return s.fail(op, name, err)
	}
	if err := place(tmp, final); err != nil {
		return s.fail(op, name, s.classify(err))
	}
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return s.fail(op, name, err)
		}
	}
	return nil
}

// copySized copies exactly size bytes of r to w (all of r when size < 0);
// a reader with fewer or more bytes is the caller's mistake.
func copySized(w io.Writer, r io.Reader, size int64) error {
	if size < 0 {
		_, err := io.Copy(w, r)
		return err
	}
	n, err := io.CopyN(w, r, size)
	if err == io.EOF {
		return fmt.Errorf("%w: the reader ended after %d of the %d bytes given as the object's size", dotmesh.ErrInvalidArgument, n, size)
	}
	if err != nil {
		return err
	}
	var one [1]byte
	if m, _ := io.ReadFull(r, one[:]); m > 0 {
		return fmt.Errorf("%w: the reader has more than the %d bytes given as the object's size", dotmesh.ErrInvalidArgument, size)
	}
	return nil
}

func (s *dirStore) Get(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	if err := ValidateName(name); err != nil {
		return nil, s.fail("get", name, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, s.fail("get", name, err)
	}
	if off < 0 {
		return nil, s.fail("get", name, fmt.Errorf("%w: negative offset %d", dotmesh.ErrInvalidArgument, off))
	}
	f, err := os.Open(s.path(name))
	if err != nil {
		return nil, s.fail("get", name, s.notFound(err))
	}
	fi, err := f.Stat()
	if err == nil && fi.IsDir() {
		err = fs.ErrNotExist
	}
	if err != nil {
		f.Close()
		return nil, s.fail("get", name, s.notFound(err))
	}
	n, err := rangeLen(fi.Size(), off, length)
	if err != nil {
		f.Close()
		return nil, s.fail("get", name, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{ctxReader{ctx, io.NewSectionReader(f, off, n)}, f}, nil
}

// rangeLen is how many bytes a read of length at off takes from an
// object of size; a read past the end means the object is shorter than
// its reader expects.
func rangeLen(size, off, length int64) (int64, error) {
	if length < 0 {
		if off > size {
			return 0, fmt.Errorf("%w: object has %d bytes, read from offset %d (truncated?)", dotmesh.ErrCorrupt, size, off)
		}
		return size - off, nil
	}
	if off+length > size {
		return 0, fmt.Errorf("%w: object has %d bytes, read of %d at offset %d goes past its end (truncated?)", dotmesh.ErrCorrupt, size, length, off)
	}
	return length, nil
}

func (s *dirStore) notFound(err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("%w: no such object", dotmesh.ErrNotFound)
	}
	return s.classify(err)
}

func (s *dirStore) Stat(ctx context.Context, name string) (ObjectInfo, error) {
	if err := ValidateName(name); err != nil {
		return ObjectInfo{}, s.fail("stat", name, err)
	}
	if err := ctx.Err(); err != nil {
		return ObjectInfo{}, s.fail("stat", name, err)
	}
	fi, err := os.Stat(s.path(name))
	if err == nil && fi.IsDir() {
		err = fs.ErrNotExist
	}
	if err != nil {
		return ObjectInfo{}, s.fail("stat", name, s.notFound(err))
	}
	return ObjectInfo{Name: name, Size: fi.Size(), Modified: fi.ModTime()}, nil
}

func (s *dirStore) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	if err := ValidateListPrefix(prefix); err != nil {
		return s.fail("list", prefix, err)
	}
	// Walk only the directory the prefix ends in, then sort: a walk's
	// order puts "a/b" before "a.b", names order the other way.
	start := s.root
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = s.path(prefix[:i])
	}
	var found []ObjectInfo
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == start && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == start {
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if d.IsDir() {
			if !strings.HasPrefix(name+"/", prefix) && !strings.HasPrefix(prefix, name+"/") {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !strings.HasPrefix(name, prefix) {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // deleted while listed
		}
		if err != nil {
			return err
		}
		found = append(found, ObjectInfo{Name: name, Size: fi.Size(), Modified: fi.ModTime()})
		return nil
	})
	if err != nil {
		return s.fail("list", prefix, s.classify(err))
	}
	slices.SortFunc(found, func(a, b ObjectInfo) int { return strings.Compare(a.Name, b.Name) })
	for _, oi := range found {
		if err := ctx.Err(); err != nil {
			return s.fail("list", prefix, err)
		}
		if err := fn(oi); err != nil {
			return err
		}
	}
	return nil
}

func (s *dirStore) Delete(ctx context.Context, name string) error {
	if err := ValidateName(name); err != nil {
		return s.fail("delete", name, err)
	}
	if err := ctx.Err(); err != nil {
		return s.fail("delete", name, err)
	}
	p := s.path(name)
	fi, err := os.Lstat(p)
	if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
		return s.fail("delete", name, s.classify(err))
	}
	if err != nil || fi.IsDir() {
		return nil // missing: nothing to do
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return s.fail("delete", name, s.classify(err))
	}
	return nil
}

func (s *dirStore) Close() error { return nil }

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func randomHex() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
