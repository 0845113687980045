package bucket_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/bucket"
	"github.com/dotmesh-io/dotmesh/bucket/buckettest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// flaky injects failures into a real store: each operation named in
// fails fails with ErrUnavailable that many times first, after reading
// part of a Put's reader (as a dropped upload does).
type flaky struct {
	bucket.Store
	mu    sync.Mutex
	fails map[string]int
	calls map[string]int
	// listFailAfter makes List fail once after delivering that many objects.
	listFailAfter int
}

func newFlaky(s bucket.Store, fails map[string]int) *flaky {
	return &flaky{Store: s, fails: fails, calls: map[string]int{}, listFailAfter: -1}
}

func (f *flaky) fail(op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[op]++
	if f.fails[op] > 0 {
		f.fails[op]--
		return &bucket.Error{Op: op, Location: f.Location(), Err: fmt.Errorf("%w: injected", dotmesh.ErrUnavailable)}
	}
	return nil
}

func (f *flaky) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	if err := f.fail("put"); err != nil {
		io.CopyN(io.Discard, r, size/2)
		return err
	}
	return f.Store.Put(ctx, name, r, size)
}

func (f *flaky) Create(ctx context.Context, name string, r io.Reader, size int64) error {
	if err := f.fail("create"); err != nil {
		// The create reached the store, but its answer was lost.
		f.Store.Create(ctx, name, r, size)
		return err
	}
	return f.Store.Create(ctx, name, r, size)
}

func (f *flaky) Get(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	if err := f.fail("get"); err != nil {
		return nil, err
	}
	return f.Store.Get(ctx, name, off, length)
}

func (f *flaky) Stat(ctx context.Context, name string) (bucket.ObjectInfo, error) {
	if err := f.fail("stat"); err != nil {
		return bucket.ObjectInfo{}, err
	}
	return f.Store.Stat(ctx, name)
}

func (f *flaky) List(ctx context.Context, prefix string, fn func(bucket.ObjectInfo) error) error {
	f.fail("list")
	n := 0
	err := f.Store.List(ctx, prefix, func(oi bucket.ObjectInfo) error {
		f.mu.Lock()
		stop := f.listFailAfter >= 0 && n == f.listFailAfter
		if stop {
			f.listFailAfter = -1
		}
		f.mu.Unlock()
		if stop {
			return &bucket.Error{Op: "list", Location: f.Location(), Err: fmt.Errorf("%w: injected", dotmesh.ErrUnavailable)}
		}
		n++
		return fn(oi)
	})
	return err
}

func (f *flaky) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

var fastRetry = bucket.RetryOptions{Attempts: 4, Base: time.Millisecond, Max: 5 * time.Millisecond}

// The decorated stores still conform: every decorator together.
func TestDecoratedConformance(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug}))
	buckettest.Run(t, func(t *testing.T) bucket.Store {
		return bucket.WithRetry(bucket.WithLogging(bucket.WithLimit(openDir(t), 4), log), fastRetry)
	}, buckettest.Options{})
}

func TestRetryCuresUnavailable(t *testing.T) {
	ctx := context.Background()
	f := newFlaky(openDir(t), map[string]int{"put": 2, "get": 3, "stat": 1})
	s := bucket.WithRetry(f, fastRetry)
	// A plain reader (no Seek) is buffered and put again whole.
	body := bytes.Repeat([]byte("x"), 1000)
	if err := s.Put(ctx, "o", io.MultiReader(bytes.NewReader(body)), 1000); err != nil {
		t.Fatalf("Put after two failures: %v", err)
	}
	if f.count("put") != 3 {
		t.Fatalf("Put tried %d times, want 3", f.count("put"))
	}
	rc, err := s.Get(ctx, "o", 0, -1)
	if err != nil {
		t.Fatalf("Get after three failures: %v", err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, body) {
		t.Fatalf("Get gave %d bytes, want the 1000 put", len(got))
	}
	if _, err := s.Stat(ctx, "o"); err != nil {
		t.Fatal(err)
	}
}

func TestRetryRewindsSeekers(t *testing.T) {
	ctx := context.Background()
	f := newFlaky(openDir(t), map[string]int{"put": 2})
	s := bucket.WithRetry(f, bucket.RetryOptions{Attempts: 4, Base: time.Millisecond, MaxBuffer: 10})
	body := bytes.Repeat([]byte("0123456789"), 100)
	r := bytes.NewReader(append([]byte("skip"), body...))
	r.Seek(4, io.SeekStart) // a reader positioned past its start is rewound to there
	if err := s.Put(ctx, "o", r, int64(len(body))); err != nil {
		t.Fatal(err)
	}
	rc, _ := s.Get(ctx, "o", 0, -1)
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, body) {
		t.Fatal("the rewound Put stored other bytes")
	}
}

