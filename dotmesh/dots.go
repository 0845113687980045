package dotmesh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
)

// CreateDotOptions tune CreateDot.
type CreateDotOptions struct {
	// Backend names the storage backend; empty means the node's default.
	Backend string
}

// CreateDot creates a dot with an empty master branch.
func (n *Node) CreateDot(ctx context.Context, name DotName, opts CreateDotOptions) (*Dot, error) {
	if err := name.ValidateNew(); err != nil {
		return nil, err
	}
	return n.createDot(ctx, name, opts)
}

// createDot is CreateDot without the rules for new names; tests make dots
// with names those rules came to refuse.
func (n *Node) createDot(ctx context.Context, name DotName, opts CreateDotOptions) (*Dot, error) {
	if err := name.Validate(); err != nil {
		return nil, err
	}
	bname := opts.Backend
	if bname == "" {
		bname = n.def
	}
	be, ok := n.backends[bname]
	if !ok {
		return nil, fmt.Errorf("%w: backend %q is not available on this node; choose one of %s", ErrInvalidArgument, bname, strings.Join(n.BackendNames(), ", "))
	}
	if _, err := n.reg.dotID(ctx, name); err == nil {
		return nil, fmt.Errorf("%w: dot %s exists already", ErrAlreadyExists, name)
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	now := n.now().UTC()
	d := &Dot{ID: NewDotID(), Namespace: name.Namespace, Name: name.Name, Backend: bname, Current: DefaultBranch, Created: now}
	br := &Branch{Dot: d.ID, Name: DefaultBranch, Created: now, Master: n.nodeID()}
	// Storage first: if we die before the registry write, reconcile removes
	// the orphaned branch storage on the next start.
	if err := be.CreateBranch(ctx, br.Ref(), nil); err != nil {
		return nil, fmt.Errorf("creating storage for dot %s: %w", name, err)
	}
	_, err := n.store.Txn(ctx, []Condition{IfAbsent(nameKey(name))}, []Op{
		PutOp(nameKey(name), []byte(d.ID)),
		PutOp(dotKey(d.ID), encode(d)),
		PutOp(branchKey(d.ID, br.Name), encode(br)),
	})
	if err != nil {
		n.cleanupBranch(be, br.Ref())
		if errors.Is(err, ErrConflict) {
			return nil, fmt.Errorf("%w: dot %s exists already", ErrAlreadyExists, name)
		}
		return nil, err
	}
	n.log.InfoContext(ctx, "created dot", "dot", name.String(), "id", d.ID, "backend", bname)
	if err := n.relink(ctx, d.ID); err != nil {
		n.log.WarnContext(ctx, "making the stable path of a new dot", "dot", name.String(), "err", err)
	}
	return d, nil
}

// Dot returns a dot by name.
func (n *Node) Dot(ctx context.Context, name DotName) (*Dot, error) {
	if err := name.Validate(); err != nil {
		return nil, err
	}
	d, _, err := n.reg.dotByName(ctx, name)
	return d, err
}

// DotStatus summarises a dot for listings.
type DotStatus struct {
	Dot      *Dot     `json:"dot"`
	Branch   *Branch  `json:"branch"`   // the current branch
	Usage    Usage    `json:"usage"`    // of the current branch
	Commits  int      `json:"commits"`  // in the current branch's history
	Branches []string `json:"branches"` // all branch names, sorted
	Head     *Commit  `json:"head,omitempty"`
	Mounts   []Mount  `json:"mounts,omitempty"` // who uses the dot, for people
	Error    string   `json:"error,omitempty"`  // why Usage could not be read
}

// listConcurrency bounds the dots whose status ListDots reads at once.
const listConcurrency = 8

// ListDots returns the status of every dot, sorted by namespace and name.
func (n *Node) ListDots(ctx context.Context) ([]DotStatus, error) {
	kvs, err := listCached(ctx, n.store, dotsPrefix)
	if err != nil {
		return nil, err
	}
	dots, err := n.listedDots.decode(kvs)
	if err != nil {
		return nil, err
	}
	// One List per key space rather than three per dot: on etcd every
	// List is a round trip, and a team may have thousands of dots; on
	// etcd, from the store's copy in memory (CachedLister).
	var all dotRecords
	if kvs, err = listCached(ctx, n.store, branchesPrefix); err != nil {
		return nil, err
	}
	branches, err := n.listedBranches.decode(kvs)
	if err != nil {
		return nil, err
	}
	all.branches = byDot(kvs, branchesPrefix, branches)
	if all.hists, err = n.histories(ctx, dots, all.branches); err != nil {
		return nil, err
	}
	if all.mounts, err = listByDot[Mount](ctx, n.store, mountsPrefix); err != nil {
		return nil, err
	}
	// Each dot's usage may cost a round trip (a database source's
	// fingerprint, a zfs listing): a few at a time.
	ctx = n.beginUsage(ctx)
	out := make([]DotStatus, len(dots))
	errs := make([]error, len(dots))
	sem := make(chan struct{}, listConcurrency)
	var wg sync.WaitGroup
	for i, d := range dots {
		hist := all.hists[d.ID]
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			var st *DotStatus
			if st, errs[i] = n.statusOf(ctx, d, all.branches[d.ID], hist, all.mounts[d.ID]); st != nil {
				out[i] = *st
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	slices.SortFunc(out, func(a, b DotStatus) int {
		if c := strings.Compare(a.Dot.Namespace, b.Dot.Namespace); c != 0 {
			return c
		}
		return strings.Compare(a.Dot.Name, b.Dot.Name)
	})
	return out, nil
}

// dotRecords are registry records of every dot, by dot id.
type dotRecords struct {
	branches map[DotID][]*Branch
	hists    map[DotID]dotHist // of dots whose current branch has a head
	mounts   map[DotID][]*Mount
}

// maxPointDots bounds the dots whose commit records histories reads one
// dot at a time (one List each); more are read in one scan of them all.
const maxPointDots = 16

// histories returns the history count and head record of each dot's
// current branch that has a head: remembered (listcache.go) where the
// dot's records did not change, else read, one dot at a time when few
// are, else all dots' records in one scan.
func (n *Node) histories(ctx context.Context, dots []*Dot, branches map[DotID][]*Branch) (map[DotID]dotHist, error) {
	n.lists.start(n.store, n.log.Warn)
	out := make(map[DotID]dotHist, len(dots))
	var missing []dotHist
	var missingDots []DotID
	for _, d := range dots {
		for _, b := range branches[d.ID] {
			if b.Name != d.Current || b.Head == "" {
				continue
			}
			h, ok := n.lists.lookup(d.ID, b.Head)
			if ok {
				out[d.ID] = h
			} else {
				missing, missingDots = append(missing, h), append(missingDots, d.ID)
			}
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	var links map[DotID]commitLinks
	if len(missing) > maxPointDots {
		heads := make(map[CommitID]bool, len(missing))
		for _, h := range missing {
			heads[h.head] = true
		}
		var err error
		if links, err = linksByDot(ctx, n.store, heads); err != nil {
			return nil, err
		}
	} else {
		links = make(map[DotID]commitLinks, len(missing))
		for _, id := range missingDots {
			ls, err := n.reg.links(ctx, id)
			if err != nil {
				return nil, err
			}
			links[id] = ls
		}
	}
	for i, h := range missing {
		id := missingDots[i]
		ls := links[id]
		h.count = ls.count(h.head)
		if h.count > 0 {
			h.kv = ls[h.head].kv
		}
		out[id] = h
		n.lists.remember(id, h)
	}
	return out, nil
}

// groupByDot lists prefix ("<prefix><dotid>/...") and decodes each value,
// grouped by the dot id in its key.
func groupByDot[T any](ctx context.Context, s ClusterStore, prefix string) (map[DotID][]*T, error) {
	kvs, err := s.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	return groupKVs[T](kvs, prefix)
}

// listByDot is groupByDot for a listing shown to people (listCached).
func listByDot[T any](ctx context.Context, s ClusterStore, prefix string) (map[DotID][]*T, error) {
	kvs, err := listCached(ctx, s, prefix)
	if err != nil {
		return nil, err
	}
	return groupKVs[T](kvs, prefix)
}

// byDot groups vs, the decoded values of kvs of prefix, by the dot id in
// their keys.
func byDot[T any](kvs []KV, prefix string, vs []*T) map[DotID][]*T {
	out := make(map[DotID][]*T)
	for i, kv := range kvs {
		if id, _, ok := strings.Cut(strings.TrimPrefix(kv.Key, prefix), "/"); ok {
			out[DotID(id)] = append(out[DotID(id)], vs[i])
		}
	}
	return out
}

// groupKVs decodes kvs of prefix, grouped by the dot id in their keys.
func groupKVs[T any](kvs []KV, prefix string) (map[DotID][]*T, error) {
	out := make(map[DotID][]*T)
	for _, kv := range kvs {
		id, _, ok := strings.Cut(strings.TrimPrefix(kv.Key, prefix), "/")
		if !ok {
			continue
		}
		v, err := decode[T](kv)
		if err != nil {
			return nil, err
		}
		out[DotID(id)] = append(out[DotID(id)], v)
	}
	return out, nil
}

// linksByDot reads every dot's commit records, grouped by dot id: id and
// parent of each, and the whole record only of the commits keep names
// (the heads a listing shows). Through the store's Scanner (bbolt) the
// values are read where they lie, so a dot of 10,000 commits costs their
// ids, not a copy of every record.
func linksByDot(ctx context.Context, s ClusterStore, keep map[CommitID]bool) (map[DotID]commitLinks, error) {
	out := make(map[DotID]commitLinks)
	var cur DotID
	var ls commitLinks
	err := scanPrefix(ctx, s, commitsPrefix, func(key, value []byte) error {
		rest := key[len(commitsPrefix):]
		i := bytes.IndexByte(rest, '/')
		if i < 0 {
			return nil
		}
		if string(rest[:i]) != string(cur) || ls == nil {
			cur = DotID(rest[:i])
			if ls = out[cur]; ls == nil {
				ls = commitLinks{}
				out[cur] = ls
			}
		}
		id, parent, err := linkOf(key, value)
		if err != nil {
			return err
		}
		l := commitLink{parent: parent}
		if keep[id] {
			l.kv = KV{Key: string(key), Value: bytes.Clone(value)}
		}
		ls[id] = l
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Status returns one dot's status.
func (n *Node) Status(ctx context.Context, name DotName) (*DotStatus, error) {
	d, err := n.Dot(ctx, name)
	if err != nil {
		return nil, err
	}
	branches, err := n.reg.branches(ctx, d.ID)
	if err != nil {
		return nil, err
	}
	var hist dotHist
	for _, b := range branches {
		if b.Name == d.Current && b.Head != "" {
			commits, err := n.reg.links(ctx, d.ID)
			if err != nil {
				return nil, err
			}
			hist = dotHist{head: b.Head, count: commits.count(b.Head)}
			if hist.count > 0 {
				hist.kv = commits[b.Head].kv
			}
		}
	}
	ms, err := n.mounts(ctx, d.ID)
	if err != nil {
		return nil, err
	}
	mounts := make([]*Mount, len(ms))
	for i := range ms {
		mounts[i] = &ms[i]
	}
	return n.statusOf(ctx, d, branches, hist, mounts)
}

// statusOf is the status of dot d from its records; hist is its current
// branch's history (zero when the branch has no head).
func (n *Node) statusOf(ctx context.Context, d *Dot, branches []*Branch, hist dotHist, mounts []*Mount) (*DotStatus, error) {
	st := &DotStatus{Dot: d}
	for _, m := range mounts {
		st.Mounts = append(st.Mounts, *m)
	}
	sort.Slice(st.Mounts, func(i, j int) bool { return st.Mounts[i].Created.Before(st.Mounts[j].Created) })
	for _, b := range branches {
		st.Branches = append(st.Branches, b.Name)
		if b.Name == d.Current {
			st.Branch = b
		}
	}
	sort.Strings(st.Branches)
	if st.Branch == nil {
		return nil, fmt.Errorf("%w: dot %s's current branch %s is missing from the registry", ErrCorrupt, d.DotName(), d.Current)
	}
	if hist.head == st.Branch.Head && hist.count > 0 {
		st.Commits = hist.count
		var err error
		if st.Head, err = n.reg.cc.decode(hist.kv); err != nil {
			return nil, err
		}
	}
	if !n.place.local(st.Branch) {
		return st, nil // the working state is on the master node
	}
	be, err := n.backendOf(d)
	if err == nil {
		st.Usage, err = be.Usage(ctx, st.Branch.Ref(), headRef(st.Head))
	}
	if err != nil {
		st.Error = err.Error()
	}
	return st, nil
}

// DeleteDot removes a dot: its registry entries at once, then the storage
// of every branch. Nothing of another dot is touched.
func (n *Node) DeleteDot(ctx context.Context, name DotName) error {
	if err := name.Validate(); err != nil {
		return err
	}
	d, rev, err := n.reg.dotByName(ctx, name)
	if err != nil {
		return err
	}
	defer n.lockDot(d.ID)()
	branches, err := n.reg.branches(ctx, d.ID)
	if err != nil {
		return err
	}
	commits, err := n.reg.commits(ctx, d.ID)
	if err != nil {
		return err
	}
	mounts, err := n.mounts(ctx, d.ID)
	if err != nil {
		return err
	}
	if len(mounts) > 0 {
		return fmt.Errorf("%w: dot %s is used by %s; stop them first", ErrInUse, name, describeMounts(mounts))
	}
	grants, err := n.store.List(ctx, grantPrefix(d.ID))
	if err != nil {
		return err
	}
	ops := []Op{DeleteOp(nameKey(name)), DeleteOp(dotKey(d.ID)), DeleteOp(visibilityKey(d.ID)), DeleteOp(hooksKey(d.ID))}
	for _, b := range branches {
		ops = append(ops, DeleteOp(branchKey(d.ID, b.Name)))
	}
	// Its sharing goes with it, so a later dot of that name starts private;
	// grants beyond etcd's transaction size follow with the commit records
	// (no later dot has this id, so a grant left by a crash grants nothing).
	var staleGrants []string
	for _, g := range grants {
		if len(ops) < maxTxnOps {
			ops = append(ops, DeleteOp(g.Key))
		} else {
			staleGrants = append(staleGrants, g.Key)
		}
	}
	// Registry first: the dot vanishes atomically; storage left behind by a
	// crash after this point is removed by reconcile.
	if _, err := n.store.Txn(ctx, []Condition{IfRevision(dotKey(d.ID), rev)}, ops); err != nil {
		if errors.Is(err, ErrConflict) {
			return fmt.Errorf("%w: dot %s changed while deleting it; try again", ErrConflict, name)
		}
		return err
	}
	// Commit records go after, in batches: etcd caps a transaction at 128
	// operations by default, and a dot may have thousands of commits.
	// Nothing reads them once the dot is gone.
	stale := staleGrants
	for id := range commits {
		stale = append(stale, commitKey(d.ID, id))
	}
	stale = append(stale, n.place.replicaKeys(ctx, replicaPrefix(d.ID))...)
	if tags, err := n.store.List(ctx, tagPrefix(d.ID)); err == nil {
		for _, kv := range tags {
			stale = append(stale, kv.Key)
		}
	} // else reconcile drops them, as it does commit records left behind
	if err := n.deleteKeys(ctx, stale); err != nil {
		n.log.WarnContext(ctx, "removing commit records of a deleted dot", "dot", name.String(), "err", err)
	}
	if be, err := n.backendOf(d); err == nil {
		n.dropScratch(d.ID)
		for _, b := range storageBranches(branches, commits) {
			if err := be.DeleteBranch(ctx, BranchRef{Dot: d.ID, Branch: b}); err != nil {
				n.log.WarnContext(ctx, "removing branch storage of a deleted dot", "dot", name.String(), "branch", b, "err", err)
			}
		}
	}
	n.dropLink(name)
	n.log.InfoContext(ctx, "deleted dot", "dot", name.String(), "id", d.ID)
	return nil
}

// SubdotPath returns the host path of a subdot's working directory, named
// in the shared volume syntax, creating the subdot if needed. An empty
// branch means the dot's current branch.
func (n *Node) SubdotPath(ctx context.Context, v VolumeName) (string, error) {
	if err := ValidateSubdot(v.SubdotOrDefault()); err != nil {
		return "", err
	}
	d, b, _, err := n.resolveBranch(ctx, v.Dot, v.Branch)
	if err != nil {
		return "", err
	}
	if err := n.place.acquire(ctx, d, b.Name); err != nil {
		return "", err
	}
	be, err := n.backendOf(d)
	if err != nil {
		return "", err
	}
	return be.SubdotPath(ctx, b.Ref(), v.SubdotOrDefault())
}

// Subdots lists the subdots of a branch (the current one when empty).
func (n *Node) Subdots(ctx context.Context, name DotName, branch string) ([]string, error) {
	d, b, _, err := n.resolveBranch(ctx, name, branch)
	if err != nil {
		return nil, err
	}
	if !n.place.local(b) {
		return nil, fmt.Errorf("%w: the working state of %s@%s is on node %s; ask that node (using the branch here moves it)", ErrUnavailable, name, b.Name, b.Master)
	}
	be, err := n.backendOf(d)
	if err != nil {
		return nil, err
	}
	return be.Subdots(ctx, b.Ref())
}
