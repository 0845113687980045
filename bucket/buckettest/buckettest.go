// Package buckettest is the conformance suite for bucket.Store.
//
// Every kind runs it from its own package:
//
//	func TestConformance(t *testing.T) {
//		buckettest.Run(t, func(t *testing.T) bucket.Store {
//			return openAnEmptyStore(t)
//		}, buckettest.Options{})
//	}
//
// Each call of open returns a fresh, empty store (a new directory, a new
// prefix of a bucket); the suite closes it when the subtest ends.
package buckettest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/bucket"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Options adapt the suite to a kind.
type Options struct {
	// LargeSize is the size of the large-object test (default 40 MiB,
	// past the S3 kind's multipart part size).
	LargeSize int64
}

type fixture struct {
	t   *testing.T
	s   bucket.Store
	ctx context.Context
	o   Options
}

// Run runs the suite against stores made by open.
func Run(t *testing.T, open func(t *testing.T) bucket.Store, o Options) {
	t.Helper()
	if o.LargeSize == 0 {
		o.LargeSize = 40 << 20
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { s.Close() })
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			tc.fn(&fixture{t: t, s: s, ctx: ctx, o: o})
		})
	}
}

var tests = []struct {
	name string
	fn   func(f *fixture)
}{
	{"PutGet", testPutGet},
	{"Empty", testEmpty},
	{"Overwrite", testOverwrite},
	{"Ranges", testRanges},
	{"Missing", testMissing},
	{"Delete", testDelete},
	{"ListOrder", testListOrder},
	{"ListPrefix", testListPrefix},
	{"ListStops", testListStops},
	{"Create", testCreate},
	{"CreateRace", testCreateRace},
	{"OverwriteAtomic", testOverwriteAtomic},
	{"Large", testLarge},
	{"ShortReader", testShortReader},
	{"Cancel", testCancel},
	{"Names", testNames},
}

func (f *fixture) put(name string, data []byte) {
	f.t.Helper()
	if err := f.s.Put(f.ctx, name, bytes.NewReader(data), int64(len(data))); err != nil {
		f.t.Fatalf("Put %s: %v", name, err)
	}
}

