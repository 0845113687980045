package guard

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// The types below guard one optional capability each. A backend embeds
// those of the interfaces it implements beside *Backend; each is made by
// the Backend method of the same name, which panics when the inner
// backend lacks the capability (a programming error, seen at Open).

// RecordKeeper guards dotmesh.RecordKeeper.
type RecordKeeper struct {
	g  *Backend
	in dotmesh.RecordKeeper
}

// RecordKeeper returns the guarded dotmesh.RecordKeeper of the inner backend.
func (g *Backend) RecordKeeper() RecordKeeper { return RecordKeeper{g, g.inner.(dotmesh.RecordKeeper)} }

// CheckRecords checks the arguments of dotmesh.RecordKeeper.KeepRecords:
// the dot id, and every record's key and size.
func CheckRecords(dot dotmesh.DotID, recs map[string][]byte) error {
	if err := dotmesh.ValidateID("dot", string(dot), false); err != nil {
		return err
	}
	for k, v := range recs {
		if err := dotmesh.ValidateRecordKey(k); err != nil {
			return err
		}
		if len(v) > dotmesh.MaxRecordSize {
			return fmt.Errorf("%w: record %s of dot %s has %d bytes, more than %d", dotmesh.ErrInvalidArgument, k, dot, len(v), dotmesh.MaxRecordSize)
		}
	}
	return nil
}

// KeepRecords implements dotmesh.RecordKeeper: every record is checked
// before any is stored.
func (c RecordKeeper) KeepRecords(ctx context.Context, dot dotmesh.DotID, recs map[string][]byte) error {
	if err := CheckRecords(dot, recs); err != nil {
		return err
	}
	done, err := c.g.enter()
	if err != nil {
		return err
	}
	defer done()
	return c.in.KeepRecords(ctx, dot, recs)
}

// Records implements dotmesh.RecordKeeper.
func (c RecordKeeper) Records(ctx context.Context) (map[dotmesh.DotID]map[string][]byte, error) {
	done, err := c.g.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	return c.in.Records(ctx)
}

// DirtyChecker guards dotmesh.DirtyChecker.
type DirtyChecker struct {
	g  *Backend
	in dotmesh.DirtyChecker
}

// DirtyChecker returns the guarded dotmesh.DirtyChecker of the inner backend.
func (g *Backend) DirtyChecker() DirtyChecker { return DirtyChecker{g, g.inner.(dotmesh.DirtyChecker)} }

// Dirty implements dotmesh.DirtyChecker, locked like Usage.
func (c DirtyChecker) Dirty(ctx context.Context, b dotmesh.BranchRef, head *dotmesh.CommitRef) (dotmesh.Usage, error) {
	done, err := c.g.branchCall(0, b, b, head)
	if err != nil {
		return dotmesh.Usage{}, err
	}
	defer done()
	return c.in.Dirty(ctx, b, head)
}

// ChangeCommitter guards dotmesh.ChangeCommitter.
type ChangeCommitter struct {
	g  *Backend
	in dotmesh.ChangeCommitter
}

// ChangeCommitter returns the guarded dotmesh.ChangeCommitter of the inner backend.
func (g *Backend) ChangeCommitter() ChangeCommitter {
	return ChangeCommitter{g, g.inner.(dotmesh.ChangeCommitter)}
}

// CommitIfChanged implements dotmesh.ChangeCommitter, locked like Commit.
func (c ChangeCommitter) CommitIfChanged(ctx context.Context, r dotmesh.CommitRef, head dotmesh.CommitRef) (map[string]string, bool, error) {
	done, err := c.g.branchCall(0, r.BranchRef, r, &head)
	if err != nil {
		return nil, false, err
	}
	defer done()
	return c.in.CommitIfChanged(ctx, r, head)
}

// CommitJournal guards dotmesh.CommitJournal.
type CommitJournal struct {
	g  *Backend
	in dotmesh.CommitJournal
}

// CommitJournal returns the guarded dotmesh.CommitJournal of the inner backend.
func (g *Backend) CommitJournal() CommitJournal {
	return CommitJournal{g, g.inner.(dotmesh.CommitJournal)}
}

// JournalCommit implements dotmesh.CommitJournal, unlocked: the Node
// holds the dot's lock across it and the commit.
func (c CommitJournal) JournalCommit(ctx context.Context, r dotmesh.CommitRef, head *dotmesh.CommitRef, rec []byte) error {
	done, err := c.g.call(r, head)
	if err != nil {
		return err
	}
	defer done()
	return c.in.JournalCommit(ctx, r, head, rec)
}

