package guard_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/dump"
	"github.com/dotmesh-io/dotmesh/backend/internal/guard"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// counting is a real backend (the dump backend, taken from behind its own
// guard) that counts the calls reaching it.
type counting struct {
	dotmesh.StorageBackend
	calls, closes atomic.Int32
}

func (c *counting) CreateBranch(ctx context.Context, b dotmesh.BranchRef, from *dotmesh.CommitRef) error {
	c.calls.Add(1)
	return c.StorageBackend.CreateBranch(ctx, b, from)
}
func (c *counting) DeleteBranch(ctx context.Context, b dotmesh.BranchRef) error {
	c.calls.Add(1)
	return c.StorageBackend.DeleteBranch(ctx, b)
}
func (c *counting) SubdotPath(ctx context.Context, b dotmesh.BranchRef, s string) (string, error) {
	c.calls.Add(1)
	return c.StorageBackend.SubdotPath(ctx, b, s)
}
func (c *counting) Usage(ctx context.Context, b dotmesh.BranchRef, head *dotmesh.CommitRef) (dotmesh.Usage, error) {
	c.calls.Add(1)
	return c.StorageBackend.Usage(ctx, b, head)
}
func (c *counting) Commit(ctx context.Context, r dotmesh.CommitRef) (map[string]string, error) {
	c.calls.Add(1)
	return c.StorageBackend.Commit(ctx, r)
}
func (c *counting) Commits(ctx context.Context, b dotmesh.BranchRef) ([]dotmesh.CommitID, error) {
	c.calls.Add(1)
	return c.StorageBackend.Commits(ctx, b)
}
func (c *counting) Rollback(ctx context.Context, b dotmesh.BranchRef, r dotmesh.CommitRef) error {
	c.calls.Add(1)
	return c.StorageBackend.Rollback(ctx, b, r)
}
func (c *counting) Send(ctx context.Context, t dotmesh.CommitRef, base *dotmesh.CommitRef, w io.Writer) error {
	c.calls.Add(1)
	return c.StorageBackend.Send(ctx, t, base, w)
}
func (c *counting) Receive(ctx context.Context, t dotmesh.CommitRef, base *dotmesh.CommitRef, r io.Reader) error {
	c.calls.Add(1)
	return c.StorageBackend.Receive(ctx, t, base, r)
}
func (c *counting) Close() error {
	c.closes.Add(1)
	return c.StorageBackend.Close()
}

func open(t *testing.T) (*guard.Backend, *counting) {
	t.Helper()
	d, err := dump.Open(t.TempDir(), dump.Options{})
	if err != nil {
		t.Fatal(err)
	}
	in := &counting{StorageBackend: d.Unwrap()}
	g := guard.New(in, guard.Options{})
	t.Cleanup(func() { g.Close() })
	return g, in
}

