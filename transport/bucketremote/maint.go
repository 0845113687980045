package bucketremote

// What a bucket holds, for the maintenance verbs: List, Log (here), GC
// (gc.go) and Verify (verify.go). They read refs and commit records as
// format.go lays them out.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/dotmesh-io/dotmesh/bucket/repo"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// refsOfDot are the refs of one dot: its branches' heads and its tags.
type refsOfDot struct {
	dot      dotmesh.DotName
	branches map[string]BranchRef
	tags     []dotmesh.Tag
}

// refHead is what one ref of a dot names.
type refHead struct {
	what string // "branch NAME", "tag NAME"
	head dotmesh.CommitID
	tag  bool
}

// heads lists the commits the dot's branches and tags name.
func (dr *refsOfDot) heads() []refHead {
	var out []refHead
	for name, br := range dr.branches {
		out = append(out, refHead{"branch " + name, br.Head, false})
	}
	for _, t := range dr.tags {
		out = append(out, refHead{"tag " + t.Name, t.Commit, true})
	}
	return out
}

// badFunc is told of a damaged object (its name in the store, or a
// description), the dot and commit it belongs to when known; an error
// it returns stops the caller. Verify records problems and goes on; the
// other verbs stop at the first.
type badFunc func(object string, dot dotmesh.DotName, commit dotmesh.CommitID, err error) error

// stopAtBad is the badFunc of the verbs that cannot go on past damage.
func stopAtBad(object string, _ dotmesh.DotName, _ dotmesh.CommitID, err error) error {
	if errors.Is(err, dotmesh.ErrCorrupt) {
		return fmt.Errorf("%w (run verify on the bucket)", err)
	}
	return err
}

// corruptObject names the store object a repo.CorruptError names, else
// what.
func corruptObject(err error, what string) string {
	var ce *repo.CorruptError
	if errors.As(err, &ce) {
		return ce.Name
	}
	return what
}

// isDamage says whether err is damage (reported as such) rather than a
// failure to reach the store.
func isDamage(err error) bool {
	return errors.Is(err, dotmesh.ErrCorrupt) || errors.Is(err, dotmesh.ErrNotFound)
}

