package buckettest_test

// Proof that the suite can fail: each mutant breaks one part of the
// contract on top of the (conforming) local store, and the suite subtest
// named with it must then fail. The suite runs in a child process so
// that its failures do not fail this test.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/bucket"
	"github.com/dotmesh-io/dotmesh/bucket/buckettest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

const mutantEnv = "BUCKETTEST_MUTANT"

type base struct{ bucket.Store }

type (
	getWrongErr  struct{ base }
	statWrongSz  struct{ base }
	delMissing   struct{ base }
	listReversed struct{ base }
	listLoose    struct{ base }
	listNoStop   struct{ base }
	createPuts   struct{ base }
	createRacy   struct{ base }
	putInPlace   struct{ base }
	truncating   struct{ base }
	rangeIgnored struct{ base }
	padShort     struct{ base }
	ignoreCtx    struct{ base }
)

func (m *getWrongErr) Get(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	rc, err := m.Store.Get(ctx, name, off, length)
	if errors.Is(err, dotmesh.ErrNotFound) {
		return nil, errors.New("no such file")
	}
	return rc, err
}

func (m *statWrongSz) Stat(ctx context.Context, name string) (bucket.ObjectInfo, error) {
	oi, err := m.Store.Stat(ctx, name)
	oi.Size++
	return oi, err
}

func (m *delMissing) Delete(ctx context.Context, name string) error {
	if _, err := m.Store.Stat(ctx, name); err != nil {
		return err
	}
	return m.Store.Delete(ctx, name)
}

func (m *listReversed) List(ctx context.Context, prefix string, fn func(bucket.ObjectInfo) error) error {
	var all []bucket.ObjectInfo
	if err := m.Store.List(ctx, prefix, func(oi bucket.ObjectInfo) error { all = append(all, oi); return nil }); err != nil {
		return err
	}
	slices.Reverse(all)
	for _, oi := range all {
		if err := fn(oi); err != nil {
			return err
		}
	}
	return nil
}

func (m *listLoose) List(ctx context.Context, prefix string, fn func(bucket.ObjectInfo) error) error {
	return m.Store.List(ctx, "", fn)
}

func (m *listNoStop) List(ctx context.Context, prefix string, fn func(bucket.ObjectInfo) error) error {
	return m.Store.List(ctx, prefix, func(oi bucket.ObjectInfo) error { fn(oi); return nil })
}

func (m *createPuts) Create(ctx context.Context, name string, r io.Reader, size int64) error {
	return m.Store.Put(ctx, name, r, size)
}

func (m *createRacy) Create(ctx context.Context, name string, r io.Reader, size int64) error {
	if _, err := m.Store.Stat(ctx, name); err == nil {
		return &bucket.Error{Op: "create", Name: name, Location: m.Location(), Err: dotmesh.ErrAlreadyExists}
	}
	time.Sleep(20 * time.Millisecond)
	return m.Store.Put(ctx, name, r, size)
}

// putInPlace writes an object in two steps, as a non-atomic store would.
func (m *putInPlace) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	b, _ := io.ReadAll(r)
	if err := m.Store.Put(ctx, name, bytes.NewReader(b[:len(b)/2]), int64(len(b)/2)); err != nil {
		return err
	}
	time.Sleep(time.Millisecond)
	return m.Store.Put(ctx, name, bytes.NewReader(b), int64(len(b)))
}

func (m *truncating) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	if size > 16<<20 {
		io.Copy(io.Discard, r)
		return m.Store.Put(ctx, name, bytes.NewReader(make([]byte, 16<<20)), 16<<20)
	}
	return m.Store.Put(ctx, name, r, size)
}

func (m *rangeIgnored) Get(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	return m.Store.Get(ctx, name, 0, -1)
}

func (m *padShort) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	return m.Store.Put(ctx, name, io.MultiReader(r, bytes.NewReader(make([]byte, max(size, 0)))), size)
}

func (m *ignoreCtx) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	return m.Store.Put(context.Background(), name, r, size)
}

var mutants = []struct {
	name, test string
	build      func(bucket.Store) bucket.Store
}{
	{"GetMissingWrongError", "Missing", func(s bucket.Store) bucket.Store { return &getWrongErr{base{s}} }},
	{"StatWrongSize", "PutGet", func(s bucket.Store) bucket.Store { return &statWrongSz{base{s}} }},
	{"DeleteMissingFails", "Delete", func(s bucket.Store) bucket.Store { return &delMissing{base{s}} }},
	{"ListUnsorted", "ListOrder", func(s bucket.Store) bucket.Store { return &listReversed{base{s}} }},
	{"ListIgnoresPrefix", "ListPrefix", func(s bucket.Store) bucket.Store { return &listLoose{base{s}} }},
	{"ListIgnoresFnError", "ListStops", func(s bucket.Store) bucket.Store { return &listNoStop{base{s}} }},
	{"CreateOverwrites", "Create", func(s bucket.Store) bucket.Store { return &createPuts{base{s}} }},
	{"CreateCheckThenPut", "CreateRace", func(s bucket.Store) bucket.Store { return &createRacy{base{s}} }},
	{"PutInTwoSteps", "OverwriteAtomic", func(s bucket.Store) bucket.Store { return &putInPlace{base{s}} }},
	{"TruncatesLarge", "Large", func(s bucket.Store) bucket.Store { return &truncating{base{s}} }},
	{"RangeIgnored", "Ranges", func(s bucket.Store) bucket.Store { return &rangeIgnored{base{s}} }},
	{"ShortReaderPadded", "ShortReader", func(s bucket.Store) bucket.Store { return &padShort{base{s}} }},
	{"IgnoresContext", "Cancel", func(s bucket.Store) bucket.Store { return &ignoreCtx{base{s}} }},
}

func TestMutantsAreCaught(t *testing.T) {
	if os.Getenv(mutantEnv) != "" {
		t.Skip("inside a mutant child process")
	}
	for _, m := range mutants {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run", fmt.Sprintf("^TestMutantChild$/^%s$", m.test), "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), mutantEnv+"="+m.name)
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), "--- FAIL: TestMutantChild/"+m.test+" ") {
				t.Errorf("suite subtest %s did not fail with mutant %s (exit: %v):\n%s", m.test, m.name, err, out)
			}
		})
	}
}

func TestMutantChild(t *testing.T) {
	name := os.Getenv(mutantEnv)
	if name == "" {
		t.Skip("only run by TestMutantsAreCaught")
	}
	i := slices.IndexFunc(mutants, func(m struct {
		name, test string
		build      func(bucket.Store) bucket.Store
	}) bool {
		return m.name == name
	})
	if i < 0 {
		t.Fatalf("unknown mutant %q", name)
	}
	buckettest.Run(t, func(t *testing.T) bucket.Store {
		s, err := bucket.OpenDir(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return mutants[i].build(s)
	}, buckettest.Options{})
}