// Journaled implements dotmesh.CommitJournal.
func (c CommitJournal) Journaled(ctx context.Context) ([]dotmesh.JournaledCommit, error) {
	done, err := c.g.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	return c.in.Journaled(ctx)
}

// DropJournal implements dotmesh.CommitJournal.
func (c CommitJournal) DropJournal(ctx context.Context, r dotmesh.CommitRef) error {
	done, err := c.g.call(r, nil)
	if err != nil {
		return err
	}
	defer done()
	return c.in.DropJournal(ctx, r)
}

// HeadFollower guards dotmesh.HeadFollower.
type HeadFollower struct {
	g  *Backend
	in dotmesh.HeadFollower
}

// HeadFollower returns the guarded dotmesh.HeadFollower of the inner backend.
func (g *Backend) HeadFollower() HeadFollower { return HeadFollower{g, g.inner.(dotmesh.HeadFollower)} }

// FollowHead implements dotmesh.HeadFollower, locked like Rollback.
func (c HeadFollower) FollowHead(ctx context.Context, b dotmesh.BranchRef, head dotmesh.CommitRef) error {
	done, err := c.g.branchCall(FollowHead, b, b, &head)
	if err != nil {
		return err
	}
	defer done()
	return c.in.FollowHead(ctx, b, head)
}

// GarbageCollector guards dotmesh.GarbageCollector.
type GarbageCollector struct {
	g  *Backend
	in dotmesh.GarbageCollector
}

// GarbageCollector returns the guarded dotmesh.GarbageCollector of the inner backend.
func (g *Backend) GarbageCollector() GarbageCollector {
	return GarbageCollector{g, g.inner.(dotmesh.GarbageCollector)}
}

// CollectGarbage implements dotmesh.GarbageCollector.
func (c GarbageCollector) CollectGarbage(ctx context.Context) (dotmesh.GCStats, error) {
	done, err := c.g.enter()
	if err != nil {
		return dotmesh.GCStats{}, err
	}
	defer done()
	return c.in.CollectGarbage(ctx)
}

// GarbagePlanner guards dotmesh.GarbagePlanner.
type GarbagePlanner struct {
	g  *Backend
	in dotmesh.GarbagePlanner
}

// GarbagePlanner returns the guarded dotmesh.GarbagePlanner of the inner backend.
func (g *Backend) GarbagePlanner() GarbagePlanner {
	return GarbagePlanner{g, g.inner.(dotmesh.GarbagePlanner)}
}

// PlanGarbage implements dotmesh.GarbagePlanner.
func (c GarbagePlanner) PlanGarbage(ctx context.Context, without []dotmesh.CommitRef) (dotmesh.GCStats, error) {
	for _, r := range without {
		if err := r.Validate(); err != nil {
			return dotmesh.GCStats{}, err
		}
	}
	done, err := c.g.enter()
	if err != nil {
		return dotmesh.GCStats{}, err
	}
	defer done()
	return c.in.PlanGarbage(ctx, without)
}

// Checker guards dotmesh.Checker.
type Checker struct {
	g  *Backend
	in dotmesh.Checker
}

// Checker returns the guarded dotmesh.Checker of the inner backend.
func (g *Backend) Checker() Checker { return Checker{g, g.inner.(dotmesh.Checker)} }

// Check implements dotmesh.Checker.
func (c Checker) Check(ctx context.Context) error {
	done, err := c.g.enter()
	if err != nil {
		return err
	}
	defer done()
	return c.in.Check(ctx)
}

// Verifier guards dotmesh.Verifier.
type Verifier struct {
	g  *Backend
	in dotmesh.Verifier
}

// Verifier returns the guarded dotmesh.Verifier of the inner backend.
func (g *Backend) Verifier() Verifier { return Verifier{g, g.inner.(dotmesh.Verifier)} }

// Verify implements dotmesh.Verifier.
func (c Verifier) Verify(ctx context.Context) (*dotmesh.VerifyReport, error) {
	done, err := c.g.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	return c.in.Verify(ctx)
}

// StoreStatter guards dotmesh.StoreStatter.
type StoreStatter struct {
	g  *Backend
	in dotmesh.StoreStatter
}

// StoreStatter returns the guarded dotmesh.StoreStatter of the inner backend.
func (g *Backend) StoreStatter() StoreStatter { return StoreStatter{g, g.inner.(dotmesh.StoreStatter)} }

