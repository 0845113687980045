package backendtest

import (
	"bytes"
	"errors"
	"io"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// lifecycleTests check what every backend does the same way, because each
// is opened behind one guard (backend/internal/guard): its capabilities
// are those of the backend behind it, and Close refuses every later call
// with one error after waiting for the calls in flight.
var lifecycleTests = []backendTest{
	{"CapabilitiesKept", testCapabilitiesKept},
	{"ClosedRefusesEveryCall", testClosedRefuses},
	{"CloseWaitsForCallsInFlight", testCloseWaits},
}

// capabilities are the optional interfaces of dotmesh that a backend may
// implement, by name.
var capabilities = map[string]func(any) bool{
	"GarbageCollector": func(b any) bool { _, ok := b.(dotmesh.GarbageCollector); return ok },
	"GarbagePlanner":   func(b any) bool { _, ok := b.(dotmesh.GarbagePlanner); return ok },
	"ReceiveDiscarder": func(b any) bool { _, ok := b.(dotmesh.ReceiveDiscarder); return ok },
	"Checker":          func(b any) bool { _, ok := b.(dotmesh.Checker); return ok },
	"Verifier":         func(b any) bool { _, ok := b.(dotmesh.Verifier); return ok },
	"ObjectNegotiator": func(b any) bool { _, ok := b.(dotmesh.ObjectNegotiator); return ok },
	"RecordKeeper":     func(b any) bool { _, ok := b.(dotmesh.RecordKeeper); return ok },
	"SourceManager":    func(b any) bool { _, ok := b.(dotmesh.SourceManager); return ok },
	"DirtyChecker":     func(b any) bool { _, ok := b.(dotmesh.DirtyChecker); return ok },
	"HeadFollower":     func(b any) bool { _, ok := b.(dotmesh.HeadFollower); return ok },
	"TreeReader":       func(b any) bool { _, ok := b.(dotmesh.TreeReader); return ok },
	"TreeFileOpener":   func(b any) bool { _, ok := b.(dotmesh.TreeFileOpener); return ok },
	"CommitViewer":     func(b any) bool { _, ok := b.(dotmesh.CommitViewer); return ok },
	"SourceDiffer":     func(b any) bool { _, ok := b.(dotmesh.SourceDiffer); return ok },
	"InodeKeeper":      func(b any) bool { _, ok := b.(dotmesh.InodeKeeper); return ok },

	"WorkingStateAdopter": func(b any) bool { _, ok := b.(dotmesh.WorkingStateAdopter); return ok },
}

// testCapabilitiesKept: a wrapped backend (one with Unwrap) has exactly
// the optional interfaces of the backend it wraps: none hidden, none
// faked.
func testCapabilitiesKept(f *fixture) {
	w, ok := f.be.(interface{ Unwrap() dotmesh.StorageBackend })
	if !ok {
		f.t.Logf("backend %s wraps nothing: no capabilities to compare", f.be.Name())
		return
	}
	inner := w.Unwrap()
	for name, has := range capabilities {
		if has(inner) != has(f.be) {
			f.t.Errorf("capability %s: the backend behind the wrapper has it: %v, the wrapper: %v", name, has(inner), has(f.be))
		}
	}
}

// testClosedRefuses: after Close every call, of StorageBackend and of each
// capability the backend has, fails with one error wrapping
// ErrUnavailable; Close again returns nil.
func testClosedRefuses(f *fixture) {
	b := f.newBranch()
	c := f.commit(b)
	f.fatalIf(f.be.Close(), "Close")
	ctx, be := f.ctx, f.be
	calls := map[string]func() error{
		"CreateBranch": func() error { return be.CreateBranch(ctx, newBranchRef(), nil) },
		"DeleteBranch": func() error { return be.DeleteBranch(ctx, b) },
		"Branches":     func() error { _, err := be.Branches(ctx); return err },
		"SubdotPath":   func() error { _, err := be.SubdotPath(ctx, b, dotmesh.DefaultSubdot); return err },
		"Subdots":      func() error { _, err := be.Subdots(ctx, b); return err },
		"Usage":        func() error { _, err := be.Usage(ctx, b, &c); return err },
		"Commit":       func() error { _, err := be.Commit(ctx, newCommitRef(b)); return err },
		"Commits":      func() error { _, err := be.Commits(ctx, b); return err },
		"Rollback":     func() error { return be.Rollback(ctx, b, c) },
		"DeleteCommit": func() error { return be.DeleteCommit(ctx, c) },
		"Send":         func() error { return be.Send(ctx, c, nil, io.Discard) },
		"Receive":      func() error { return be.Receive(ctx, newCommitRef(b), nil, bytes.NewReader(nil)) },
	}
	if x, ok := be.(dotmesh.GarbageCollector); ok {
		calls["CollectGarbage"] = func() error { _, err := x.CollectGarbage(ctx); return err }
	}
	if x, ok := be.(dotmesh.GarbagePlanner); ok {
		calls["PlanGarbage"] = func() error { _, err := x.PlanGarbage(ctx, nil); return err }
	}
	if x, ok := be.(dotmesh.ReceiveDiscarder); ok {
		calls["DiscardReceives"] = func() error { return x.DiscardReceives(ctx, b) }
	}
	if x, ok := be.(dotmesh.Checker); ok {
		calls["Check"] = func() error { return x.Check(ctx) }
	}
	if x, ok := be.(dotmesh.Verifier); ok {
		calls["Verify"] = func() error { _, err := x.Verify(ctx); return err }
	}
	if x, ok := be.(dotmesh.ObjectNegotiator); ok {
		calls["StreamObjects"] = func() error { _, err := x.StreamObjects(ctx, c, nil); return err }
		calls["HaveObjects"] = func() error { _, err := x.HaveObjects(ctx, c, nil); return err }
		calls["SendWithout"] = func() error { return x.SendWithout(ctx, c, nil, nil, io.Discard) }
	}
	if x, ok := be.(dotmesh.RecordKeeper); ok {
		calls["KeepRecords"] = func() error { return x.KeepRecords(ctx, b.Dot, map[string][]byte{"dot": []byte("x")}) }
		calls["Records"] = func() error { _, err := x.Records(ctx); return err }
	}
	if x, ok := be.(dotmesh.SourceManager); ok {
		calls["AddSource"] = func() error {
			return x.AddSource(ctx, b, "db", dotmesh.SourceSpec{Kind: "sqlite", URL: "sqlite:///nowhere.db"})
		}
		calls["RemoveSource"] = func() error { return x.RemoveSource(ctx, b, "db") }
		calls["Sources"] = func() error { _, err := x.Sources(ctx, b); return err }
		calls["SourceLifecycle"] = func() error { return x.SourceLifecycle(ctx, b, "db", dotmesh.SourceActivate) }
	}
	if x, ok := be.(dotmesh.DirtyChecker); ok {
		calls["Dirty"] = func() error { _, err := x.Dirty(ctx, b, &c); return err }
	}
	if x, ok := be.(dotmesh.HeadFollower); ok {
		calls["FollowHead"] = func() error { return x.FollowHead(ctx, b, c) }
	}
	if x, ok := be.(dotmesh.TreeReader); ok {
		calls["CommitTree"] = func() error { _, err := x.CommitTree(ctx, c); return err }
		calls["ReadCommitFile"] = func() error { _, _, err := x.ReadCommitFile(ctx, c, "f", 1); return err }
	}
	if x, ok := be.(dotmesh.TreeFileOpener); ok {
		calls["OpenCommitFile"] = func() error {
			f, err := x.OpenCommitFile(ctx, c, "f")
			if err == nil {
				f.Close()
			}
			return err
		}
	}
	if x, ok := be.(dotmesh.CommitViewer); ok {
		calls["CommitDir"] = func() error { _, err := x.CommitDir(ctx, c); return err }
	}
	if x, ok := be.(dotmesh.SourceDiffer); ok {
		calls["DatabaseSubdots"] = func() error { _, err := x.DatabaseSubdots(ctx, b, &c); return err }
		calls["SourceChanged"] = func() error { _, err := x.SourceChanged(ctx, b, "db", c); return err }
		calls["DiffDatabase"] = func() error {
			_, err := x.DiffDatabase(ctx, "db", dotmesh.DatabaseSide{Commit: &c}, dotmesh.DatabaseSide{Live: &b}, dotmesh.RowDiffOptions{})
			return err
		}
	}
	if x, ok := be.(dotmesh.WorkingStateAdopter); ok {
		calls["AdoptWorkingState"] = func() error {
			return x.AdoptWorkingState(ctx, b, dotmesh.BranchRef{Dot: b.Dot, Branch: "adopter"}, c)
		}
	}
	var first error
	for _, name := range sortedNames(keysOfCalls(calls)) {
		err := calls[name]()
		if !errors.Is(err, dotmesh.ErrUnavailable) {
			f.t.Errorf("%s after Close: %v, want ErrUnavailable", name, err)
			continue
		}
		if first == nil {
			first = err
		} else if err.Error() != first.Error() {
			f.t.Errorf("%s after Close: %q, not the same error as the other calls (%q)", name, err, first)
		}
	}
	if err := be.Close(); err != nil {
		f.t.Errorf("Close again: %v, want nil", err)
	}
}

func keysOfCalls(m map[string]func() error) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// signalReader signals on its first Read, then reads r.
type signalReader struct {
	r       io.Reader
	reading chan struct{}
}

func (s *signalReader) Read(p []byte) (int, error) {
	select {
	case <-s.reading:
	default:
		close(s.reading)
	}
	return s.r.Read(p)
}

// testCloseWaits: Close waits for a Receive that is reading its stream;
// calls made meanwhile are refused at once; when the stream breaks off,
// the Receive ends and so does Close.
func testCloseWaits(f *fixture) {
	b := f.newBranch()
	pr, pw := io.Pipe()
	sr := &signalReader{r: pr, reading: make(chan struct{})}
	received := make(chan error, 1)
	go func() { received <- f.be.Receive(f.ctx, newCommitRef(b), nil, sr) }()
	select {
	case <-sr.reading:
	case err := <-received:
		f.t.Fatalf("Receive returned before reading its stream: %v", err)
	case <-time.After(time.Minute):
		f.t.Fatal("Receive did not read its stream within a minute")
	}
	closed := make(chan error, 1)
	go func() { closed <- f.be.Close() }()
	select {
	case err := <-closed:
		f.t.Fatalf("Close returned (%v) while a Receive was in flight", err)
	case <-time.After(300 * time.Millisecond):
	}
	refused := make(chan error, 1)
	go func() { _, err := f.be.Branches(f.ctx); refused <- err }()
	select {
	case err := <-refused:
		if !errors.Is(err, dotmesh.ErrUnavailable) {
			f.t.Errorf("Branches while closing: %v, want ErrUnavailable", err)
		}
	case <-time.After(30 * time.Second):
		f.t.Error("Branches while closing neither ran nor was refused within 30s")
	}
	pw.CloseWithError(errors.New("the stream broke off"))
	select {
	case err := <-received:
		if err == nil {
			f.t.Error("a Receive whose stream broke off succeeded")
		}
	case <-time.After(time.Minute):
		f.t.Fatal("Receive did not end within a minute of its stream breaking off")
	}
	select {
	case err := <-closed:
		f.fatalIf(err, "Close")
	case <-time.After(time.Minute):
		f.t.Fatal("Close did not return within a minute of the last call ending")
	}
}