func (f *fixture) get(name string, off, length int64) ([]byte, error) {
	f.t.Helper()
	rc, err := f.s.Get(f.ctx, name, off, length)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func (f *fixture) mustGet(name string, off, length int64) []byte {
	f.t.Helper()
	b, err := f.get(name, off, length)
	if err != nil {
		f.t.Fatalf("Get %s [%d,%d]: %v", name, off, length, err)
	}
	return b
}

func (f *fixture) names(prefix string) []string {
	f.t.Helper()
	var got []string
	if err := f.s.List(f.ctx, prefix, func(oi bucket.ObjectInfo) error {
		got = append(got, oi.Name)
		return nil
	}); err != nil {
		f.t.Fatalf("List %q: %v", prefix, err)
	}
	return got
}

func (f *fixture) wantErr(what string, err, sentinel error) {
	f.t.Helper()
	if !errors.Is(err, sentinel) {
		f.t.Fatalf("%s: got error %v, want one wrapping %q", what, err, sentinel)
	}
	var be *bucket.Error
	if !errors.As(err, &be) {
		f.t.Fatalf("%s: error %v is no *bucket.Error naming the operation and object", what, err)
	}
	if be.Location != f.s.Location() {
		f.t.Fatalf("%s: error names store %q, want %q", what, be.Location, f.s.Location())
	}
}

func (f *fixture) wantMissing(name string) {
	f.t.Helper()
	_, err := f.s.Stat(f.ctx, name)
	f.wantErr("Stat "+name, err, dotmesh.ErrNotFound)
}

func data(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func testPutGet(f *fixture) {
	want := data(3000, 1)
	before := time.Now().Add(-time.Hour)
	f.put("a/b/c", want)
	if got := f.mustGet("a/b/c", 0, -1); !bytes.Equal(got, want) {
		f.t.Fatalf("Get gave %d bytes, want the %d put", len(got), len(want))
	}
	oi, err := f.s.Stat(f.ctx, "a/b/c")
	if err != nil {
		f.t.Fatal(err)
	}
	if oi.Name != "a/b/c" || oi.Size != 3000 || oi.Modified.Before(before) || oi.Modified.After(time.Now().Add(time.Hour)) {
		f.t.Fatalf("Stat = %+v, want name a/b/c, size 3000, modified about now", oi)
	}
	if f.s.Location() == "" {
		f.t.Fatal("Location is empty")
	}
}

func testEmpty(f *fixture) {
	f.put("empty", nil)
	if got := f.mustGet("empty", 0, -1); len(got) != 0 {
		f.t.Fatalf("Get of an empty object gave %d bytes", len(got))
	}
	if oi, err := f.s.Stat(f.ctx, "empty"); err != nil || oi.Size != 0 {
		f.t.Fatalf("Stat = %+v, %v; want size 0", oi, err)
	}
	if got := f.mustGet("empty", 0, 0); len(got) != 0 {
		f.t.Fatalf("Get of 0 bytes gave %d", len(got))
	}
}

func testOverwrite(f *fixture) {
	f.put("x", data(5000, 1))
	second := data(700, 2)
	f.put("x", second)
	if got := f.mustGet("x", 0, -1); !bytes.Equal(got, second) {
		f.t.Fatalf("after overwrite Get gave %d bytes, want the second object's %d", len(got), len(second))
	}
	if oi, _ := f.s.Stat(f.ctx, "x"); oi.Size != 700 {
		f.t.Fatalf("Stat size %d after overwrite, want 700", oi.Size)
	}
}

func testRanges(f *fixture) {
	d := data(1000, 3)
	f.put("r", d)
	for _, c := range []struct{ off, length int64 }{{0, 10}, {990, 10}, {500, -1}, {1, 998}, {999, 1}, {0, 1000}, {0, -1}, {1000, 0}, {1000, -1}} {
		want := d[c.off:]
		if c.length >= 0 {
			want = d[c.off : c.off+c.length]
		}
		if got := f.mustGet("r", c.off, c.length); !bytes.Equal(got, want) {
			f.t.Fatalf("Get [%d,%d] gave %d bytes that differ from the %d wanted", c.off, c.length, len(got), len(want))
		}
	}
	// A read past the end: the object is shorter than its reader expects.
	for _, c := range []struct{ off, length int64 }{{995, 10}, {0, 1001}, {2000, 5}, {2000, -1}} {
		_, err := f.get("r", c.off, c.length)
		if !errors.Is(err, dotmesh.ErrCorrupt) {
			f.t.Fatalf("Get [%d,%d] of a 1000-byte object: got %v, want ErrCorrupt", c.off, c.length, err)
		}
	}
	_, err := f.s.Get(f.ctx, "r", -1, 5)
	f.wantErr("Get at offset -1", err, dotmesh.ErrInvalidArgument)
}

func testMissing(f *fixture) {
	_, err := f.s.Get(f.ctx, "no/such", 0, -1)
	f.wantErr("Get of a missing object", err, dotmesh.ErrNotFound)
	var be *bucket.Error
	if errors.As(err, &be); be.Op != "get" || be.Name != "no/such" {
		f.t.Fatalf("error %+v: want op get and object no/such", be)
	}
	_, err = f.s.Get(f.ctx, "no/such", 0, 0)
	f.wantErr("Get of 0 bytes of a missing object", err, dotmesh.ErrNotFound)
	_, err = f.s.Get(f.ctx, "no/such", 3, 5)
	f.wantErr("Get of a range of a missing object", err, dotmesh.ErrNotFound)
	f.wantMissing("no/such")
	f.put("no/other", []byte("x"))
	f.wantMissing("no") // a "directory" is no object
	_, err = f.s.Get(f.ctx, "no", 0, -1)
	f.wantErr("Get of a prefix", err, dotmesh.ErrNotFound)
}

func testDelete(f *fixture) {
	f.put("d/1", []byte("one"))
	f.put("d/2", []byte("two"))
	if err := f.s.Delete(f.ctx, "d/1"); err != nil {
		f.t.Fatal(err)
	}
	f.wantMissing("d/1")
	if err := f.s.Delete(f.ctx, "d/1"); err != nil {
		f.t.Fatalf("Delete of a missing object: %v, want nil", err)
	}
	if err := f.s.Delete(f.ctx, "never/was"); err != nil {
		f.t.Fatalf("Delete of a never-written object: %v, want nil", err)
	}
	if got := f.names(""); !slices.Equal(got, []string{"d/2"}) {
		f.t.Fatalf("List after delete = %v, want [d/2]", got)
	}
}

var listNames = []string{"b/x", "b.y", "b-z", "c/d/e", "c/d2", "c0", "a", "c/d3/f/g", "B"}

func (f *fixture) putListNames() map[string]int {
	sizes := map[string]int{}
	for i, n := range listNames {
		f.put(n, data(i*7, uint64(i)))
		sizes[n] = i * 7
	}
	return sizes
}

func testListOrder(f *fixture) {
	sizes := f.putListNames()
	var got []bucket.ObjectInfo
	if err := f.s.List(f.ctx, "", func(oi bucket.ObjectInfo) error { got = append(got, oi); return nil }); err != nil {
		f.t.Fatal(err)
	}
	want := slices.Sorted(slices.Values(listNames))
	var names []string
	for _, oi := range got {
		names = append(names, oi.Name)
		if int(oi.Size) != sizes[oi.Name] || oi.Modified.IsZero() {
			f.t.Fatalf("List gave %+v, want size %d and a time", oi, sizes[oi.Name])
		}
	}
	if !slices.Equal(names, want) {
		f.t.Fatalf("List = %v, want byte order %v", names, want)
	}
}

func testListPrefix(f *fixture) {
	f.putListNames()
	for prefix, want := range map[string][]string{
		"c/":        {"c/d/e", "c/d2", "c/d3/f/g"},
		"c/d":       {"c/d/e", "c/d2", "c/d3/f/g"},
		"c/d/":      {"c/d/e"},
		"c":         {"c/d/e", "c/d2", "c/d3/f/g", "c0"},
		"b":         {"b-z", "b.y", "b/x"},
		"c/d3/f/g":  {"c/d3/f/g"},
		"nothing/":  nil,
		"c/d3/f/g/": nil,
		"a/":        nil,
		"z":         nil,
	} {
		if got := f.names(prefix); !slices.Equal(got, want) {
			f.t.Fatalf("List %q = %v, want %v", prefix, got, want)
		}
	}
}

func testListStops(f *fixture) {
	f.putListNames()
	stop := errors.New("enough")
	calls := 0
	err := f.s.List(f.ctx, "", func(bucket.ObjectInfo) error { calls++; return stop })
	if err != stop || calls != 1 {
		f.t.Fatalf("List whose fn fails: err %v after %d calls, want fn's error after 1", err, calls)
	}
}

func testCreate(f *fixture) {
	err := f.s.Create(f.ctx, "lock/1", strings.NewReader("first"), 5)
	if err != nil {
		f.t.Fatalf("Create of a new object: %v", err)
	}
	err = f.s.Create(f.ctx, "lock/1", strings.NewReader("second"), 6)
	f.wantErr("Create of an existing object", err, dotmesh.ErrAlreadyExists)
	if got := f.mustGet("lock/1", 0, -1); string(got) != "first" {
		f.t.Fatalf("a lost Create changed the object to %q", got)
	}
	if err := f.s.Delete(f.ctx, "lock/1"); err != nil {
		f.t.Fatal(err)
	}
	if err := f.s.Create(f.ctx, "lock/1", strings.NewReader("third"), 5); err != nil {
		f.t.Fatalf("Create after Delete: %v", err)
	}
	if got := f.names("lock/"); !slices.Equal(got, []string{"lock/1"}) {
		f.t.Fatalf("List after Create = %v, want only lock/1 (no temporary objects)", got)
	}
}

func testCreateRace(f *fixture) {
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			body := fmt.Sprintf("writer %d", i)
			errs[i] = f.s.Create(f.ctx, "ref", strings.NewReader(body), int64(len(body)))
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			f.t.Fatalf("both writer %d and writer %d created the object", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, dotmesh.ErrAlreadyExists):
			f.t.Fatalf("writer %d: %v, want nil or ErrAlreadyExists", i, err)
		}
	}
	if winner < 0 {
		f.t.Fatal("no writer created the object")
	}
	if got := string(f.mustGet("ref", 0, -1)); got != fmt.Sprintf("writer %d", winner) {
		f.t.Fatalf("object holds %q, want the winner's (writer %d)", got, winner)
	}
}