// StoreStats implements dotmesh.StoreStatter.
func (c StoreStatter) StoreStats(ctx context.Context) (dotmesh.StoreStats, error) {
	done, err := c.g.enter()
	if err != nil {
		return dotmesh.StoreStats{}, err
	}
	defer done()
	return c.in.StoreStats(ctx)
}

// ReceiveDiscarder guards dotmesh.ReceiveDiscarder.
type ReceiveDiscarder struct {
	g  *Backend
	in dotmesh.ReceiveDiscarder
}

// ReceiveDiscarder returns the guarded dotmesh.ReceiveDiscarder of the inner backend.
func (g *Backend) ReceiveDiscarder() ReceiveDiscarder {
	return ReceiveDiscarder{g, g.inner.(dotmesh.ReceiveDiscarder)}
}

// DiscardReceives implements dotmesh.ReceiveDiscarder, locked like Receive.
func (c ReceiveDiscarder) DiscardReceives(ctx context.Context, b dotmesh.BranchRef) error {
	done, err := c.g.branchCall(0, b, b, nil)
	if err != nil {
		return err
	}
	defer done()
	return c.in.DiscardReceives(ctx, b)
}

// ObjectNegotiator guards dotmesh.ObjectNegotiator. No lock, as Send.
type ObjectNegotiator struct {
	g  *Backend
	in dotmesh.ObjectNegotiator
}

// ObjectNegotiator returns the guarded dotmesh.ObjectNegotiator of the inner backend.
func (g *Backend) ObjectNegotiator() ObjectNegotiator {
	return ObjectNegotiator{g, g.inner.(dotmesh.ObjectNegotiator)}
}

// StreamObjects implements dotmesh.ObjectNegotiator.
func (c ObjectNegotiator) StreamObjects(ctx context.Context, target dotmesh.CommitRef, base *dotmesh.CommitRef) ([]dotmesh.ObjectID, error) {
	done, err := c.g.call(target, base)
	if err != nil {
		return nil, err
	}
	defer done()
	return c.in.StreamObjects(ctx, target, base)
}

// HaveObjects implements dotmesh.ObjectNegotiator.
func (c ObjectNegotiator) HaveObjects(ctx context.Context, target dotmesh.CommitRef, ids []dotmesh.ObjectID) ([]bool, error) {
	if len(ids) > dotmesh.MaxObjectBatch {
		return nil, fmt.Errorf("%w: %d object ids at once; the limit is %d", dotmesh.ErrInvalidArgument, len(ids), dotmesh.MaxObjectBatch)
	}
	if err := validObjects(ids); err != nil {
		return nil, err
	}
	done, err := c.g.call(target, nil)
	if err != nil {
		return nil, err
	}
	defer done()
	return c.in.HaveObjects(ctx, target, ids)
}

// SendWithout implements dotmesh.ObjectNegotiator.
func (c ObjectNegotiator) SendWithout(ctx context.Context, target dotmesh.CommitRef, base *dotmesh.CommitRef, have []dotmesh.ObjectID, w io.Writer) error {
	if err := validObjects(have); err != nil {
		return err
	}
	done, err := c.g.call(target, base)
	if err != nil {
		return err
	}
	defer done()
	return c.in.SendWithout(ctx, target, base, have, w)
}

func validObjects(ids []dotmesh.ObjectID) error {
	for _, id := range ids {
		if err := dotmesh.ValidateObjectID(id); err != nil {
			return err
		}
	}
	return nil
}

// SourceManager guards dotmesh.SourceManager. Whether a subdot may be a
// source, and of what, is the backend's to say.
type SourceManager struct {
	g  *Backend
	in dotmesh.SourceManager
}

// SourceManager returns the guarded dotmesh.SourceManager of the inner backend.
func (g *Backend) SourceManager() SourceManager {
	return SourceManager{g, g.inner.(dotmesh.SourceManager)}
}

// AddSource implements dotmesh.SourceManager.
func (c SourceManager) AddSource(ctx context.Context, b dotmesh.BranchRef, subdot string, spec dotmesh.SourceSpec) error {
	done, err := c.g.branchCall(0, b, b, nil)
	if err != nil {
		return err
	}
	defer done()
	return c.in.AddSource(ctx, b, subdot, spec)
}

// RemoveSource implements dotmesh.SourceManager.
func (c SourceManager) RemoveSource(ctx context.Context, b dotmesh.BranchRef, subdot string) error {
	done, err := c.g.branchCall(0, b, b, nil)
	if err != nil {
		return err
	}
	defer done()
	return c.in.RemoveSource(ctx, b, subdot)
}