func TestInvalidArgumentsNeverReachTheBackend(t *testing.T) {
	ctx := context.Background()
	g, in := open(t)
	good := dotmesh.BranchRef{Dot: dotmesh.NewDotID(), Branch: "master"}
	if err := g.CreateBranch(ctx, good, nil); err != nil {
		t.Fatal(err)
	}
	goodC := dotmesh.CommitRef{BranchRef: good, ID: dotmesh.NewCommitID()}
	if _, err := g.Commit(ctx, goodC); err != nil {
		t.Fatal(err)
	}
	badDot := dotmesh.BranchRef{Dot: "../x", Branch: "master"}
	badBranch := dotmesh.BranchRef{Dot: good.Dot, Branch: "a/b"}
	badC := dotmesh.CommitRef{BranchRef: good, ID: "../x"}
	before := in.calls.Load()
	for name, call := range map[string]func() error{
		"CreateBranch bad dot":    func() error { return g.CreateBranch(ctx, badDot, nil) },
		"CreateBranch bad origin": func() error { return g.CreateBranch(ctx, good, &badC) },
		"DeleteBranch bad branch": func() error { return g.DeleteBranch(ctx, badBranch) },
		"SubdotPath bad subdot":   func() error { _, err := g.SubdotPath(ctx, good, "../x"); return err },
		"SubdotPath bad branch":   func() error { _, err := g.SubdotPath(ctx, badBranch, "db"); return err },
		"Usage bad head":          func() error { _, err := g.Usage(ctx, good, &badC); return err },
		"Commit bad id":           func() error { _, err := g.Commit(ctx, badC); return err },
		"Commits bad dot":         func() error { _, err := g.Commits(ctx, badDot); return err },
		"Rollback bad commit":     func() error { return g.Rollback(ctx, good, badC) },
		"Send bad base":           func() error { return g.Send(ctx, goodC, &badC, io.Discard) },
		"Receive bad target":      func() error { return g.Receive(ctx, badC, nil, bytes.NewReader(nil)) },
	} {
		err := call()
		if !errors.Is(err, dotmesh.ErrInvalidName) && !errors.Is(err, dotmesh.ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidName or ErrInvalidArgument", name, err)
		}
	}
	if n := in.calls.Load() - before; n != 0 {
		t.Fatalf("%d calls with invalid arguments reached the backend", n)
	}
	if _, err := g.SubdotPath(ctx, good, "db"); err != nil || in.calls.Load() != before+1 {
		t.Fatalf("a valid call did not reach the backend once: %v", err)
	}
}

func TestCheckRecords(t *testing.T) {
	dot := dotmesh.NewDotID()
	for _, tc := range []struct {
		dot  dotmesh.DotID
		recs map[string][]byte
		ok   bool
	}{
		{dot, map[string][]byte{"dot": []byte("x"), "branch.master": nil}, true},
		{"../x", map[string][]byte{"dot": []byte("x")}, false},
		{dot, map[string][]byte{"a/b": []byte("x")}, false},
		{dot, map[string][]byte{"dot": make([]byte, dotmesh.MaxRecordSize+1)}, false},
	} {
		if err := guard.CheckRecords(tc.dot, tc.recs); (err == nil) != tc.ok {
			t.Errorf("CheckRecords(%s, %d records): %v", tc.dot, len(tc.recs), err)
		}
	}
}

