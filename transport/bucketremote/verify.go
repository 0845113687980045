package bucketremote

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/dotmesh-io/dotmesh/bucket/repo"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Err is nil when no problem was found, else an error wrapping
// dotmesh.ErrCorrupt that names the first objects.
func (v VerifyResult) Err() error {
	if len(v.Problems) == 0 {
		return nil
	}
	const named = 3
	var b strings.Builder
	for i, p := range v.Problems[:min(len(v.Problems), named)] {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.String())
	}
	if more := len(v.Problems) - named; more > 0 {
		fmt.Fprintf(&b, "; and %d more", more)
	}
	return fmt.Errorf("%w: the bucket failed verification: %s", dotmesh.ErrCorrupt, b.String())
}

// String is the problem in one line: the object, what needs it, what
// is wrong.
func (p Problem) String() string {
	s := "object " + p.Object
	switch {
	case p.Dot != "" && p.Commit != "":
		s += " (needed by commit " + p.Commit + " of " + p.Dot + ")"
	case p.Dot != "":
		s += " (of dot " + p.Dot + ")"
	}
	return s + ": " + p.Message
}

// Verify checks the repository (repo.Check: every object's seal, and
// blob contents as opts say) and its structure: every commit record
// decodes, its tree's blobs and every chunk blob its tree names are
// there, and every branch and tag names a stored commit whose history
// is whole (it ends at a commit without parent or one marked Pruned).
// Problems name objects, dots and commits; a problem is a result, not
// an error. It holds a shared lock (so that no GC runs meanwhile) when
// the credentials may write one.
func (r *Remote) Verify(ctx context.Context, opts VerifyOptions) (VerifyResult, error) {
	var res VerifyResult
	if math.IsNaN(opts.SamplePercent) || opts.SamplePercent < 0 || opts.SamplePercent > 100 {
		return res, &dotmesh.InvalidOptionError{Option: "VerifyOptions.SamplePercent", Problem: fmt.Sprintf("the share of blobs to read must be from 0 to 100 percent, not %v", opts.SamplePercent)}
	}
	lock, err := r.repo.Lock(ctx, false)
	switch {
	case err == nil:
		defer lock.Unlock(context.WithoutCancel(ctx))
	case errors.Is(err, dotmesh.ErrPermissionDenied):
		r.log.Info("verify: the credentials may not write a lock; verifying without one (a gc meanwhile may show false problems)", "bucket", r.Location())
	default:
		return res, err
	}

	var (
		mu       sync.Mutex
		problems = map[string]*Problem{} // by object
	)
	add := func(object string, dot dotmesh.DotName, commit dotmesh.CommitID, err error) error {
		mu.Lock()
		defer mu.Unlock()
		p := problems[object]
		if p == nil {
			p = &Problem{Object: object, Message: problemMessage(err)}
			problems[object] = p
		}
		if p.Dot == "" && dot != (dotmesh.DotName{}) {
			p.Dot = dotPrefix(dot)
		}
		if p.Commit == "" && commit != "" {
			p.Commit = string(commit)
		}
		return nil
	}

	check, err := r.repo.Check(ctx, repo.CheckOptions{ReadData: opts.ReadData, DataPercent: opts.SamplePercent, Parallel: r.cfg.Parallel})
	if err != nil {
		return res, err
	}
	res.Blobs, res.BlobsRead = check.Blobs, check.BlobsRead

	dotmesh.ReportPhase(ctx, PhaseCheckingCommits)
	refs, err := r.maintRefs(ctx, "", add)
	if err != nil {
		return res, err
	}
	all, n, err := r.maintCommits(ctx, add)
	if err != nil {
		return res, err
	}
	res.Commits = n

	// Every ref names a stored commit, and the history behind it is
	// whole.
	for dot, dr := range refs {
		commits := all[dot]
		for _, h := range dr.heads() {
			chain := Ancestry(commits, h.head)
			if len(chain) == 0 {
				add("commit record "+CommitName(dot, h.head), dot, h.head, fmt.Errorf("missing: %s names it", h.what))
				continue
			}
			if last := chain[len(chain)-1].Commit; last.Parent != "" && !last.Pruned {
				add("commit record "+CommitName(dot, last.Parent), dot, last.ID, fmt.Errorf("missing: it is the parent of commit %s in the history of %s, which is not marked as where history starts", last.ID, h.what))
			}
		}
	}

	// Every commit's tree and chunks are there (read when ReadData).
	var commits []commitOf
	for dot, cs := range all {
		for _, rec := range cs {
			commits = append(commits, commitOf{dot, rec})
		}
	}
	used, err := r.usedBlobs(ctx, commits, func(c commitOf, err error) error {
		if errors.Is(err, errTreeBlobMissing) {
			return nil // found missing below, blob by blob
		}
		return add(corruptObject(err, "tree of commit "+CommitName(c.dot, c.rec.Commit.ID)), c.dot, c.rec.Commit.ID, err)
	})
	if err != nil {
		return res, err
	}
	ids := make([]repo.ID, 0, len(used))
	for id := range used {
		ids = append(ids, id)
	}
	has, err := r.repo.HasBlobs(ctx, ids)
	if err != nil {
		return res, err
	}
	for i, id := range ids {
		if !has[i] {
			c := used[id]
			// Named as a blob, not as data/…: since packs, a blob is in a
			// pack the index lists or, from older pushes, a loose object,
			// and it is in neither.
			add(MissingBlobObject(id), c.dot, c.rec.Commit.ID, errors.New("missing: in no pack the index lists and no loose object; the commit needs it"))
		}
	}

	// Damaged objects Check found, with what needs them.
	for _, p := range check.Problems {
		var dot dotmesh.DotName
		var commit dotmesh.CommitID
		for _, id := range p.Blobs {
			if c, ok := used[id]; ok {
				dot, commit = c.dot, c.rec.Commit.ID
				break
			}
		}
		add(p.Object, dot, commit, p.Err)
	}

	for _, p := range problems {
		res.Problems = append(res.Problems, *p)
	}
	slices.SortFunc(res.Problems, func(a, b Problem) int { return strings.Compare(a.Object, b.Object) })
	r.log.Info("verify", "bucket", r.Location(), "commits", res.Commits, "blobs", res.Blobs, "blobs_read", res.BlobsRead, "problems", len(res.Problems))
	return res, nil
}

// PhaseCheckingCommits is Verify's progress phase after the packs
// (repo.PhaseVerifying): refs, commit records and trees.
const PhaseCheckingCommits = "checking commits"

// MissingBlobObject is how Verify names a blob it finds nowhere.
func MissingBlobObject(id repo.ID) string { return "blob " + id.String() }

// problemMessage words err without the sentinel and object name a
// repo.CorruptError adds (the Problem names the object).
func problemMessage(err error) string {
	var ce *repo.CorruptError
	if errors.As(err, &ce) && ce.Err != nil {
		return ce.Err.Error()
	}
	return strings.TrimPrefix(err.Error(), dotmesh.ErrCorrupt.Error()+": ")
}