func TestRetryGivesUp(t *testing.T) {
	ctx := context.Background()
	f := newFlaky(openDir(t), map[string]int{"stat": 10, "put": 10})
	s := bucket.WithRetry(f, fastRetry)
	_, err := s.Stat(ctx, "o")
	if !errors.Is(err, dotmesh.ErrUnavailable) || !strings.Contains(err.Error(), "gave up after 4 attempts") || f.count("stat") != 4 {
		t.Fatalf("Stat failing always: %v after %d calls, want ErrUnavailable after 4", err, f.count("stat"))
	}
	// A reader that is neither seekable nor small is tried once.
	s = bucket.WithRetry(f, bucket.RetryOptions{Attempts: 4, Base: time.Millisecond, MaxBuffer: 10})
	err = s.Put(ctx, "o", io.MultiReader(strings.NewReader("more than ten bytes")), 19)
	if !errors.Is(err, dotmesh.ErrUnavailable) || f.count("put") != 1 {
		t.Fatalf("Put of an unrepeatable reader: %v after %d calls, want one try", err, f.count("put"))
	}
	// Other errors are not retried.
	f2 := newFlaky(openDir(t), nil)
	s = bucket.WithRetry(f2, fastRetry)
	if _, err := s.Stat(ctx, "missing"); !errors.Is(err, dotmesh.ErrNotFound) || f2.count("stat") != 1 {
		t.Fatalf("Stat of a missing object: %v after %d calls, want ErrNotFound at once", err, f2.count("stat"))
	}
}

func TestRetryHonoursContext(t *testing.T) {
	f := newFlaky(openDir(t), map[string]int{"stat": 1000})
	s := bucket.WithRetry(f, bucket.RetryOptions{Attempts: 1000, Base: 50 * time.Millisecond, Max: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.Stat(ctx, "o")
	if !errors.Is(err, dotmesh.ErrUnavailable) || time.Since(start) > 2*time.Second {
		t.Fatalf("Stat under a 200ms deadline: %v after %v", err, time.Since(start))
	}
	if n := f.count("stat"); n > 10 {
		t.Fatalf("%d attempts in 200ms: the backoff does not back off", n)
	}
}

func TestRetryCreateAmbiguous(t *testing.T) {
	ctx := context.Background()
	f := newFlaky(openDir(t), map[string]int{"create": 1})
	s := bucket.WithRetry(f, fastRetry)
	err := s.Create(ctx, "lock", strings.NewReader("mine"), 4)
	if !errors.Is(err, dotmesh.ErrAlreadyExists) || !strings.Contains(err.Error(), "may have created it") {
		t.Fatalf("Create whose first answer was lost: %v, want ErrAlreadyExists saying it may be its own", err)
	}
}

func TestRetryListResumes(t *testing.T) {
	ctx := context.Background()
	dir := openDir(t)
	var want []string
	for i := range 10 {
		n := fmt.Sprintf("o%02d", i)
		want = append(want, n)
		dir.Put(ctx, n, strings.NewReader("x"), 1)
	}
	f := newFlaky(dir, nil)
	f.listFailAfter = 4
	var got []string
	err := bucket.WithRetry(f, fastRetry).List(ctx, "", func(oi bucket.ObjectInfo) error {
		got = append(got, oi.Name)
		return nil
	})
	if err != nil || !slices.Equal(got, want) || f.count("list") != 2 {
		t.Fatalf("List failing after 4: %v, %v after %d listings; want each object once, in order", err, got, f.count("list"))
	}
}

// slow holds each Put until released, counting how many run at once.
type slow struct {
	bucket.Store
	running, peak atomic.Int32
	release       chan struct{}
}

func (s *slow) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	n := s.running.Add(1)
	defer s.running.Add(-1)
	for {
		p := s.peak.Load()
		if n <= p || s.peak.CompareAndSwap(p, n) {
			break
		}
	}
	<-s.release
	return s.Store.Put(ctx, name, r, size)
}

func TestLimit(t *testing.T) {
	ctx := context.Background()
	sl := &slow{Store: openDir(t), release: make(chan struct{})}
	s := bucket.WithLimit(sl, 3)
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() { s.Put(ctx, fmt.Sprintf("o%d", i), strings.NewReader("x"), 1) })
	}
	time.Sleep(100 * time.Millisecond)
	if n := sl.running.Load(); n != 3 {
		t.Fatalf("%d Puts run at once under a limit of 3", n)
	}
	close(sl.release)
	wg.Wait()
	if p := sl.peak.Load(); p != 3 {
		t.Fatalf("peak of %d Puts at once, want 3", p)
	}
	// A Get holds its turn until its reader is closed; a waiting call
	// gives up with its context.
	s = bucket.WithLimit(sl, 1)
	rc, err := s.Get(ctx, "o1", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := s.Stat(short, "o1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stat while the only turn is held: %v, want the deadline", err)
	}
	// List takes no turn: its fn may use the store.
	if err := s.List(ctx, "", func(bucket.ObjectInfo) error { return nil }); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	rc.Close() // a second Close gives nothing back twice
	if _, err := s.Stat(ctx, "o1"); err != nil {
		t.Fatalf("Stat after the reader was closed: %v", err)
	}
}

func TestLogging(t *testing.T) {
	ctx := context.Background()
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := bucket.WithLogging(openDir(t), log)
	s.Put(ctx, "o", strings.NewReader("hello"), 5)
	rc, _ := s.Get(ctx, "o", 0, -1)
	io.ReadAll(rc)
	rc.Close()
	s.Stat(ctx, "missing")
	s.Put(ctx, "bad name", strings.NewReader("x"), 1)
	out := buf.String()
	for _, want := range []string{
		"level=DEBUG msg=\"bucket: put\" size=5 op=put object=o",
		"level=DEBUG msg=\"bucket: get\" offset=0 read=5 op=get object=o",
		"level=DEBUG msg=\"bucket: stat\" op=stat object=missing",
		"level=WARN msg=\"bucket: put\" size=1 op=put object=\"bad name\"",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}