func TestCloseOnceWhenCalledTogether(t *testing.T) {
	g, in := open(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if err := g.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	wg.Wait()
	if n := in.closes.Load(); n != 1 {
		t.Fatalf("the backend was closed %d times", n)
	}
}

func TestLocksByDotOrBranch(t *testing.T) {
	dot := dotmesh.NewDotID()
	a := dotmesh.BranchRef{Dot: dot, Branch: "a"}
	b := dotmesh.BranchRef{Dot: dot, Branch: "b"}
	other := dotmesh.BranchRef{Dot: dotmesh.NewDotID(), Branch: "a"}
	blocks := func(l *guard.Locks, held, want dotmesh.BranchRef) bool {
		unlock := l.Lock(held)
		defer unlock()
		got := make(chan struct{})
		go func() { l.Lock(want)(); close(got) }()
		select {
		case <-got:
			return false
		case <-time.After(100 * time.Millisecond):
			return true // the goroutine gets the lock once unlock runs
		}
	}
	byBranch, byDot := guard.NewLocks(false), guard.NewLocks(true)
	if blocks(byBranch, a, b) || blocks(byBranch, a, other) || !blocks(byBranch, a, a) {
		t.Error("locks by branch: another branch waited, or the same branch did not")
	}
	if !blocks(byDot, a, b) || blocks(byDot, a, other) {
		t.Error("locks by dot: a branch of the same dot did not wait, or another dot's did")
	}
}

// countingTrees is the dump backend with its TreeReader, counting the
// tree reads that reach it.
type countingTrees struct {
	dotmesh.StorageBackend
	tr    dotmesh.TreeReader
	reads atomic.Int32
}

func (c *countingTrees) CommitTree(ctx context.Context, r dotmesh.CommitRef) ([]dotmesh.TreeEntry, error) {
	c.reads.Add(1)
	return c.tr.CommitTree(ctx, r)
}

func (c *countingTrees) ReadCommitFile(ctx context.Context, r dotmesh.CommitRef, p string, max int64) ([]byte, bool, error) {
	c.reads.Add(1)
	return c.tr.ReadCommitFile(ctx, r, p, max)
}

func TestTreeReaderChecksArguments(t *testing.T) {
	ctx := context.Background()
	d, err := dump.Open(t.TempDir(), dump.Options{})
	if err != nil {
		t.Fatal(err)
	}
	inner := d.Unwrap()
	in := &countingTrees{StorageBackend: inner, tr: inner.(dotmesh.TreeReader)}
	g := guard.New(in, guard.Options{})
	t.Cleanup(func() { g.Close() })
	tr := g.TreeReader()
	b := dotmesh.BranchRef{Dot: dotmesh.NewDotID(), Branch: "master"}
	if err := g.CreateBranch(ctx, b, nil); err != nil {
		t.Fatal(err)
	}
	p, err := g.SubdotPath(ctx, b, "db")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p, "f"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := dotmesh.CommitRef{BranchRef: b, ID: dotmesh.NewCommitID()}
	if _, err := g.Commit(ctx, c); err != nil {
		t.Fatal(err)
	}
	bad := dotmesh.CommitRef{BranchRef: b, ID: "../x"}
	for name, call := range map[string]func() error{
		"CommitTree bad commit":     func() error { _, err := tr.CommitTree(ctx, bad); return err },
		"ReadCommitFile bad commit": func() error { _, _, err := tr.ReadCommitFile(ctx, bad, "db/f", 1); return err },
		"ReadCommitFile ..":         func() error { _, _, err := tr.ReadCommitFile(ctx, c, "../f", 1); return err },
		"ReadCommitFile absolute":   func() error { _, _, err := tr.ReadCommitFile(ctx, c, "/db/f", 1); return err },
		"ReadCommitFile root":       func() error { _, _, err := tr.ReadCommitFile(ctx, c, "", 1); return err },
		"ReadCommitFile negative":   func() error { _, _, err := tr.ReadCommitFile(ctx, c, "db/f", -1); return err },
	} {
		err := call()
		if !errors.Is(err, dotmesh.ErrInvalidName) && !errors.Is(err, dotmesh.ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidName or ErrInvalidArgument", name, err)
		}
	}
	if n := in.reads.Load(); n != 0 {
		t.Fatalf("%d tree reads with invalid arguments reached the backend", n)
	}
	data, more, err := tr.ReadCommitFile(ctx, c, "db/f", 10)
	if err != nil || string(data) != "data" || more || in.reads.Load() != 1 {
		t.Fatalf("a valid read: %q, more %v, %v, %d reads reached the backend", data, more, err, in.reads.Load())
	}
}

// countingDiffs is the dump backend with its SourceDiffer, counting the
// calls that reach it.
type countingDiffs struct {
	dotmesh.StorageBackend
	sd    dotmesh.SourceDiffer
	calls atomic.Int32
}

func (c *countingDiffs) DatabaseSubdots(ctx context.Context, b dotmesh.BranchRef, r *dotmesh.CommitRef) (map[string]string, error) {
	c.calls.Add(1)
	return c.sd.DatabaseSubdots(ctx, b, r)
}

func (c *countingDiffs) SourceChanged(ctx context.Context, b dotmesh.BranchRef, subdot string, head dotmesh.CommitRef) (bool, error) {
	c.calls.Add(1)
	return c.sd.SourceChanged(ctx, b, subdot, head)
}

func (c *countingDiffs) DiffDatabase(ctx context.Context, subdot string, from, to dotmesh.DatabaseSide, opts dotmesh.RowDiffOptions) (*dotmesh.DatabaseDiff, error) {
	c.calls.Add(1)
	return c.sd.DiffDatabase(ctx, subdot, from, to, opts)
}

func TestSourceDifferChecksArguments(t *testing.T) {
	ctx := context.Background()
	d, err := dump.Open(t.TempDir(), dump.Options{})
	if err != nil {
		t.Fatal(err)
	}
	inner := d.Unwrap()
	in := &countingDiffs{StorageBackend: inner, sd: inner.(dotmesh.SourceDiffer)}
	g := guard.New(in, guard.Options{})
	t.Cleanup(func() { g.Close() })
	sd := g.SourceDiffer()
	b := dotmesh.BranchRef{Dot: dotmesh.NewDotID(), Branch: "master"}
	if err := g.CreateBranch(ctx, b, nil); err != nil {
		t.Fatal(err)
	}
	c := dotmesh.CommitRef{BranchRef: b, ID: dotmesh.NewCommitID()}
	if _, err := g.Commit(ctx, c); err != nil {
		t.Fatal(err)
	}
	bad := dotmesh.CommitRef{BranchRef: b, ID: "../x"}
	badBranch := dotmesh.BranchRef{Dot: b.Dot, Branch: "../x"}
	ok := dotmesh.DatabaseSide{Commit: &c}
	for name, call := range map[string]func() error{
		"DatabaseSubdots bad commit": func() error { _, err := sd.DatabaseSubdots(ctx, b, &bad); return err },
		"DatabaseSubdots bad branch": func() error { _, err := sd.DatabaseSubdots(ctx, badBranch, nil); return err },
		"SourceChanged bad subdot":   func() error { _, err := sd.SourceChanged(ctx, b, "../db", c); return err },
		"SourceChanged bad head":     func() error { _, err := sd.SourceChanged(ctx, b, "db", bad); return err },
		"DiffDatabase bad subdot": func() error {
			_, err := sd.DiffDatabase(ctx, "a/b", ok, ok, dotmesh.RowDiffOptions{})
			return err
		},
		"DiffDatabase bad commit": func() error {
			_, err := sd.DiffDatabase(ctx, "db", ok, dotmesh.DatabaseSide{Commit: &bad}, dotmesh.RowDiffOptions{})
			return err
		},
		"DiffDatabase bad branch": func() error {
			_, err := sd.DiffDatabase(ctx, "db", dotmesh.DatabaseSide{Live: &badBranch}, ok, dotmesh.RowDiffOptions{})
			return err
		},
		"DiffDatabase both": func() error {
			_, err := sd.DiffDatabase(ctx, "db", dotmesh.DatabaseSide{Commit: &c, Live: &b}, ok, dotmesh.RowDiffOptions{})
			return err
		},
		"DiffDatabase negative": func() error {
			_, err := sd.DiffDatabase(ctx, "db", ok, ok, dotmesh.RowDiffOptions{Rows: true, MaxRows: -1})
			return err
		},
	} {
		err := call()
		if !errors.Is(err, dotmesh.ErrInvalidName) && !errors.Is(err, dotmesh.ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidName or ErrInvalidArgument", name, err)
		}
	}
	if n := in.calls.Load(); n != 0 {
		t.Fatalf("%d calls with invalid arguments reached the backend", n)
	}
	subs, err := sd.DatabaseSubdots(ctx, b, &c)
	if err != nil || len(subs) != 0 || in.calls.Load() != 1 {
		t.Fatalf("a valid call: %v, %v, %d calls reached the backend", subs, err, in.calls.Load())
	}
	if _, err := sd.DiffDatabase(ctx, "db", ok, ok, dotmesh.RowDiffOptions{}); !errors.Is(err, dotmesh.ErrNotFound) {
		t.Fatalf("a subdot that is no database: %v, want ErrNotFound", err)
	}
}