func testOverwriteAtomic(f *fixture) {
	const size = 256 << 10
	fill := func(c byte) []byte { return bytes.Repeat([]byte{c}, size) }
	f.put("obj", fill('a'))
	ctx, cancel := context.WithCancel(f.ctx)
	defer cancel()
	var wg sync.WaitGroup
	var bad error
	var mu sync.Mutex
	for range 2 {
		wg.Go(func() {
			for ctx.Err() == nil {
				b, err := f.get("obj", 0, -1)
				if err == nil && (len(b) != size || bytes.Count(b, b[:1]) != size) {
					err = fmt.Errorf("a reader saw %d bytes, not one whole object of %d", len(b), size)
				}
				if err != nil && ctx.Err() == nil {
					mu.Lock()
					bad = err
					mu.Unlock()
					cancel()
				}
			}
		})
	}
	for i := range 20 {
		if err := f.s.Put(f.ctx, "obj", bytes.NewReader(fill("bc"[i%2])), size); err != nil {
			f.t.Fatal(err)
		}
	}
	cancel()
	wg.Wait()
	if bad != nil {
		f.t.Fatal(bad)
	}
}

// patternReader yields size pseudo-random bytes and cannot seek, as a
// stream being encrypted would.
type patternReader struct {
	r    *rand.ChaCha8
	left int64
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	b = b[:min(int64(len(b)), p.left)]
	p.r.Read(b)
	p.left -= int64(len(b))
	return len(b), nil
}

