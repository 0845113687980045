package dotmesh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Replication: every node fetches every commit it lacks from a node that
// holds it, parents first, incrementally from the parent when it holds
// that, with the dot's backend's own stream. It runs when the registry's
// commits change and every SyncInterval, so a node that was down or cut
// off from etcd catches up by itself.

func (n *clustered) kickReplicator() {
	select {
	case n.cl.kick <- struct{}{}:
	default:
	}
}

func (n *clustered) replicator() {
	defer n.cl.done.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-n.cl.stop
		cancel()
	}()
	fresh := make(chan *Commit, 256)
	go n.watchCommits(ctx, fresh)
	t := time.NewTicker(n.cl.opts.SyncInterval)
	defer t.Stop()
	full := true
	for {
		if full {
			if err := n.sync(ctx); err != nil && ctx.Err() == nil {
				n.log.Warn("replication pass incomplete; retrying", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case c := <-fresh:
			// A new commit: fetch just it, without listing the dot's whole
			// history; anything unusual falls back to a full pass.
			full = n.replicateNew(ctx, c) != nil
		case <-n.cl.kick:
			full = true
		case <-t.C:
			full = true
		}
	}
}

// watchCommits passes new commits to the replicator, and wakes it for a
// full pass whenever a watch starts (changes before it are not seen) or
// it falls behind. It watches again when a watch is lost (etcd down,
// compaction).
func (n *clustered) watchCommits(ctx context.Context, fresh chan<- *Commit) {
	for ctx.Err() == nil {
		ch, err := n.store.Watch(ctx, commitsPrefix)
		if err == nil {
			n.kickReplicator()
			for ev := range ch {
				if ev.Type != EventPut {
					n.kickReplicator() // a delete: prune in a full pass
					continue
				}
				c, err := decode[Commit](ev.KV)
				if err != nil {
					n.kickReplicator()
					continue
				}
				select {
				case fresh <- c:
				default:
					n.kickReplicator()
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// replicateNew fetches one new commit whose parent this node holds.
func (n *clustered) replicateNew(ctx context.Context, c *Commit) error {
	me := n.cl.opts.NodeID
	d, _, err := n.reg.dot(ctx, c.Dot)
	if err != nil {
		return err
	}
	if _, ok := n.backends[d.Backend]; !ok {
		return nil
	}
	holders, err := n.holders(ctx, d.ID, c.ID)
	if err != nil {
		return err
	}
	reps := map[CommitID]map[string]bool{c.ID: {}}
	for _, h := range holders {
		reps[c.ID][h] = true
	}
	if reps[c.ID][me] {
		return nil
	}
	commits := map[CommitID]*Commit{c.ID: c}
	if c.Parent != "" && !c.Pruned { // a pruned commit's parent is gone: fetched whole
		kv, err := n.store.Get(ctx, commitKey(d.ID, c.Parent))
		if err != nil {
			return err
		}
		p, err := decode[Commit](kv)
		if err != nil {
			return err
		}
		if _, err := n.store.Get(ctx, replicaKey(d.ID, p.ID, me)); err != nil {
			return err // parent missing here too: a full pass fetches both
		}
		commits[p.ID] = p
		reps[p.ID] = map[string]bool{me: true}
	}
	return n.fetchCommit(ctx, d, c, commits, reps)
}

// Sync makes one replication pass over every dot: it fetches the commits
// this node lacks and drops data of commits the registry no longer has.
// It returns the first error after trying every dot.
func (c *Cluster) Sync(ctx context.Context) error { return c.n.place.sync(ctx) }

func (n *clustered) sync(ctx context.Context) error {
	n.cl.passMu.Lock()
	defer n.cl.passMu.Unlock()
	dots, err := n.reg.dots(ctx)
	if err != nil {
		return err
	}
	branches, err := groupByDot[Branch](ctx, n.store, branchesPrefix)
	if err != nil {
		return err
	}
	// Only dots with a commit this node does not hold, or a commit it
	// holds that is gone, have anything to fetch or prune: two keys-only
	// reads tell which, rather than two reads per dot and the decoding of
	// every commit record (a pass over 1,001 dots, one of 10,000 commits,
	// took 2.3 s of CPU, at every start, which fell on the listings
	// timed right after it). A change after these reads reaches its dot
	// through the watch or the next pass, as one after syncDot's own.
	ckeys, err := keysUnder(ctx, n.store, commitsPrefix)
	if err != nil {
		return err
	}
	rkeys, err := keysUnder(ctx, n.store, replicasPrefix)
	if err != nil {
		return err
	}
	work := syncWork(ckeys, rkeys, n.cl.opts.NodeID)
	var errs []error
	live := make(map[BranchRef]bool)
	for _, d := range dots {
		for _, b := range branches[d.ID] {
			live[b.Ref()] = true
		}
		if _, ok := n.backends[d.Backend]; !ok {
			continue // nothing to hold it in; `dm dot show` lists what we lack
		}
		if !work[d.ID] {
			continue
		}
		if err := n.syncDot(ctx, d); err != nil {
			errs = append(errs, fmt.Errorf("dot %s: %w", d.DotName(), err))
		}
	}
	errs = append(errs, n.dropDeleted(ctx, live))
	// Checkouts, deletions and moves made on other nodes: stable paths
	// follow them here too.
	errs = append(errs, n.relinkAll(ctx))
	return errors.Join(errs...)
}

// syncWork returns the dots that have a commit record without node's
// replica record, or node's replica record without a commit record:
// those syncDot would fetch or prune, from the keys of the commit and
// replica records ("commits/<dot>/<commit>", "replicas/<dot>/<commit>/<node>").
func syncWork(commitKeys, replicaKeys []string, node string) map[DotID]bool {
	commits := make(map[string]bool, len(commitKeys)) // "<dot>/<commit>"
	for _, k := range commitKeys {
		commits[strings.TrimPrefix(k, commitsPrefix)] = true
	}
	held := make(map[string]bool)
	for _, k := range replicaKeys {
		rest := strings.TrimPrefix(k, replicasPrefix)
		if i := strings.LastIndexByte(rest, '/'); i > 0 && rest[i+1:] == node {
			held[rest[:i]] = true
		}
	}
	out := make(map[DotID]bool)
	dot := func(c string) DotID {
		id, _, _ := strings.Cut(c, "/")
		return DotID(id)
	}
	for c := range commits {
		if !held[c] {
			out[dot(c)] = true
		}
	}
	for c := range held {
		if !commits[c] {
			out[dot(c)] = true
		}
	}
	return out
}

// dropDeleted removes local storage of dots and branches deleted on
// another node (their commits' data goes with the commit records, see
// pruneReplicas; a branch's working state only goes with it). Only
// branches this node saw registered in an earlier pass qualify: storage
// the registry never knew is reconcile's business, which keeps it.
func (n *clustered) dropDeleted(ctx context.Context, live map[BranchRef]bool) error {
	n.cl.mu.Lock()
	seen := n.cl.seen
	n.cl.seen = live
	n.cl.mu.Unlock()
	var errs []error
	for name, be := range n.backends {
		refs, err := be.Branches(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("listing branches of backend %s: %w", name, err))
			continue
		}
		for _, ref := range refs {
			if live[ref] || !seen[ref] {
				continue
			}
			unlock := n.lockDot(ref.Dot)
			d, _, err := n.reg.dot(ctx, ref.Dot)
			if errors.Is(err, ErrNotFound) {
				n.log.InfoContext(ctx, "removing storage of a dot deleted on another node", "branch", ref.String())
				errs = append(errs, be.DeleteBranch(ctx, ref))
			} else if err == nil {
				if held, err := n.storageInUse(ctx, d, ref.Branch); err == nil && !held {
					n.log.InfoContext(ctx, "removing storage of a branch deleted on another node", "branch", ref.String())
					errs = append(errs, be.DeleteBranch(ctx, ref))
				}
			}
			unlock()
		}
	}
	return errors.Join(errs...)
}

// replicaState reads a dot's commits and who holds each.
func (n *Node) replicaState(ctx context.Context, d DotID) (map[CommitID]*Commit, map[CommitID]map[string]bool, error) {
	commits, err := n.reg.commits(ctx, d)
	if err != nil {
		return nil, nil, err
	}
	reps, err := n.replicas(ctx, d)
	return commits, reps, err
}

func (n *clustered) syncDot(ctx context.Context, d *Dot) error {
	commits, reps, err := n.replicaState(ctx, d.ID)
	if err != nil {
		return err
	}
	me := n.cl.opts.NodeID
	for _, c := range oldestFirst(commits) {
		if reps[c.ID][me] {
			continue
		}
		if err := n.fetchCommit(ctx, d, c, commits, reps); err != nil {
			return err
		}
	}
	return n.pruneReplicas(ctx, d, commits, reps)
}

// ensureHeld fetches commit id and every ancestor this node lacks, so the
// node can make it a working state.
func (n *clustered) ensureHeld(ctx context.Context, d *Dot, id CommitID) error {
	if id == "" {
		return nil
	}
	commits, reps, err := n.replicaState(ctx, d.ID)
	if err != nil {
		return err
	}
	chain := ancestry(commits, id)
	for i := len(chain) - 1; i >= 0; i-- {
		if !reps[chain[i].ID][n.cl.opts.NodeID] {
			if err := n.fetchCommit(ctx, d, chain[i], commits, reps); err != nil {
				return err
			}
		}
	}
	return nil
}

// fetchCommit copies commit c's data from a live holder into the local
// backend and records the replica. reps is updated in place.
func (n *clustered) fetchCommit(ctx context.Context, d *Dot, c *Commit, commits map[CommitID]*Commit, reps map[CommitID]map[string]bool) error {
	me := n.cl.opts.NodeID
	be, err := n.backendOf(d)
	if err != nil {
		return err
	}
	// Under the dot lock: pruning and commits of this dot must not run
	// while its data changes.
	defer n.lockDot(d.ID)()
	if ids, err := be.Commits(ctx, c.Ref().BranchRef); err == nil && containsID(ids, c.ID) {
		// Data arrived before a crash could record it.
		return n.reg.putReplica(ctx, d.ID, c.ID, me)
	}
	var base *CommitRef
	var baseID *CommitID
	if p, ok := commits[c.Parent]; ok && reps[p.ID][me] {
		r := p.Ref()
		base, baseID = &r, &p.ID
	}
	var lastErr error
	for holder := range reps[c.ID] {
		if holder == me {
			continue
		}
		peer, err := n.peer(ctx, holder)
		if err != nil {
			lastErr = err
			continue
		}
		if err := n.fetchOnce(ctx, peer, holder, be, d, c, base, baseID); err != nil {
			lastErr = err
			continue
		}
		if err := n.reg.putReplica(ctx, d.ID, c.ID, me); err != nil {
			return err
		}
		if reps[c.ID] == nil {
			reps[c.ID] = make(map[string]bool)
		}
		reps[c.ID][me] = true
		n.log.InfoContext(ctx, "replicated commit", "dot", d.DotName().String(), "commit", c.ID, "from", holder, "incremental", base != nil)
		return nil
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("%w: no running node holds commit %s of %s", ErrUnavailable, short(c.ID), d.DotName())
	}
	return lastErr
}

// fetchOnce receives commit c from one holder. The dot lock is held
// meanwhile, so a holder that stops sending (hung, or cut off without a
// reset) must not stall it for ever: the fetch is cancelled once no data
// has arrived for FetchIdleTimeout, and another holder is tried.
func (n *clustered) fetchOnce(ctx context.Context, peer Peer, holder string, be StorageBackend, d *Dot, c *Commit, base *CommitRef, baseID *CommitID) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	idle := n.cl.opts.FetchIdleTimeout
	stalled := fmt.Errorf("%w: node %s sent nothing for %s", ErrUnavailable, holder, idle)
	timer := time.AfterFunc(idle, func() { cancel(stalled) })
	defer timer.Stop()
	rc, err := n.fetchFrom(ctx, peer, be, d, c, baseID)
	if err != nil {
		return fmt.Errorf("asking node %s for commit %s: %w", holder, short(c.ID), causeOr(ctx, err))
	}
	defer rc.Close()
	in := countedReader{rc, n.movedBytes(DirReceived)} // replication is received bytes too
	err = be.Receive(ctx, c.Ref(), base, &progressReader{r: in, progress: func() { timer.Reset(idle) }})
	if err != nil {
		return fmt.Errorf("receiving commit %s from node %s: %w", short(c.ID), holder, causeOr(ctx, err))
	}
	return nil
}

// causeOr prefers why ctx was cancelled (a stall) to the error it caused.
func causeOr(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return err
}

// progressReader calls progress whenever bytes arrive.
type progressReader struct {
	r        io.Reader
	progress func()
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.progress()
	}
	return n, err
}

// fetchFrom opens the stream of commit c from peer, leaving out the
// objects the local backend holds already when both sides can negotiate
// them (dump): an interrupted replication resumes instead of starting over.
func (n *Node) fetchFrom(ctx context.Context, peer Peer, be StorageBackend, d *Dot, c *Commit, base *CommitID) (io.ReadCloser, error) {
	format := FormatNative + d.Backend
	var have func(context.Context, []ObjectID) ([]bool, error)
	if neg, ok := be.(ObjectNegotiator); ok {
		have = func(ctx context.Context, ids []ObjectID) ([]bool, error) { return neg.HaveObjects(ctx, c.Ref(), ids) }
	}
	f, _, _, err := negotiate(ctx, peer, d.DotName(), *c, base, format, have)
	if err != nil {
		return nil, err
	}
	if f == nil {
		return peer.FetchCommit(ctx, d.DotName(), c.ID, base, format)
	}
	return peer.(ObjectTransport).FetchCommitWithout(ctx, d.DotName(), c.ID, base, format, f)
}

// pruneReplicas drops local data of commits the registry no longer has (a
// reset or branch delete on another node) and their replica records.
func (n *clustered) pruneReplicas(ctx context.Context, d *Dot, commits map[CommitID]*Commit, reps map[CommitID]map[string]bool) error {
	me := n.cl.opts.NodeID
	var gone []CommitID
	for id, holders := range reps {
		if holders[me] && commits[id] == nil {
			gone = append(gone, id)
		}
	}
	if len(gone) == 0 {
		return nil
	}
	be, err := n.backendOf(d)
	if err != nil {
		return err
	}
	defer n.lockDot(d.ID)()
	fresh, err := n.reg.commits(ctx, d.ID)
	if err != nil {
		return err
	}
	refs, err := be.Branches(ctx)
	if err != nil {
		return err
	}
	n.dropScratch(d.ID)
	for _, id := range gone {
		if fresh[id] != nil {
			continue
		}
		for _, ref := range refs {
			if ref.Dot != d.ID {
				continue
			}
			ids, err := be.Commits(ctx, ref)
			if err != nil || !containsID(ids, id) {
				continue
			}
			if err := be.DeleteCommit(ctx, CommitRef{BranchRef: ref, ID: id}); err != nil {
				n.log.WarnContext(ctx, "dropping data of a deleted commit", "commit", id, "err", err)
			}
		}
		if err := n.reg.deleteReplica(ctx, d.ID, id, me); err != nil {
			return err
		}
	}
	return nil
}

// reconcileReplicas makes this node's replica records say exactly what its
// backends hold: after a crash between storing data and recording it, or a
// lost data directory.
func (n *clustered) reconcileReplicas(ctx context.Context) error {
	me := n.cl.opts.NodeID
	held := make(map[DotID]map[CommitID]bool)
	for _, be := range n.backends {
		refs, err := be.Branches(ctx)
		if err != nil {
			return err
		}
		for _, ref := range refs {
			ids, err := be.Commits(ctx, ref)
			if err != nil {
				return err
			}
			for _, id := range ids {
				if held[ref.Dot] == nil {
					held[ref.Dot] = make(map[CommitID]bool)
				}
				held[ref.Dot][id] = true
			}
		}
	}
	dots, err := n.reg.dots(ctx)
	if err != nil {
		return err
	}
	for _, d := range dots {
		commits, err := n.reg.commits(ctx, d.ID)
		if err != nil {
			return err
		}
		reps, err := n.replicas(ctx, d.ID)
		if err != nil {
			return err
		}
		for id := range commits {
			has, recorded := held[d.ID][id], reps[id][me]
			switch {
			case has && !recorded:
				err = n.reg.putReplica(ctx, d.ID, id, me)
			case !has && recorded:
				n.log.WarnContext(ctx, "the registry says this node holds a commit its storage lacks; fetching it again", "dot", d.DotName().String(), "commit", id)
				err = n.reg.deleteReplica(ctx, d.ID, id, me)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func containsID(ids []CommitID, id CommitID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// masterError explains that a branch lives on another node that is gone.
func masterError(d *Dot, b *Branch, err error) error {
	return &MasterDownError{Dot: d.DotName(), Branch: b.Name, Node: b.Master}
}