// Sources implements dotmesh.SourceManager (a read: no lock).
func (c SourceManager) Sources(ctx context.Context, b dotmesh.BranchRef) ([]dotmesh.Source, error) {
	done, err := c.g.call(b, nil)
	if err != nil {
		return nil, err
	}
	defer done()
	return c.in.Sources(ctx, b)
}

// SourceLifecycle implements dotmesh.SourceManager.
func (c SourceManager) SourceLifecycle(ctx context.Context, b dotmesh.BranchRef, subdot, action string) error {
	done, err := c.g.branchCall(0, b, b, nil)
	if err != nil {
		return err
	}
	defer done()
	return c.in.SourceLifecycle(ctx, b, subdot, action)
}

// TreeReader guards dotmesh.TreeReader. No lock, as Send: a commit does
// not change.
type TreeReader struct {
	g  *Backend
	in dotmesh.TreeReader
}

// TreeReader returns the guarded dotmesh.TreeReader of the inner backend.
func (g *Backend) TreeReader() TreeReader { return TreeReader{g, g.inner.(dotmesh.TreeReader)} }

// TreeFileOpener guards dotmesh.TreeFileOpener: the call counts as in
// flight until the file is closed.
type TreeFileOpener struct {
	g  *Backend
	in dotmesh.TreeFileOpener
}

// TreeFileOpener returns the guarded dotmesh.TreeFileOpener of the inner backend.
func (g *Backend) TreeFileOpener() TreeFileOpener {
	return TreeFileOpener{g, g.inner.(dotmesh.TreeFileOpener)}
}

// OpenCommitFile implements dotmesh.TreeFileOpener; path as ReadCommitFile's.
func (c TreeFileOpener) OpenCommitFile(ctx context.Context, r dotmesh.CommitRef, path string) (io.ReadCloser, error) {
	if err := dotmesh.ValidateTreePath(path); err != nil {
		return nil, err
	}
	if path == "" {
		return nil, fmt.Errorf("%w: the root of a commit's tree is a directory, not a file", dotmesh.ErrInvalidArgument)
	}
	done, err := c.g.call(r, nil)
	if err != nil {
		return nil, err
	}
	f, err := c.in.OpenCommitFile(ctx, r, path)
	if err != nil {
		done()
		return nil, err
	}
	return &guardedFile{ReadCloser: f, done: done}, nil
}

type guardedFile struct {
	io.ReadCloser
	done func()
	once sync.Once
}

func (f *guardedFile) Close() error {
	err := f.ReadCloser.Close()
	f.once.Do(f.done)
	return err
}

// CommitTree implements dotmesh.TreeReader.
func (c TreeReader) CommitTree(ctx context.Context, r dotmesh.CommitRef) ([]dotmesh.TreeEntry, error) {
	done, err := c.g.call(r, nil)
	if err != nil {
		return nil, err
	}
	defer done()
	return c.in.CommitTree(ctx, r)
}

// ReadCommitFile implements dotmesh.TreeReader; path must be a clean
// relative path (dotmesh.ValidateTreePath) and max not negative.
func (c TreeReader) ReadCommitFile(ctx context.Context, r dotmesh.CommitRef, path string, max int64) ([]byte, bool, error) {
	if err := dotmesh.ValidateTreePath(path); err != nil {
		return nil, false, err
	}
	if path == "" {
		return nil, false, fmt.Errorf("%w: the root of a commit's tree is a directory, not a file", dotmesh.ErrInvalidArgument)
	}
	if max < 0 {
		return nil, false, fmt.Errorf("%w: read limit %d is negative", dotmesh.ErrInvalidArgument, max)
	}
	done, err := c.g.call(r, nil)
	if err != nil {
		return nil, false, err
	}
	defer done()
	return c.in.ReadCommitFile(ctx, r, path, max)
}

// CommitViewer guards dotmesh.CommitViewer. No lock, as Send.
type CommitViewer struct {
	g  *Backend
	in dotmesh.CommitViewer
}

// CommitViewer returns the guarded dotmesh.CommitViewer of the inner backend.
func (g *Backend) CommitViewer() CommitViewer { return CommitViewer{g, g.inner.(dotmesh.CommitViewer)} }

// CommitDir implements dotmesh.CommitViewer.
func (c CommitViewer) CommitDir(ctx context.Context, r dotmesh.CommitRef) (string, error) {
	done, err := c.g.call(r, nil)
	if err != nil {
		return "", err
	}
	defer done()
	return c.in.CommitDir(ctx, r)
}