func testLarge(f *fixture) {
	size := f.o.LargeSize
	seed := [32]byte{7}
	h := sha256.New()
	io.Copy(h, &patternReader{rand.NewChaCha8(seed), size})
	want := h.Sum(nil)
	if err := f.s.Put(f.ctx, "big", &patternReader{rand.NewChaCha8(seed), size}, size); err != nil {
		f.t.Fatalf("Put of %d bytes: %v", size, err)
	}
	rc, err := f.s.Get(f.ctx, "big", 0, -1)
	if err != nil {
		f.t.Fatal(err)
	}
	h.Reset()
	n, err := io.Copy(h, rc)
	rc.Close()
	if err != nil || n != size || !bytes.Equal(h.Sum(nil), want) {
		f.t.Fatalf("Get of the large object: %d bytes, err %v, same content %v", n, err, bytes.Equal(h.Sum(nil), want))
	}
	// A range across the middle matches the stream.
	all := make([]byte, size)
	(&patternReader{rand.NewChaCha8(seed), size}).Read(all)
	off := size/2 - 1000
	if got := f.mustGet("big", off, 5000); !bytes.Equal(got, all[off:off+5000]) {
		f.t.Fatal("a range of the large object differs from what was put")
	}
	if oi, err := f.s.Stat(f.ctx, "big"); err != nil || oi.Size != size {
		f.t.Fatalf("Stat = %+v, %v; want size %d", oi, err, size)
	}
}

func testShortReader(f *fixture) {
	err := f.s.Put(f.ctx, "short", strings.NewReader("only this"), 100)
	f.wantErr("Put whose reader is shorter than its size", err, dotmesh.ErrInvalidArgument)
	f.wantMissing("short")
	f.put("short", []byte("whole"))
	err = f.s.Put(f.ctx, "short", strings.NewReader("only this"), 100)
	f.wantErr("Put over an object with a short reader", err, dotmesh.ErrInvalidArgument)
	if got := string(f.mustGet("short", 0, -1)); got != "whole" {
		f.t.Fatalf("a failed Put changed the object to %q", got)
	}
	failing := io.MultiReader(strings.NewReader("some"), errReader{})
	if err := f.s.Put(f.ctx, "short", failing, 100); !errors.Is(err, errBroken) {
		f.t.Fatalf("Put whose reader fails: %v, want the reader's error", err)
	}
	if got := string(f.mustGet("short", 0, -1)); got != "whole" {
		f.t.Fatalf("a failed Put changed the object to %q", got)
	}
}

var errBroken = errors.New("reader broke")

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errBroken }

