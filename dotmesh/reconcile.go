package dotmesh

import (
	"context"
	"fmt"
	"strings"
)

// reconcile removes storage the registry does not know about: branches and
// commits whose data was written by an operation that died before its
// registry transaction. The registry is the source of truth, so after a
// crash every dot is at its old state or at a complete new one.
//
// Registry entries without data are left alone: in a cluster they are
// normal (not replicated to this node yet), and deleting metadata would
// lose history.
func (n *Node) reconcile(ctx context.Context) error {
	// Commits answered before a crash cut their registry transaction
	// short are recorded first, so that their data is known below.
	if err := n.replayJournals(ctx); err != nil {
		return err
	}
	// Records, then the dots being received, then the registered dots:
	// see dropOrphanRecords.
	records := make(map[string][]KV) // by prefix
	for _, prefix := range []string{commitsPrefix, replicasPrefix, incomingPrefix, grantsPrefix, visibilityPrefix, tagsPrefix} {
		kvs, err := n.store.List(ctx, prefix)
		if err != nil {
			return err
		}
		records[prefix] = kvs
	}
	staged, err := n.stagedDots(ctx) // commits of unfinished transfers are kept
	if err != nil {
		return err
	}
	dots, err := n.reg.dots(ctx)
	if err != nil {
		return err
	}
	dots = append(dots, staged...)
	if err := n.checkRegistryHeld(ctx, dots); err != nil {
		return err
	}
	if err := n.dropOrphanRecords(ctx, records, dots); err != nil {
		return err
	}
	known := make(map[BranchRef]map[CommitID]bool)
	dotBackend := make(map[DotID]string)
	type dotState struct {
		branches []*Branch
		commits  map[CommitID]*Commit
	}
	states := make(map[DotID]dotState, len(dots))
	for _, d := range dots {
		dotBackend[d.ID] = d.Backend
		branches, err := n.reg.branches(ctx, d.ID)
		if err != nil {
			return err
		}
		commits, err := n.reg.commits(ctx, d.ID)
		if err != nil {
			return err
		}
		states[d.ID] = dotState{branches, commits}
		for _, b := range branches {
			known[b.Ref()] = make(map[CommitID]bool)
		}
		for _, c := range commits {
			if m, ok := known[BranchRef{Dot: d.ID, Branch: c.Branch}]; ok {
				m[c.ID] = true
			} else {
				// The commit's branch was deleted but another branch still
				// needs its data: keep that storage.
				known[BranchRef{Dot: d.ID, Branch: c.Branch}] = map[CommitID]bool{c.ID: true}
			}
		}
	}
	for _, name := range n.BackendNames() {
		be := n.backends[name]
		refs, err := be.Branches(ctx)
		if err != nil {
			return fmt.Errorf("listing branches of backend %s: %w", name, err)
		}
		for _, ref := range refs {
			ids, err := be.Commits(ctx, ref)
			if err != nil {
				return fmt.Errorf("listing commits of %s: %w", ref, err)
			}
			commitsKnown, ok := known[ref]
			if !ok || dotBackend[ref.Dot] != name {
				// An interrupted create leaves storage without commits. Storage
				// with commits, or any storage when the registry is empty, more
				// likely means the wrong registry: never delete data for that.
				if len(ids) > 0 || len(dots) == 0 {
					n.log.WarnContext(ctx, "keeping branch storage the registry does not know; is this the right data directory and store?", "backend", name, "branch", ref.String(), "commits", len(ids))
					continue
				}
				n.log.WarnContext(ctx, "removing branch storage left by an interrupted operation", "backend", name, "branch", ref.String())
				if err := be.DeleteBranch(ctx, ref); err != nil {
					return fmt.Errorf("removing orphaned branch %s: %w", ref, err)
				}
				continue
			}
			for _, id := range ids {
				if commitsKnown[id] {
					continue
				}
				n.log.WarnContext(ctx, "removing commit data unknown to the registry (left by an interrupted commit)", "backend", name, "branch", ref.String(), "commit", id)
				if err := be.DeleteCommit(ctx, CommitRef{BranchRef: ref, ID: id}); err != nil {
					return fmt.Errorf("removing orphaned commit %s: %w", id, err)
				}
			}
		}
	}
	// Restores of working states that a crash interrupted are finished
	// (see restore.go), then working states that a crash left at another
	// commit than their head while nothing uncommitted is in them are
	// moved there (see HeadFollower).
	for _, d := range dots {
		st := states[d.ID]
		n.finishRestores(ctx, d, st.branches, st.commits)
	}
	for _, d := range dots {
		hf, ok := n.backends[d.Backend].(HeadFollower)
		if !ok {
			continue
		}
		st := states[d.ID]
		for _, b := range st.branches {
			if h := headRef(st.commits[b.Head]); h != nil {
				if err := hf.FollowHead(ctx, b.Ref(), *h); err != nil {
					n.log.WarnContext(ctx, "moving a working state to its branch's head", "branch", b.Ref().String(), "head", b.Head, "err", err)
				}
			}
		}
	}
	return nil
}

// dropOrphanRecords deletes the records (listed by prefix) of dots not in
// dots: DeleteDot removes commit and replica records after the dot, in
// batches, so a crash in between leaves some behind. Grants and
// visibility go with their dot; sweeping them too keeps a stray one from
// outliving it. The records must be
// listed before the dots being received (whose records come before the
// dot), and those before the registered dots, so that none of another
// node's work in progress looks orphaned: a record is written after its
// staged or registered dot, and a transfer turns its staged dot into a
// registered one atomically.
func (n *Node) dropOrphanRecords(ctx context.Context, records map[string][]KV, dots []*Dot) error {
	live := make(map[DotID]bool, len(dots))
	for _, d := range dots {
		live[d.ID] = true
	}
	var stale []string
	for prefix, kvs := range records {
		for _, kv := range kvs {
			id, _, ok := strings.Cut(strings.TrimPrefix(kv.Key, prefix), "/")
			if prefix == visibilityPrefix { // visibility/<dotid>: no record below the id
				id, ok = strings.TrimPrefix(kv.Key, prefix), true
			}
			if ok && !live[DotID(id)] {
				stale = append(stale, kv.Key)
			}
		}
	}
	if len(stale) > 0 {
		n.log.WarnContext(ctx, "removing records of deleted dots (left by an interrupted delete)", "records", len(stale))
	}
	return n.deleteKeys(ctx, stale)
}
