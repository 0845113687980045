package bucketremote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dotmesh-io/dotmesh/bucket/repo"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// State implements dotmesh.Transport: the dot's branch in the bucket,
// its history, every commit of the dot stored (also those a push sent
// without finishing: a re-run skips them), and its tags.
func (r *Remote) State(ctx context.Context, dot dotmesh.DotName, branch string, opts dotmesh.StateOptions) (*dotmesh.TransferState, error) {
	dot, err := checkNames(dot, branch)
	if err != nil {
		return nil, err
	}
	st := &dotmesh.TransferState{Backend: BackendName, Backends: []string{BackendName}, AcceptsTags: true, AcceptsNeutralBase: true}
	commits, err := LoadCommits(ctx, r.repo, dot, r.cfg.Parallel, &r.commits)
	if err != nil {
		return nil, err
	}
	for id := range commits {
		st.Have = append(st.Have, id)
	}
	slices.Sort(st.Have)
	br, _, err := r.branch(ctx, dot, branch)
	if err != nil {
		return nil, err
	}
	if br == nil {
		// The dot exists when it has a branch; commits alone are an
		// unfinished push (a node's staged dot).
		branches, err := r.repo.ListRefs(ctx, BranchRefPrefix(dot))
		if err != nil {
			return nil, err
		}
		st.Exists = len(branches) > 0
		return st, nil
	}
	st.Exists = true
	st.Branch = &dotmesh.Branch{Name: branch, Head: br.Head, Created: br.Created}
	chain := Ancestry(commits, br.Head)
	if len(chain) == 0 {
		return nil, fmt.Errorf("%w: branch %s of %s in the bucket is at commit %s, whose record is missing", dotmesh.ErrCorrupt, branch, dot, br.Head)
	}
	for i := len(chain) - 1; i >= 0; i-- {
		c := chain[i].Commit
		// Where the stored history starts although it has a parent (the
		// sender's was shallow, or gc pruned it), as a node marks it.
		c.Pruned = i == len(chain)-1 && c.Parent != "" && commits[c.Parent] == nil
		st.History = append(st.History, c)
	}
	tags, _, err := r.tags(ctx, dot)
	if err != nil {
		return nil, err
	}
	in := make(map[dotmesh.CommitID]bool, len(chain))
	for _, c := range chain {
		in[c.Commit.ID] = true
	}
	for _, t := range tags.Tags {
		if in[t.Commit] {
			st.Tags = append(st.Tags, t)
		}
	}
	return st, nil
}

// checkNames validates a dot's and a branch's names for the bucket.
func checkNames(dot dotmesh.DotName, branch string) (dotmesh.DotName, error) {
	dot, err := checkDot(dot)
	if err != nil {
		return dot, err
	}
	if err := dotmesh.ValidateName("branch", branch); err != nil {
		return dot, err
	}
	return dot, checkRecordName("branch", BranchRefName(dot, branch))
}

// branch reads branch's ref: nil when the bucket has no such branch.
func (r *Remote) branch(ctx context.Context, dot dotmesh.DotName, branch string) (*BranchRef, repo.RefState, error) {
	name := BranchRefName(dot, branch)
	st, err := r.repo.GetRef(ctx, name)
	if err != nil || !st.Exists {
		return nil, st, err
	}
	br, err := DecodeBranchRef(st.Data)
	if err != nil {
		return nil, st, fmt.Errorf("ref %s: %w", name, err)
	}
	return &br, st, nil
}

// tags reads dot's tags ref (empty when it has none).
func (r *Remote) tags(ctx context.Context, dot dotmesh.DotName) (TagsRef, repo.RefState, error) {
	name := TagsRefName(dot)
	st, err := r.repo.GetRef(ctx, name)
	if err != nil || !st.Exists {
		return TagsRef{Version: formatVersion}, st, err
	}
	tr, err := DecodeTagsRef(st.Data)
	if err != nil {
		return tr, st, fmt.Errorf("ref %s: %w", name, err)
	}
	return tr, st, nil
}

func encodeRef(v any) []byte {
	b, _ := json.Marshal(v) // plain data: cannot fail
	return b
}