// cancelReader cancels its context once half its data is read.
type cancelReader struct {
	r      io.Reader
	n, at  int
	cancel context.CancelFunc
}

func (c *cancelReader) Read(p []byte) (int, error) {
	if c.n >= c.at {
		c.cancel()
		time.Sleep(10 * time.Millisecond) // let the cancel reach the transfer
	}
	p = p[:min(len(p), 64<<10)]
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func testCancel(f *fixture) {
	done, cancel := context.WithCancel(f.ctx)
	cancel()
	if err := f.s.Put(done, "c", strings.NewReader("x"), 1); !errors.Is(err, context.Canceled) {
		f.t.Fatalf("Put with a cancelled context: %v, want context.Canceled", err)
	}
	f.wantMissing("c")
	f.put("c", []byte("old"))
	if _, err := f.s.Get(done, "c", 0, -1); !errors.Is(err, context.Canceled) {
		f.t.Fatalf("Get with a cancelled context: %v, want context.Canceled", err)
	}
	if err := f.s.List(done, "", func(bucket.ObjectInfo) error { return nil }); !errors.Is(err, context.Canceled) {
		f.t.Fatalf("List with a cancelled context: %v, want context.Canceled", err)
	}
	// Cancelled midway through a large Put: the old object stays whole.
	for _, size := range []int{1 << 20, 3 * (16 << 20)} {
		ctx, cancel := context.WithCancel(f.ctx)
		r := &cancelReader{r: bytes.NewReader(make([]byte, size)), at: size / 2, cancel: cancel}
		err := f.s.Put(ctx, "c", r, int64(size))
		cancel()
		if !errors.Is(err, context.Canceled) {
			f.t.Fatalf("Put of %d bytes cancelled midway: %v, want context.Canceled", size, err)
		}
		if got := string(f.mustGet("c", 0, -1)); got != "old" {
			f.t.Fatalf("a cancelled Put of %d bytes left %d bytes in place of the old object", size, len(got))
		}
	}
	if got := f.names(""); !slices.Equal(got, []string{"c"}) {
		f.t.Fatalf("List after cancelled Puts = %v, want [c]", got)
	}
}

var badNames = []string{"", "/a", "a/", "a//b", "../x", "x/..", ".hidden", "a/./b", "a b", "ä", "a\x00b", "a\\b", "a?b", strings.Repeat("n", bucket.MaxPartLen+1), strings.Repeat("n/", bucket.MaxNameLen/2) + "n"}

func testNames(f *fixture) {
	for _, n := range badNames {
		err := f.s.Put(f.ctx, n, strings.NewReader("x"), 1)
		f.wantErr(fmt.Sprintf("Put %q", n), err, dotmesh.ErrInvalidName)
		err = f.s.Create(f.ctx, n, strings.NewReader("x"), 1)
		f.wantErr(fmt.Sprintf("Create %q", n), err, dotmesh.ErrInvalidName)
		_, err = f.s.Get(f.ctx, n, 0, -1)
		f.wantErr(fmt.Sprintf("Get %q", n), err, dotmesh.ErrInvalidName)
		_, err = f.s.Stat(f.ctx, n)
		f.wantErr(fmt.Sprintf("Stat %q", n), err, dotmesh.ErrInvalidName)
		err = f.s.Delete(f.ctx, n)
		f.wantErr(fmt.Sprintf("Delete %q", n), err, dotmesh.ErrInvalidName)
	}
	for _, p := range []string{"/a", "a//", "../", ".x", "a b"} {
		err := f.s.List(f.ctx, p, func(bucket.ObjectInfo) error { return nil })
		f.wantErr(fmt.Sprintf("List %q", p), err, dotmesh.ErrInvalidName)
	}
	long := strings.Repeat("n", bucket.MaxPartLen)
	good := []string{"A-Z_a.z/0-9", "x", long + "/" + long[:250] + "/" + long[:bucket.MaxNameLen-bucket.MaxPartLen-252], "a.b/c..d/e-"}
	for _, n := range good {
		f.put(n, []byte(n[:1]))
	}
	if got := f.names(""); !slices.Equal(got, slices.Sorted(slices.Values(good))) {
		f.t.Fatalf("List = %v, want %v", got, good)
	}
}
