package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/bucket"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// testDirStore is a minimal local-directory bucket.Store, used until the
// bucket package's local kind lands (branch h-store).
type testDirStore struct{ root string }

func (s *testDirStore) Location() string { return "file://" + s.root }
func (s *testDirStore) Close() error     { return nil }
func (s *testDirStore) path(name string) string {
	return filepath.Join(s.root, filepath.FromSlash(name))
}
func (s *testDirStore) classify(name string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: object %s: %v", dotmesh.ErrNotFound, name, err)
	}
	return err
}

func (s *testDirStore) write(name string, r io.Reader, place func(tmp, final string) error) error {
	final := s.path(name)
	if err := os.MkdirAll(filepath.Dir(final), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(final), ".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return place(f.Name(), final)
}

func (s *testDirStore) Put(_ context.Context, name string, r io.Reader, _ int64) error {
	return s.write(name, r, os.Rename)
}

func (s *testDirStore) Create(_ context.Context, name string, r io.Reader, _ int64) error {
	return s.write(name, r, func(tmp, final string) error {
		err := os.Link(tmp, final)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: object %s", dotmesh.ErrAlreadyExists, name)
		}
		return err
	})
}

func (s *testDirStore) Get(_ context.Context, name string, off, length int64) (io.ReadCloser, error) {
	b, err := os.ReadFile(s.path(name))
	if err != nil {
		return nil, s.classify(name, err)
	}
	b = b[min(off, int64(len(b))):]
	if length >= 0 {
		b = b[:min(length, int64(len(b)))]
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (s *testDirStore) Stat(_ context.Context, name string) (bucket.ObjectInfo, error) {
	fi, err := os.Stat(s.path(name))
	if err != nil {
		return bucket.ObjectInfo{}, s.classify(name, err)
	}
	return bucket.ObjectInfo{Name: name, Size: fi.Size(), Modified: fi.ModTime()}, nil
}

func (s *testDirStore) List(_ context.Context, prefix string, fn func(bucket.ObjectInfo) error) error {
	var all []bucket.ObjectInfo
	err := filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), ".") {
			return err
		}
		rel, _ := filepath.Rel(s.root, p)
		name := filepath.ToSlash(rel)
		if strings.HasPrefix(name, prefix) {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			all = append(all, bucket.ObjectInfo{Name: name, Size: fi.Size(), Modified: fi.ModTime()})
		}
		return nil
	})
	if err != nil {
		return err
	}
	slices.SortFunc(all, func(a, b bucket.ObjectInfo) int { return strings.Compare(a.Name, b.Name) })
	for _, oi := range all {
		if err := fn(oi); err != nil {
			return err
		}
	}
	return nil
}

func (s *testDirStore) Delete(_ context.Context, name string) error {
	err := os.Remove(s.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// noCreate is a store without conditional writes, as some S3 servers.
type noCreate struct{ bucket.Store }

func (noCreate) Create(context.Context, string, io.Reader, int64) error {
	return fmt.Errorf("%w: conditional create", dotmesh.ErrNotSupported)
}

// storeKinds are the stores every repository test runs against.
var storeKinds = []struct {
	name string
	open func(t testing.TB) bucket.Store
}{
	{"local", func(t testing.TB) bucket.Store { return &testDirStore{root: t.TempDir()} }},
}

// forEachStore runs f against a fresh store of every kind.
func forEachStore(t *testing.T, f func(t *testing.T, st bucket.Store)) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			st := k.open(t)
			t.Cleanup(func() { st.Close() })
			f(t, st)
		})
	}
}

// raw reads and writes objects behind the repository's back.
func rawGet(t testing.TB, st bucket.Store, name string) []byte {
	t.Helper()
	rc, err := st.Get(context.Background(), name, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func rawPut(t testing.TB, st bucket.Store, name string, b []byte) {
	t.Helper()
	if err := st.Put(context.Background(), name, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatal(err)
	}
}

// cheapKDF keeps tests fast; the format is the same.
var cheapKDF = KDFParams{Name: KDFArgon2id, Time: 1, Memory: 1024, Threads: 1}

var testNow = time.Now