// Finish implements dotmesh.Transport: one compare-and-swap of the
// branch's ref (ErrConflict when it moved since req.OldHead; a diverged
// head is kept on a new branch with req.Stash), then the tags it lacks.
func (r *Remote) Finish(ctx context.Context, dot dotmesh.DotName, branch string, req dotmesh.FinishRequest) (*dotmesh.FinishResult, error) {
	dot, err := checkNames(dot, branch)
	if err != nil {
		return nil, err
	}
	if err := dotmesh.ValidateID("head commit", string(req.Head), false); err != nil {
		return nil, err
	}
	if err := dotmesh.ValidateTransferTags(req.Tags); err != nil {
		return nil, err
	}
	if err := r.writeLock(ctx); err != nil {
		return nil, err
	}
	commits, err := LoadCommits(ctx, r.repo, dot, r.cfg.Parallel, &r.commits)
	if err != nil {
		return nil, err
	}
	if commits[req.Head] == nil {
		return nil, fmt.Errorf("%w: commit %s of %s has not arrived in the bucket; run the transfer again", dotmesh.ErrNotFound, req.Head, dot)
	}
	if chain := Ancestry(commits, req.Head); chain[len(chain)-1].Commit.Parent != "" && !chain[len(chain)-1].Commit.Pruned {
		return nil, fmt.Errorf("%w: the history of %s is incomplete in the bucket (%s is missing); run the transfer again", dotmesh.ErrNotFound, req.Head, chain[len(chain)-1].Commit.Parent)
	}
	res, err := r.moveBranch(ctx, dot, branch, commits, req)
	if err != nil {
		return nil, err
	}
	if len(req.Tags) > 0 {
		if res.Tags, res.SkippedTags, err = r.addTags(ctx, dot, commits, req.Tags); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// moveBranch makes or moves branch's ref to req.Head.
func (r *Remote) moveBranch(ctx context.Context, dot dotmesh.DotName, branch string, commits map[dotmesh.CommitID]*CommitRecord, req dotmesh.FinishRequest) (*dotmesh.FinishResult, error) {
	br, st, err := r.branch(ctx, dot, branch)
	if err != nil {
		return nil, err
	}
	now := r.now()
	res := &dotmesh.FinishResult{Head: req.Head}
	name := BranchRefName(dot, branch)
	if br == nil {
		if err := dotmesh.ValidateNewName("branch", branch); err != nil {
			return nil, err
		}
		tags, _, err := r.tags(ctx, dot)
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(tags.Tags, func(t dotmesh.Tag) bool { return t.Name == branch }) {
			return nil, fmt.Errorf("%w: %s in the bucket has a tag named %s; a branch cannot take its name", dotmesh.ErrAlreadyExists, dot, branch)
		}
		if err := r.swap(ctx, name, st.Version, BranchRef{Version: formatVersion, Head: req.Head, Created: now, Updated: now}, dot, branch, req.OldHead); err != nil {
			return nil, err
		}
		res.Created = true
		r.log.Info("bucket: created branch", "dot", dot.String(), "branch", branch, "head", req.Head)
		return res, nil
	}
	if br.Head != req.OldHead {
		return nil, movedError(dot, branch, req.OldHead, br.Head)
	}
	if br.Head == req.Head {
		return res, nil
	}
	var stash string
	if !inHistory(commits, req.Head, br.Head) {
		common := lastCommon(commits, req.Head, br.Head)
		if !req.Stash {
			return nil, &dotmesh.DivergedError{Dot: dot, Branch: branch, Common: common}
		}
		stash = dotmesh.StashBranchName(branch, now)
		if err := dotmesh.ValidateName("branch", stash); err != nil {
			return nil, fmt.Errorf("stashing the diverged commits of %s@%s: %w", dot, branch, err)
		}
		if err := checkRecordName("branch", BranchRefName(dot, stash)); err != nil {
			return nil, fmt.Errorf("stashing the diverged commits of %s@%s: %w", dot, branch, err)
		}
		// Version 0: the stash branch must be new.
		if _, err := r.repo.SetRef(ctx, BranchRefName(dot, stash), 0, encodeRef(BranchRef{Version: formatVersion, Head: br.Head, Created: now, Updated: now})); err != nil {
			if errors.Is(err, dotmesh.ErrConflict) {
				err = fmt.Errorf("%w: branch %s exists in the bucket already; run the transfer again", dotmesh.ErrAlreadyExists, stash)
			}
			return nil, fmt.Errorf("stashing the diverged commits of %s@%s: %w", dot, branch, err)
		}
		res.Stashed = stash
	}
	if err := r.swap(ctx, name, st.Version, BranchRef{Version: formatVersion, Head: req.Head, Created: br.Created, Updated: now}, dot, branch, req.OldHead); err != nil {
		if stash != "" {
			// The branch stays where it was, so the stash is not needed.
			if derr := r.repo.DeleteRef(context.WithoutCancel(ctx), BranchRefName(dot, stash), 1); derr != nil {
				r.log.Warn("bucket: removing a stash branch of a failed transfer", "dot", dot.String(), "branch", stash, "err", derr)
			}
		}
		return nil, err
	}
	if stash != "" {
		r.log.Info("bucket: stashed diverged commits", "dot", dot.String(), "branch", branch, "stash", stash)
	}
	r.log.Info("bucket: moved branch", "dot", dot.String(), "branch", branch, "head", req.Head)
	return res, nil
}

// swap moves ref name from version to br, after checking the lock: a
// lost lock may have let gc delete what the new head needs.
func (r *Remote) swap(ctx context.Context, name string, version uint64, br BranchRef, dot dotmesh.DotName, branch string, old dotmesh.CommitID) error {
	if err := r.lockErr(); err != nil {
		return err
	}
	_, err := r.repo.SetRef(ctx, name, version, encodeRef(br))
	var rc *repo.RefConflictError
	if errors.As(err, &rc) {
		// Another writer moved it since it was read: what a node says
		// of a branch that moved during a transfer.
		now, _, gerr := r.branch(ctx, dot, branch)
		head := dotmesh.CommitID("")
		if gerr == nil && now != nil {
			head = now.Head
		}
		return movedError(dot, branch, old, head)
	}
	return err
}

func movedError(dot dotmesh.DotName, branch string, from, to dotmesh.CommitID) error {
	return fmt.Errorf("%w: branch %s of %s moved from %s to %s during the transfer; run it again", dotmesh.ErrConflict, branch, dot, short(from), short(to))
}

func short(id dotmesh.CommitID) string {
	if id == "" {
		return "(no commit)"
	}
	return string(id)
}

// inHistory reports whether id is head or one of its ancestors.
func inHistory(commits map[dotmesh.CommitID]*CommitRecord, head, id dotmesh.CommitID) bool {
	return slices.ContainsFunc(Ancestry(commits, head), func(c *CommitRecord) bool { return c.Commit.ID == id })
}

// lastCommon returns the newest commit in both histories, or "".
func lastCommon(commits map[dotmesh.CommitID]*CommitRecord, a, b dotmesh.CommitID) dotmesh.CommitID {
	inA := map[dotmesh.CommitID]bool{}
	for _, c := range Ancestry(commits, a) {
		inA[c.Commit.ID] = true
	}
	for _, c := range Ancestry(commits, b) {
		if inA[c.Commit.ID] {
			return c.Commit.ID
		}
	}
	return ""
}

// addTags makes each of tags that names a stored commit and that the
// dot lacks; one of that name at another commit, or a branch of that
// name, is left alone and reported as skipped (as a node does). All go
// in one swap of the tags ref, retried when another writer added tags
// meanwhile.
func (r *Remote) addTags(ctx context.Context, dot dotmesh.DotName, commits map[dotmesh.CommitID]*CommitRecord, tags []dotmesh.Tag) (made, skipped []string, err error) {
	branches, err := r.repo.ListRefs(ctx, BranchRefPrefix(dot))
	if err != nil {
		return nil, nil, err
	}
	isBranch := map[string]bool{}
	for _, name := range branches {
		if rn, err := ParseRefName(name); err == nil {
			isBranch[rn.Branch] = true
		}
	}
	for attempt := 0; ; attempt++ {
		tr, st, err := r.tags(ctx, dot)
		if err != nil {
			return nil, nil, err
		}
		have := make(map[string]dotmesh.CommitID, len(tr.Tags))
		for _, t := range tr.Tags {
			have[t.Name] = t.Commit
		}
		made, skipped = nil, nil
		for _, t := range tags {
			if commits[t.Commit] == nil {
				continue // not in the bucket: the start of a shallow history was later
			}
			if at, ok := have[t.Name]; ok || isBranch[t.Name] {
				if !ok || at != t.Commit {
					skipped = append(skipped, t.Name)
				}
				continue
			}
			tr.Tags = append(tr.Tags, dotmesh.Tag{Name: t.Name, Commit: t.Commit, Author: t.Author, Message: t.Message, Created: t.Created})
			made = append(made, t.Name)
		}
		if len(made) == 0 {
			return nil, skipped, nil
		}
		slices.SortFunc(tr.Tags, func(a, b dotmesh.Tag) int { return strings.Compare(a.Name, b.Name) })
		tr.Version = formatVersion
		if err := r.lockErr(); err != nil {
			return nil, nil, err
		}
		_, err = r.repo.SetRef(ctx, TagsRefName(dot), st.Version, encodeRef(tr))
		if err == nil {
			r.log.Info("bucket: transfer tags", "dot", dot.String(), "made", len(made), "skipped", len(skipped))
			return made, skipped, nil
		}
		if !errors.Is(err, dotmesh.ErrConflict) || attempt == 9 {
			return nil, nil, fmt.Errorf("recording the tags of %s: %w", dot, err)
		}
	}
}

func (r *Remote) now() time.Time {
	if r.cfg.Repo.Now != nil {
		return r.cfg.Repo.Now().UTC()
	}
	return time.Now().UTC()
}