// maintRefs reads the refs under prefix ("" for all, else a dot's
// dotPrefix), by dot.
func (r *Remote) maintRefs(ctx context.Context, prefix string, bad badFunc) (map[dotmesh.DotName]*refsOfDot, error) {
	names, err := r.repo.ListRefs(ctx, prefix)
	if err != nil {
		if isDamage(err) {
			return nil, bad(corruptObject(err, "refs"), dotmesh.DotName{}, "", err)
		}
		return nil, err
	}
	out := map[dotmesh.DotName]*refsOfDot{}
	for _, name := range names {
		what := "ref " + name
		rn, err := ParseRefName(name)
		if err != nil {
			if err := bad(what, dotmesh.DotName{}, "", err); err != nil {
				return nil, err
			}
			continue
		}
		st, err := r.repo.GetRef(ctx, name)
		if err != nil && !isDamage(err) {
			return nil, err
		}
		if err == nil && !st.Exists {
			continue // deleted since the listing
		}
		dr := out[rn.Dot]
		if dr == nil {
			dr = &refsOfDot{dot: rn.Dot, branches: map[string]BranchRef{}}
			out[rn.Dot] = dr
		}
		if err == nil {
			if rn.Branch != "" {
				var br BranchRef
				if br, err = DecodeBranchRef(st.Data); err == nil {
					dr.branches[rn.Branch] = br
				}
			} else {
				var tr TagsRef
				if tr, err = DecodeTagsRef(st.Data); err == nil {
					dr.tags = tr.Tags
				}
			}
		}
		if err != nil {
			if err := bad(corruptObject(err, what), rn.Dot, "", fmt.Errorf("%s: %w", what, err)); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// maintCommits reads every commit record in the bucket (those of
// unfinished pushes too), by dot and id, and returns how many records
// there are, damaged ones included.
func (r *Remote) maintCommits(ctx context.Context, bad badFunc) (map[dotmesh.DotName]map[dotmesh.CommitID]*CommitRecord, int, error) {
	names, err := r.repo.ListRecords(ctx, KindCommit, "")
	if err != nil {
		if isDamage(err) {
			return nil, 0, bad(corruptObject(err, "commit records"), dotmesh.DotName{}, "", err)
		}
		return nil, 0, err
	}
	out := map[dotmesh.DotName]map[dotmesh.CommitID]*CommitRecord{}
	var mu sync.Mutex
	var badErr error
	report := func(object string, dot dotmesh.DotName, id dotmesh.CommitID, err error) {
		mu.Lock()
		defer mu.Unlock()
		if badErr == nil {
			badErr = bad(object, dot, id, err)
		}
	}
	found := func(dot dotmesh.DotName, id dotmesh.CommitID, rec *CommitRecord) {
		mu.Lock()
		defer mu.Unlock()
		if out[dot] == nil {
			out[dot] = map[dotmesh.CommitID]*CommitRecord{}
		}
		out[dot][id] = rec
	}
	g := newGroup(ctx, r.cfg.Parallel)
	for _, name := range names {
		what := "commit record " + name
		dot, id, err := ParseCommitName(name)
		if err != nil {
			report(what, dotmesh.DotName{}, "", err)
			continue
		}
		if rec := r.commits.get(name); rec != nil {
			found(dot, id, rec)
			continue
		}
		g.Go(func(ctx context.Context) error {
			rec, err := loadCommit(ctx, r.repo, name)
			if err == nil && rec.Commit.ID != id {
				err = fmt.Errorf("%w: commit record %s holds commit %s", dotmesh.ErrCorrupt, name, rec.Commit.ID)
			}
			if err != nil {
				if !isDamage(err) {
					return err
				}
				report(corruptObject(err, what), dot, id, err)
				return nil
			}
			r.commits.put(name, rec)
			found(dot, id, rec)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, 0, err
	}
	if badErr != nil {
		return nil, 0, badErr
	}
	return out, len(names), nil
}

// List describes every dot in the bucket that has a branch or a tag,
// sorted by name; branches are sorted by name.
func (r *Remote) List(ctx context.Context) ([]DotInfo, error) {
	refs, err := r.maintRefs(ctx, "", stopAtBad)
	if err != nil {
		return nil, err
	}
	out := make([]DotInfo, 0, len(refs))
	var mu sync.Mutex
	// Dots load side by side: each is a listing and its records.
	g := newGroup(ctx, max(r.cfg.Parallel/4, 1))
	for _, dr := range refs {
		g.Go(func(ctx context.Context) error {
			info, err := r.dotInfo(ctx, dr)
			if err != nil {
				return err
			}
			mu.Lock()
			out = append(out, info)
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b DotInfo) int { return strings.Compare(dotPrefix(a.Name), dotPrefix(b.Name)) })
	return out, nil
}

// dotInfo describes the dot dr holds the refs of.
func (r *Remote) dotInfo(ctx context.Context, dr *refsOfDot) (DotInfo, error) {
	dot := dr.dot
	commits, err := LoadCommits(ctx, r.repo, dot, r.cfg.Parallel, &r.commits)
	if err != nil {
		return DotInfo{}, stopAtBad("", dot, "", err)
	}
	info := DotInfo{Name: dot, Branches: []BranchInfo{}, Tags: dr.tags}
	for name, br := range dr.branches {
		head, ok := commits[br.Head]
		if !ok {
			return DotInfo{}, fmt.Errorf("%w: branch %s of %s in the bucket names commit %s, which it lacks (run verify on the bucket)", dotmesh.ErrCorrupt, name, dot, br.Head)
		}
		info.Branches = append(info.Branches, BranchInfo{
			Name: name, Head: br.Head, Time: head.Commit.Time,
			Commits: len(Ancestry(commits, br.Head)), Bytes: head.Bytes,
		})
	}
	slices.SortFunc(info.Branches, func(a, b BranchInfo) int { return strings.Compare(a.Name, b.Name) })
	return info, nil
}

// Log is the history of ref (a branch, a tag or a commit id of dot, with
// ^ and ~N as dotmesh.ParseRef allows), newest first. HEAD (or an empty
// ref) is the master branch, or the dot's only branch when it has no
// master. Refs resolve as on a node: a branch name wins over a tag's,
// and a tag's over a commit id prefix; a prefix must be unique.
func (r *Remote) Log(ctx context.Context, dot dotmesh.DotName, ref string) ([]dotmesh.Commit, error) {
	dot, err := checkDot(dot)
	if err != nil {
		return nil, err
	}
	if ref == "" {
		ref = "HEAD"
	}
	pr, err := dotmesh.ParseRef(ref)
	if err != nil {
		return nil, err
	}
	refs, err := r.maintRefs(ctx, dotPrefix(dot), stopAtBad)
	if err != nil {
		return nil, err
	}
	commits, err := LoadCommits(ctx, r.repo, dot, r.cfg.Parallel, &r.commits)
	if err != nil {
		return nil, stopAtBad("", dot, "", err)
	}
	dr := refs[dot]
	if dr == nil || len(dr.branches) == 0 && len(dr.tags) == 0 {
		return nil, &dotmesh.NotFoundError{Kind: dotmesh.KindDot, Dot: dot}
	}
	start, what, err := logRefBase(dr, pr, commits)
	if err != nil {
		return nil, err
	}
	chain := Ancestry(commits, start)
	if len(chain) == 0 {
		return nil, fmt.Errorf("%w: %s of %s names commit %s, which the bucket lacks (run verify on the bucket)", dotmesh.ErrCorrupt, what, dot, start)
	}
	if pr.Back >= len(chain) {
		return nil, fmt.Errorf("%w: %s goes back %d commits, but %s has only %d before it", dotmesh.ErrNotFound, pr, pr.Back, what, len(chain)-1)
	}
	out := make([]dotmesh.Commit, 0, len(chain)-pr.Back)
	for _, rec := range chain[pr.Back:] {
		out = append(out, rec.Commit)
	}
	return out, nil
}

// logHeadBranch is the branch HEAD means in a bucket: master, or the only
// branch.
func logHeadBranch(dr *refsOfDot) (string, error) {
	if _, ok := dr.branches[dotmesh.DefaultBranch]; ok || len(dr.branches) != 1 {
		if !ok {
			return "", &dotmesh.NotFoundError{Kind: dotmesh.KindBranch, Name: dotmesh.DefaultBranch, Dot: dr.dot}
		}
		return dotmesh.DefaultBranch, nil
	}
	for name := range dr.branches {
		return name, nil
	}
	panic("unreachable")
}

// logRefBase finds the commit pr's base names, and says in words what it
// is, as the node's refBase (dotmesh/commits.go) does.
func logRefBase(dr *refsOfDot, pr dotmesh.Ref, commits map[dotmesh.CommitID]*CommitRecord) (dotmesh.CommitID, string, error) {
	name := pr.Name
	if name == "" {
		b, err := logHeadBranch(dr)
		if err != nil {
			return "", "", err
		}
		name = b
	}
	if br, ok := dr.branches[name]; ok {
		return br.Head, "branch " + name, nil
	}
	for _, t := range dr.tags {
		if t.Name == name {
			return t.Commit, "tag " + name, nil
		}
	}
	if pr.Prefix == "" {
		return "", "", &dotmesh.NotFoundError{Kind: dotmesh.KindRef, Name: pr.Name, Dot: dr.dot}
	}
	var matches []dotmesh.CommitID
	for id := range commits {
		if strings.HasPrefix(string(id), pr.Prefix) {
			matches = append(matches, id)
		}
	}
	if len(matches) > 1 {
		// As on a node: a prefix unique in HEAD's history is that commit.
		var mine []dotmesh.CommitID
		if b, err := logHeadBranch(dr); err == nil {
			for _, rec := range Ancestry(commits, dr.branches[b].Head) {
				if strings.HasPrefix(string(rec.Commit.ID), pr.Prefix) {
					mine = append(mine, rec.Commit.ID)
				}
			}
		}
		if len(mine) != 1 {
			return "", "", fmt.Errorf("%w: commit prefix %s matches %d commits of dot %s in the bucket; give more digits", dotmesh.ErrAmbiguous, pr.Prefix, len(matches), dr.dot)
		}
		matches = mine
	}
	if len(matches) == 0 {
		return "", "", &dotmesh.NotFoundError{Kind: dotmesh.KindCommit, Name: pr.Prefix, Dot: dr.dot}
	}
	return matches[0], "commit " + string(matches[0]), nil
}

// usedBlobs marks the blobs commits use: their trees' blobs and every
// chunk blob their trees name, each with the first commit found using
// it. Identical trees are read once. A tree that cannot be read goes to
// treeErr (with errTreeBlobMissing when a tree blob is not in the
// repository: then the caller knows which from the marks); an error it
// returns stops the walk.
func (r *Remote) usedBlobs(ctx context.Context, commits []commitOf, treeErr func(c commitOf, err error) error) (map[repo.ID]commitOf, error) {
	used := map[repo.ID]commitOf{}
	var mu sync.Mutex
	mark := func(id repo.ID, c commitOf) {
		if _, ok := used[id]; !ok {
			used[id] = c
		}
	}
	seen := map[string]bool{}
	g := newGroup(ctx, max(r.cfg.Parallel/2, 1))
	for _, c := range commits {
		var key strings.Builder
		mu.Lock()
		for _, id := range c.rec.Tree {
			key.Write(id[:])
			mark(id, c)
		}
		mu.Unlock()
		if seen[key.String()] {
			continue
		}
		seen[key.String()] = true
		has, err := r.repo.HasBlobs(ctx, c.rec.Tree)
		if err != nil {
			g.Wait()
			return nil, err
		}
		if slices.Contains(has, false) {
			if err := treeErr(c, errTreeBlobMissing); err != nil {
				g.Wait()
				return nil, err
			}
			continue
		}
		g.Go(func(ctx context.Context) error {
			var ids []repo.ID
			err := WalkTree(ctx, r.repo, c.rec, r.cfg.Parallel, func(te TreeEntry) error {
				return ChunkBlobs(r.repo, te, func(id repo.ID, _ uint32) error {
					ids = append(ids, id)
					return nil
				})
			})
			if err != nil {
				if !isDamage(err) {
					return err
				}
				return treeErr(c, err)
			}
			mu.Lock()
			for _, id := range ids {
				mark(id, c)
			}
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return used, nil
}

// errTreeBlobMissing: a blob of a commit's tree is not in the
// repository.
var errTreeBlobMissing = fmt.Errorf("%w: a blob of its tree is not in the repository", dotmesh.ErrCorrupt)

// commitOf is a commit record and the dot it belongs to.
type commitOf struct {
	dot dotmesh.DotName
	rec *CommitRecord
}