// SourceDiffer guards dotmesh.SourceDiffer. No lock: commits do not
// change, and a live database is only read (dumped to scratch space).
type SourceDiffer struct {
	g  *Backend
	in dotmesh.SourceDiffer
}

// SourceDiffer returns the guarded dotmesh.SourceDiffer of the inner backend.
func (g *Backend) SourceDiffer() SourceDiffer { return SourceDiffer{g, g.inner.(dotmesh.SourceDiffer)} }

// DatabaseSubdots implements dotmesh.SourceDiffer.
func (c SourceDiffer) DatabaseSubdots(ctx context.Context, b dotmesh.BranchRef, r *dotmesh.CommitRef) (map[string]string, error) {
	done, err := c.g.call(b, r)
	if err != nil {
		return nil, err
	}
	defer done()
	return c.in.DatabaseSubdots(ctx, b, r)
}

// SourceChanged implements dotmesh.SourceDiffer, locked like Dirty: it
// may record the database's fingerprint.
func (c SourceDiffer) SourceChanged(ctx context.Context, b dotmesh.BranchRef, subdot string, head dotmesh.CommitRef) (bool, error) {
	if err := dotmesh.ValidateSubdot(subdot); err != nil {
		return false, err
	}
	done, err := c.g.branchCall(0, b, b, &head)
	if err != nil {
		return false, err
	}
	defer done()
	return c.in.SourceChanged(ctx, b, subdot, head)
}

// DiffDatabase implements dotmesh.SourceDiffer; each side is a commit, a
// branch or nothing, and MaxRows is not negative.
func (c SourceDiffer) DiffDatabase(ctx context.Context, subdot string, from, to dotmesh.DatabaseSide, opts dotmesh.RowDiffOptions) (*dotmesh.DatabaseDiff, error) {
	if err := dotmesh.ValidateSubdot(subdot); err != nil {
		return nil, err
	}
	if opts.MaxRows < 0 {
		return nil, fmt.Errorf("%w: row limit %d is negative", dotmesh.ErrInvalidArgument, opts.MaxRows)
	}
	for _, s := range []dotmesh.DatabaseSide{from, to} {
		if s.Commit != nil && s.Live != nil {
			return nil, fmt.Errorf("%w: a side of a database comparison is a commit or a live database, not both", dotmesh.ErrInvalidArgument)
		}
		var err error
		if s.Commit != nil {
			err = s.Commit.Validate()
		} else if s.Live != nil {
			err = s.Live.Validate()
		}
		if err != nil {
			return nil, err
		}
	}
	done, err := c.g.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	return c.in.DiffDatabase(ctx, subdot, from, to, opts)
}

// WorkingStateAdopter guards dotmesh.WorkingStateAdopter.
type WorkingStateAdopter struct {
	g  *Backend
	in dotmesh.WorkingStateAdopter
}

// WorkingStateAdopter returns the guarded dotmesh.WorkingStateAdopter of the inner backend.
func (g *Backend) WorkingStateAdopter() WorkingStateAdopter {
	return WorkingStateAdopter{g, g.inner.(dotmesh.WorkingStateAdopter)}
}

// AdoptWorkingState implements dotmesh.WorkingStateAdopter: both
// branches, of one dot, are locked (in one order, so two adoptions
// cannot deadlock).
func (c WorkingStateAdopter) AdoptWorkingState(ctx context.Context, from, to dotmesh.BranchRef, r dotmesh.CommitRef) error {
	if err := valid(from, &r); err != nil {
		return err
	}
	if err := to.Validate(); err != nil {
		return err
	}
	if from.Dot != to.Dot || from == to {
		return fmt.Errorf("%w: a working state passes between two branches of one dot, not from %s to %s", dotmesh.ErrInvalidArgument, from, to)
	}
	done, err := c.g.enter()
	if err != nil {
		return err
	}
	defer done()
	first, second := from, to
	if second.Branch < first.Branch {
		first, second = second, first
	}
	defer c.g.locks.Lock(first)()
	if !c.g.locks.perDot {
		defer c.g.locks.Lock(second)()
	}
	return c.in.AdoptWorkingState(ctx, from, to, r)
}

// ChunkStager guards dotmesh.ChunkStager.
type ChunkStager struct {
	g  *Backend
	in dotmesh.ChunkStager
}

// ChunkStager returns the guarded dotmesh.ChunkStager of the inner backend.
func (g *Backend) ChunkStager() ChunkStager { return ChunkStager{g, g.inner.(dotmesh.ChunkStager)} }

// StageChunks implements dotmesh.ChunkStager. The sink outlives the call:
// it works on the store, not on a branch's files.
func (c ChunkStager) StageChunks(ctx context.Context, r dotmesh.CommitRef) (dotmesh.ChunkSink, error) {
	if err := valid(r.BranchRef, &r); err != nil {
		return nil, err
	}
	done, err := c.g.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	return c.in.StageChunks(ctx, r)
}

// CapacityReporter guards dotmesh.CapacityReporter.
type CapacityReporter struct {
	g  *Backend
	in dotmesh.CapacityReporter
}

// CapacityReporter returns the guarded dotmesh.CapacityReporter of the inner backend.
func (g *Backend) CapacityReporter() CapacityReporter {
	return CapacityReporter{g, g.inner.(dotmesh.CapacityReporter)}
}

// Capacity implements dotmesh.CapacityReporter.
func (c CapacityReporter) Capacity(ctx context.Context) (dotmesh.Capacity, error) {
	done, err := c.g.enter()
	if err != nil {
		return dotmesh.Capacity{}, err
	}
	defer done()
	return c.in.Capacity(ctx)
}

// VolumeSizer guards dotmesh.VolumeSizer.
type VolumeSizer struct {
	g  *Backend
	in dotmesh.VolumeSizer
}

// VolumeSizer returns the guarded dotmesh.VolumeSizer of the inner backend.
func (g *Backend) VolumeSizer() VolumeSizer { return VolumeSizer{g, g.inner.(dotmesh.VolumeSizer)} }

// SetSize implements dotmesh.VolumeSizer, locked like a change of the
// branch (a Rollback must not swap the working state under it).
func (c VolumeSizer) SetSize(ctx context.Context, b dotmesh.BranchRef, bytes int64) error {
	if bytes < 0 {
		return fmt.Errorf("%w: size %d of branch %s is negative", dotmesh.ErrInvalidArgument, bytes, b)
	}
	done, err := c.g.branchCall(0, b, b, nil)
	if err != nil {
		return err
	}
	defer done()
	return c.in.SetSize(ctx, b, bytes)
}

// Size implements dotmesh.VolumeSizer (a read: no lock).
func (c VolumeSizer) Size(ctx context.Context, b dotmesh.BranchRef) (int64, error) {
	done, err := c.g.call(b, nil)
	if err != nil {
		return 0, err
	}
	defer done()
	return c.in.Size(ctx, b)
}

// UsageBatcher guards dotmesh.UsageBatcher.
type UsageBatcher struct {
	g  *Backend
	in dotmesh.UsageBatcher
}

// UsageBatcher returns the guarded dotmesh.UsageBatcher of the inner backend.
func (g *Backend) UsageBatcher() UsageBatcher {
	return UsageBatcher{g, g.inner.(dotmesh.UsageBatcher)}
}

// BeginUsage implements dotmesh.UsageBatcher. A closed backend leaves ctx
// as it is: its Usage calls fail by themselves.
func (u UsageBatcher) BeginUsage(ctx context.Context) context.Context {
	done, err := u.g.enter()
	if err != nil {
		return ctx
	}
	defer done()
	return u.in.BeginUsage(ctx)
}

// DirectTransferer guards dotmesh.DirectTransferer.
type DirectTransferer struct {
	g  *Backend
	in dotmesh.DirectTransferer
}

// DirectTransferer returns the guarded dotmesh.DirectTransferer of the inner backend.
func (g *Backend) DirectTransferer() DirectTransferer {
	return DirectTransferer{g, g.inner.(dotmesh.DirectTransferer)}
}

// SendDirect implements dotmesh.DirectTransferer, checked like Send.
func (c DirectTransferer) SendDirect(ctx context.Context, target dotmesh.CommitRef, base *dotmesh.CommitRef, f *os.File) error {
	done, err := c.g.call(target, base)
	if err != nil {
		return err
	}
	defer done()
	return c.in.SendDirect(ctx, target, base, f)
}

// ReceiveDirect implements dotmesh.DirectTransferer, locked like Receive.
func (c DirectTransferer) ReceiveDirect(ctx context.Context, target dotmesh.CommitRef, base *dotmesh.CommitRef, accept func() (*os.File, error)) error {
	done, err := c.g.branchCall(Receive, target.BranchRef, target, base)
	if err != nil {
		return err
	}
	defer done()
	return c.in.ReceiveDirect(ctx, target, base, accept)
}
