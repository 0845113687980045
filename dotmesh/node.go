package dotmesh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"
)

// Options configure a Node. Everything the engine needs is passed in here;
// nothing is read from the environment.
type Options struct {
	// Store is the registry of dots, branches and commits. Required.
	Store ClusterStore
	// Backends are the storage backends this node offers, keyed by their
	// Name. At least one is required.
	Backends []StorageBackend
	// DefaultBackend is used when a dot is created without naming one;
	// empty means the first of Backends.
	DefaultBackend string
	// Logger receives structured logs; nil means slog.Default().
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Cluster, when set, makes the node one of several sharing Store.
	Cluster *ClusterOptions
	// StepHook, when set, is called at each step of a journalled
	// operation ("marked", "restored", "recorded" of a working state's
	// restore, see restore.go), so that tests can cut one short there.
	// Nil in production.
	StepHook func(step string)
	// TransferPin is how long what an interrupted incoming transfer
	// received is kept for a re-run after its last byte arrived; then gc
	// removes it. 0 means DefaultTransferPin.
	TransferPin time.Duration
}

// Node is the dotmesh engine: every operation on dots, branches and commits,
// on top of a ClusterStore and one or more StorageBackends. It is safe for
// concurrent use; operations that change one dot are serialised.
//
// A Node owns the store and backends passed to it and closes them in Close.
type Node struct {
	reg      registry
	store    ClusterStore
	backends map[string]StorageBackend
	def      string
	log      *slog.Logger
	now      func() time.Time
	pin      time.Duration // Options.TransferPin
	recv     receiving

	place placement // standalone or clustered, chosen in NewNode
	self  string    // this node's id in its cluster, "" on a single node

	onRestoreStep func(step string)

	closeOnce sync.Once
	closeErr  error

	mu          sync.Mutex
	locks       map[DotID]*sync.Mutex
	controllers map[string]MountController
}

// NewNode checks the options, then reconciles what the backends hold with
// the store, so that storage left behind by an interrupted operation (a
// SIGKILL mid-commit, say) is removed before the node serves anything.
func NewNode(ctx context.Context, opts Options) (*Node, error) {
	if opts.Store == nil {
		return nil, fmt.Errorf("%w: dotmesh.Options.Store is required", ErrInvalidArgument)
	}
	if len(opts.Backends) == 0 {
		return nil, fmt.Errorf("%w: dotmesh.Options.Backends needs at least one backend", ErrInvalidArgument)
	}
	n := &Node{
		backends: make(map[string]StorageBackend, len(opts.Backends)),
		def:      opts.DefaultBackend,
		log:      opts.Logger,
		now:      opts.Now,
		pin:      opts.TransferPin,
		locks:    make(map[DotID]*sync.Mutex),
		place:    standalone{}, // until the cluster starts, after reconcile

		onRestoreStep: opts.StepHook,
	}
	if opts.Cluster != nil {
		n.self = opts.Cluster.NodeID
	}
	if n.log == nil {
		n.log = slog.Default()
	}
	ks := newKeepingStore(opts.Store, n)
	ks.off = opts.Cluster != nil
	n.store, n.reg = ks, registry{ks}
	if n.now == nil {
		n.now = time.Now
	}
	if n.pin < 0 {
		return nil, fmt.Errorf("%w: the transfer pin time must not be negative", ErrInvalidArgument)
	}
	if n.pin == 0 {
		n.pin = DefaultTransferPin
	}
	for _, b := range opts.Backends {
		if _, dup := n.backends[b.Name()]; dup {
			return nil, fmt.Errorf("%w: backend %q given twice", ErrInvalidArgument, b.Name())
		}
		n.backends[b.Name()] = b
	}
	if n.def == "" {
		n.def = opts.Backends[0].Name()
	}
	if _, ok := n.backends[n.def]; !ok {
		return nil, fmt.Errorf("%w: default backend %q is not among the node's backends (%s)", ErrInvalidArgument, n.def, strings.Join(n.BackendNames(), ", "))
	}
	if err := n.reconcile(ctx); errors.Is(err, ErrRegistryLost) {
		return nil, err
	} else if err != nil {
		return nil, fmt.Errorf("reconciling storage with the registry: %w", err)
	}
	if opts.Cluster != nil {
		c, err := startCluster(ctx, n, *opts.Cluster)
		if err != nil {
			return nil, err
		}
		n.place = c
	}
	return n, nil
}

// Close leaves the cluster, then closes the backends and the store.
// Closing again does nothing.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.place.stop()
		var errs []error
		for _, b := range n.backends {
			errs = append(errs, b.Close())
		}
		errs = append(errs, n.store.Close())
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}

// BackendNames lists the node's backends, sorted.
func (n *Node) BackendNames() []string {
	names := make([]string, 0, len(n.backends))
	for name := range n.backends {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Backend returns the named backend, for optional capabilities.
func (n *Node) Backend(name string) (StorageBackend, bool) {
	b, ok := n.backends[name]
	return b, ok
}

// lockDot serialises changes to one dot on this node. Across nodes, the
// store's compare-and-swap keeps the registry consistent.
func (n *Node) lockDot(id DotID) func() {
	n.mu.Lock()
	l, ok := n.locks[id]
	if !ok {
		l = new(sync.Mutex)
		n.locks[id] = l
	}
	n.mu.Unlock()
	l.Lock()
	return l.Unlock
}

func (n *Node) backendOf(d *Dot) (StorageBackend, error) {
	b, ok := n.backends[d.Backend]
	if !ok {
		return nil, fmt.Errorf("%w: dot %s lives on backend %q, which this node does not run (it has %s)", ErrNotSupported, d.DotName(), d.Backend, strings.Join(n.BackendNames(), ", "))
	}
	return b, nil
}

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
	br := &Branch{Dot: d.ID, Name: DefaultBranch, Created: now, Master: n.NodeID()}
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
	n.log.Info("created dot", "dot", name.String(), "id", d.ID, "backend", bname)
	return d, nil
}

func (n *Node) cleanupBranch(be StorageBackend, b BranchRef) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := be.DeleteBranch(ctx, b); err != nil {
		n.log.Warn("removing storage after a failed operation", "branch", b.String(), "err", err)
	}
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
	dots, err := n.reg.dots(ctx)
	if err != nil {
		return nil, err
	}
	// One List per key space rather than three per dot: on etcd every
	// List is a round trip, and a team may have thousands of dots.
	var all dotRecords
	if all.branches, err = groupByDot[Branch](ctx, n.store, branchesPrefix); err != nil {
		return nil, err
	}
	if all.commits, err = groupByDot[Commit](ctx, n.store, commitsPrefix); err != nil {
		return nil, err
	}
	if all.mounts, err = groupByDot[Mount](ctx, n.store, mountsPrefix); err != nil {
		return nil, err
	}
	// Each dot's usage may cost a round trip (a database source's
	// fingerprint, a zfs listing): a few at a time.
	out := make([]DotStatus, len(dots))
	errs := make([]error, len(dots))
	sem := make(chan struct{}, listConcurrency)
	var wg sync.WaitGroup
	for i, d := range dots {
		commits := make(map[CommitID]*Commit, len(all.commits[d.ID]))
		for _, c := range all.commits[d.ID] {
			commits[c.ID] = c
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			var st *DotStatus
			if st, errs[i] = n.statusOf(ctx, d, all.branches[d.ID], commits, all.mounts[d.ID]); st != nil {
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
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Dot, out[j].Dot
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	return out, nil
}

// dotRecords are registry records of every dot, by dot id.
type dotRecords struct {
	branches map[DotID][]*Branch
	commits  map[DotID][]*Commit
	mounts   map[DotID][]*Mount
}

// groupByDot lists prefix ("<prefix><dotid>/...") and decodes each value,
// grouped by the dot id in its key.
func groupByDot[T any](ctx context.Context, s ClusterStore, prefix string) (map[DotID][]*T, error) {
	kvs, err := s.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
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
	commits, err := n.reg.commits(ctx, d.ID)
	if err != nil {
		return nil, err
	}
	ms, err := n.mounts(ctx, d.ID)
	if err != nil {
		return nil, err
	}
	mounts := make([]*Mount, len(ms))
	for i := range ms {
		mounts[i] = &ms[i]
	}
	return n.statusOf(ctx, d, branches, commits, mounts)
}

func (n *Node) statusOf(ctx context.Context, d *Dot, branches []*Branch, commits map[CommitID]*Commit, mounts []*Mount) (*DotStatus, error) {
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
	chain := ancestry(commits, st.Branch.Head)
	st.Commits = len(chain)
	if len(chain) > 0 {
		st.Head = chain[0]
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

func headRef(c *Commit) *CommitRef {
	if c == nil {
		return nil
	}
	r := c.Ref()
	return &r
}

// ancestry returns the commits reachable from head by parent links, newest
// first. It stops at a missing commit (not replicated here yet).
func ancestry(commits map[CommitID]*Commit, head CommitID) []*Commit {
	var out []*Commit
	seen := make(map[CommitID]bool)
	for id := head; id != ""; {
		c, ok := commits[id]
		if !ok || seen[id] {
			break
		}
		seen[id] = true
		out = append(out, c)
		id = c.Parent
	}
	return out
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
	ops := []Op{DeleteOp(nameKey(name)), DeleteOp(dotKey(d.ID))}
	for _, b := range branches {
		ops = append(ops, DeleteOp(branchKey(d.ID, b.Name)))
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
	var stale []string
	for id := range commits {
		stale = append(stale, commitKey(d.ID, id))
	}
	stale = append(stale, n.place.replicaKeys(ctx, replicaPrefix(d.ID))...)
	if err := n.deleteKeys(ctx, stale); err != nil {
		n.log.Warn("removing commit records of a deleted dot", "dot", name.String(), "err", err)
	}
	if be, err := n.backendOf(d); err == nil {
		for _, b := range storageBranches(branches, commits) {
			if err := be.DeleteBranch(ctx, BranchRef{Dot: d.ID, Branch: b}); err != nil {
				n.log.Warn("removing branch storage of a deleted dot", "dot", name.String(), "branch", b, "err", err)
			}
		}
	}
	n.log.Info("deleted dot", "dot", name.String(), "id", d.ID)
	return nil
}

// deleteKeys deletes keys in transactions of at most maxTxnOps.
func (n *Node) deleteKeys(ctx context.Context, keys []string) error {
	for len(keys) > 0 {
		k := min(len(keys), maxTxnOps)
		ops := make([]Op, 0, k)
		for _, key := range keys[:k] {
			ops = append(ops, DeleteOp(key))
		}
		if _, err := n.store.Txn(ctx, nil, ops); err != nil {
			return err
		}
		keys = keys[k:]
	}
	return nil
}

// maxTxnOps keeps transactions within etcd's default --max-txn-ops.
const maxTxnOps = 100

// Branches lists a dot's branches, sorted by name.
func (n *Node) Branches(ctx context.Context, name DotName) ([]*Branch, error) {
	d, err := n.Dot(ctx, name)
	if err != nil {
		return nil, err
	}
	bs, err := n.reg.branches(ctx, d.ID)
	if err != nil {
		return nil, err
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].Name < bs[j].Name })
	return bs, nil
}

// resolveBranch returns the dot and the named branch, or the current
// branch when branch is empty.
func (n *Node) resolveBranch(ctx context.Context, name DotName, branch string) (*Dot, *Branch, int64, error) {
	d, err := n.Dot(ctx, name)
	if err != nil {
		return nil, nil, 0, err
	}
	if branch == "" {
		branch = d.Current
	} else if err := ValidateName("branch", branch); err != nil {
		return nil, nil, 0, err
	}
	b, rev, err := n.reg.branch(ctx, d, branch)
	if err != nil {
		return nil, nil, 0, err
	}
	return d, b, rev, nil
}

// CreateBranch makes branch newName of a dot from the commit that from
// names (a ref, resolved on the current branch; empty means its HEAD). The
// new branch's history is its origin's.
func (n *Node) CreateBranch(ctx context.Context, name DotName, newName, from string) (*Branch, error) {
	if err := ValidateNewName("branch", newName); err != nil {
		return nil, err
	}
	d, err := n.Dot(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := n.place.prefetch(ctx, d, d.Current, from); err != nil {
		return nil, err
	}
	defer n.lockDot(d.ID)()
	return n.createBranch(ctx, d, newName, d.Current, from)
}

// prefetch fetches the commit ref names on branch, in a cluster, before
// the dot lock is taken (fetching takes it too).
func (n *clustered) prefetch(ctx context.Context, d *Dot, branch, ref string) error {
	if ref == "" {
		ref = "HEAD"
	}
	b, _, err := n.reg.branch(ctx, d, branch)
	if err != nil {
		return err
	}
	c, err := n.resolve(ctx, d, b, ref)
	if err != nil {
		return err
	}
	return n.ensureHeld(ctx, d, c.ID)
}

func (n *Node) createBranch(ctx context.Context, d *Dot, newName, srcBranch, from string) (*Branch, error) {
	if _, _, err := n.reg.branch(ctx, d, newName); err == nil {
		return nil, fmt.Errorf("%w: dot %s has a branch %s already", ErrAlreadyExists, d.DotName(), newName)
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	src, _, err := n.reg.branch(ctx, d, srcBranch)
	if err != nil {
		return nil, err
	}
	if from == "" {
		from = "HEAD"
	}
	origin, err := n.resolve(ctx, d, src, from)
	if err != nil {
		return nil, err
	}
	be, err := n.backendOf(d)
	if err != nil {
		return nil, err
	}
	br := &Branch{Dot: d.ID, Name: newName, Head: origin.ID, Origin: origin.ID, Created: n.now().UTC(), Master: n.NodeID()}
	if err := n.place.ensureHeldLocked(ctx, d, origin.ID); err != nil {
		return nil, err
	}
	ref := origin.Ref()
	if err := be.CreateBranch(ctx, br.Ref(), &ref); err != nil {
		return nil, fmt.Errorf("creating storage for branch %s of %s: %w", newName, d.DotName(), err)
	}
	if _, err := n.store.Txn(ctx, []Condition{IfAbsent(branchKey(d.ID, newName))}, []Op{PutOp(branchKey(d.ID, newName), encode(br))}); err != nil {
		n.cleanupBranch(be, br.Ref())
		if errors.Is(err, ErrConflict) {
			return nil, fmt.Errorf("%w: dot %s has a branch %s already", ErrAlreadyExists, d.DotName(), newName)
		}
		return nil, err
	}
	n.log.Info("created branch", "dot", d.DotName().String(), "branch", newName, "from", origin.ID)
	return br, nil
}

// CheckoutOptions tune Checkout.
type CheckoutOptions struct {
	// Create makes the branch from the current branch's HEAD first.
	Create bool
	// Restart stops and starts consumers of unpinned mounts (which follow
	// the current branch) around the switch; without it, Checkout refuses
	// while there are any.
	Restart bool
}

// Checkout makes branch the dot's current branch. Every branch keeps its
// own working state, so nothing is discarded.
func (n *Node) Checkout(ctx context.Context, name DotName, branch string, opts CheckoutOptions) (*Dot, error) {
	if err := ValidateName("branch", branch); err != nil {
		return nil, err
	}
	d, err := n.Dot(ctx, name)
	if err != nil {
		return nil, err
	}
	if d.Current == branch && !opts.Create {
		return d, nil
	}
	if opts.Create {
		if err := n.place.prefetch(ctx, d, d.Current, "HEAD"); err != nil {
			return nil, err
		}
	}
	restart, err := n.guardMounts(ctx, d, "", "checkout", opts.Restart)
	if err != nil {
		return nil, err
	}
	defer restart() // after the lock below is released: consumers mount again
	return n.checkout(ctx, d, branch, opts.Create)
}

func (n *Node) checkout(ctx context.Context, d *Dot, branch string, create bool) (*Dot, error) {
	defer n.lockDot(d.ID)()
	name := d.DotName()
	d, rev, err := n.reg.dot(ctx, d.ID)
	if err != nil {
		return nil, err
	}
	if create {
		if _, err := n.createBranch(ctx, d, branch, d.Current, "HEAD"); err != nil {
			return nil, err
		}
	} else if _, _, err := n.reg.branch(ctx, d, branch); err != nil {
		return nil, err
	}
	d.Current = branch
	if _, err := n.reg.putDot(ctx, d, rev); err != nil {
		if errors.Is(err, ErrConflict) {
			return nil, fmt.Errorf("%w: dot %s changed during checkout; try again", ErrConflict, name)
		}
		return nil, err
	}
	return d, nil
}

// CommitOptions describe a new commit.
type CommitOptions struct {
	Message  string
	Author   string
	Metadata map[string]string
}

// Commit snapshots every subdot of a branch (the current one when branch
// is empty) atomically and makes it the branch's new head. Commits on one
// branch are serialised; a commit with no changes is allowed.
func (n *Node) Commit(ctx context.Context, name DotName, branch string, opts CommitOptions) (*Commit, error) {
	if strings.TrimSpace(opts.Message) == "" {
		return nil, fmt.Errorf("%w: a commit needs a message (-m)", ErrInvalidArgument)
	}
	for k := range opts.Metadata {
		if err := ValidateName("metadata key", k); err != nil {
			return nil, err
		}
	}
	d, b, _, err := n.resolveBranch(ctx, name, branch)
	if err != nil {
		return nil, err
	}
	if err := n.place.acquire(ctx, d, b.Name); err != nil {
		return nil, err
	}
	defer n.lockDot(d.ID)()
	d, b, rev, err := n.resolveBranch(ctx, name, b.Name)
	if err != nil {
		return nil, err
	}
	if err := n.place.checkMaster(d, b); err != nil {
		return nil, err
	}
	return n.commitLocked(ctx, d, b, rev, opts)
}

// checkMaster refuses writes to a branch whose working state is not
// here (it moved away after acquire), or that is being handed over.
func (n *clustered) checkMaster(d *Dot, b *Branch) error {
	if b.Master != n.cl.opts.NodeID {
		return fmt.Errorf("%w: branch %s of %s moved to node %s meanwhile; try again", ErrConflict, b.Name, d.DotName(), b.Master)
	}
	if b.Moving != "" {
		return fmt.Errorf("%w: branch %s of %s is being moved to node %s; use it there", ErrConflict, b.Name, d.DotName(), b.Moving)
	}
	return nil
}

// commitLocked is Commit for callers that hold the dot lock and read b at
// revision rev.
func (n *Node) commitLocked(ctx context.Context, d *Dot, b *Branch, rev int64, opts CommitOptions) (*Commit, error) {
	name := d.DotName()
	if err := checkRestored(d, b); err != nil {
		return nil, err
	}
	be, err := n.backendOf(d)
	if err != nil {
		return nil, err
	}
	c := &Commit{
		ID: NewCommitID(), Dot: d.ID, Branch: b.Name, Parent: b.Head,
		Author: opts.Author, Time: n.now().UTC(), Message: opts.Message, Metadata: opts.Metadata,
	}
	// Data first, then one registry transaction that records the commit and
	// moves the head. A crash in between leaves commit data the registry
	// does not know, which reconcile deletes: the old head stays.
	info, err := be.Commit(ctx, c.Ref())
	if err != nil {
		return nil, fmt.Errorf("committing %s@%s: %w", name, b.Name, err)
	}
	c.Info = info
	b.Head = c.ID
	_, err = n.store.Txn(ctx,
		[]Condition{IfRevision(branchKey(d.ID, b.Name), rev), IfAbsent(commitKey(d.ID, c.ID))},
		append([]Op{PutOp(commitKey(d.ID, c.ID), encode(c)), PutOp(branchKey(d.ID, b.Name), encode(b))}, n.place.replicaOps(d.ID, c.ID)...))
	if err != nil {
		if derr := be.DeleteCommit(context.WithoutCancel(ctx), c.Ref()); derr != nil {
			n.log.Warn("removing data of a commit the registry refused", "commit", c.ID, "err", derr)
		}
		if errors.Is(err, ErrConflict) {
			return nil, fmt.Errorf("%w: branch %s of %s moved while committing; try again", ErrConflict, b.Name, name)
		}
		return nil, err
	}
	n.log.Info("committed", "dot", name.String(), "branch", b.Name, "commit", c.ID)
	return c, nil
}

// Log returns the history of a branch (the current one when branch is
// empty), newest first; limit <= 0 means all.
func (n *Node) Log(ctx context.Context, name DotName, branch string, limit int) ([]*Commit, error) {
	d, b, _, err := n.resolveBranch(ctx, name, branch)
	if err != nil {
		return nil, err
	}
	commits, err := n.reg.commits(ctx, d.ID)
	if err != nil {
		return nil, err
	}
	chain := ancestry(commits, b.Head)
	markPruned(commits, chain)
	if limit > 0 && len(chain) > limit {
		chain = chain[:limit]
	}
	return chain, nil
}

// ResolveRef resolves a ref (HEAD^, HEAD~2, an id prefix...) in the history
// of a branch (the current one when branch is empty).
func (n *Node) ResolveRef(ctx context.Context, name DotName, branch, ref string) (*Commit, error) {
	d, b, _, err := n.resolveBranch(ctx, name, branch)
	if err != nil {
		return nil, err
	}
	return n.resolve(ctx, d, b, ref)
}

func (n *Node) resolve(ctx context.Context, d *Dot, b *Branch, ref string) (*Commit, error) {
	r, err := ParseRef(ref)
	if err != nil {
		return nil, err
	}
	commits, err := n.reg.commits(ctx, d.ID)
	if err != nil {
		return nil, err
	}
	chain := ancestry(commits, b.Head)
	if len(chain) == 0 {
		return nil, &NoCommitsError{Dot: d.DotName(), Branch: b.Name}
	}
	start := 0
	if r.Prefix != "" {
		var matches []int
		for i, c := range chain {
			if strings.HasPrefix(string(c.ID), r.Prefix) {
				matches = append(matches, i)
			}
		}
		switch {
		case len(matches) > 1:
			return nil, fmt.Errorf("%w: commit prefix %s matches %d commits of branch %s; give more digits", ErrAmbiguous, r.Prefix, len(matches), b.Name)
		case len(matches) == 0:
			for id := range commits {
				if strings.HasPrefix(string(id), r.Prefix) {
					return nil, fmt.Errorf("%w: commit %s is not in the history of branch %s of %s", ErrNotFound, id, b.Name, d.DotName())
				}
			}
			return nil, &NotFoundError{Kind: KindCommit, Name: r.Prefix, Dot: d.DotName()}
		}
		start = matches[0]
	}
	if start+r.Back >= len(chain) {
		return nil, fmt.Errorf("%w: %s goes back %d commits, but branch %s has only %d before it", ErrNotFound, ref, r.Back, b.Name, len(chain)-1-start)
	}
	return chain[start+r.Back], nil
}

// ResetOptions tune Reset.
type ResetOptions struct {
	// Hard discards uncommitted changes. Without it, Reset refuses when the
	// branch has any.
	Hard bool
	// Restart stops and starts consumers of the branch's mounts around the
	// reset; without it, Reset refuses while there are any.
	Restart bool
}

// Reset moves a branch (the current one when branch is empty) back to the
// commit ref names, restoring its working state to that commit. Commits
// that no branch can reach any more are deleted; other branches' commits
// are never touched.
func (n *Node) Reset(ctx context.Context, name DotName, branch, ref string, opts ResetOptions) (*Commit, error) {
	d, b, _, err := n.resolveBranch(ctx, name, branch)
	if err != nil {
		return nil, err
	}
	if _, err := n.resolve(ctx, d, b, ref); err != nil {
		return nil, err // a bad ref must not stop anybody's containers
	}
	if err := n.place.acquire(ctx, d, b.Name); err != nil {
		return nil, err
	}
	restart, err := n.guardMounts(ctx, d, b.Name, "reset", opts.Restart)
	if err != nil {
		return nil, err
	}
	defer restart() // after the lock in reset is released: consumers mount again
	return n.reset(ctx, name, b.Name, ref, opts)
}

func (n *Node) reset(ctx context.Context, name DotName, branch, ref string, opts ResetOptions) (*Commit, error) {
	d, err := n.Dot(ctx, name)
	if err != nil {
		return nil, err
	}
	defer n.lockDot(d.ID)()
	d, b, rev, err := n.resolveBranch(ctx, name, branch)
	if err != nil {
		return nil, err
	}
	if err := n.place.checkMaster(d, b); err != nil {
		return nil, err
	}
	target, err := n.resolve(ctx, d, b, ref)
	if err != nil {
		return nil, err
	}
	be, err := n.backendOf(d)
	if err != nil {
		return nil, err
	}
	commits, err := n.reg.commits(ctx, d.ID)
	if err != nil {
		return nil, err
	}
	if !opts.Hard {
		u, err := be.Usage(ctx, b.Ref(), headRef(commits[b.Head]))
		if err != nil {
			return nil, err
		}
		if u.Dirty {
			return nil, fmt.Errorf("%w: branch %s of %s has %d uncommitted bytes; commit them or use --hard to discard them", ErrDirty, b.Name, name, u.DirtyBytes)
		}
	}
	orphans, err := n.restoreLocked(ctx, be, d, b, rev, target)
	if err != nil {
		return nil, err
	}
	n.log.Info("reset", "dot", name.String(), "branch", b.Name, "to", target.ID, "dropped", len(orphans))
	return target, nil
}

// orphansAfterReset lists the commits reachable from b's old head that no
// branch reaches once b points at target.
func (n *Node) orphansAfterReset(ctx context.Context, d *Dot, b *Branch, target *Commit, commits map[CommitID]*Commit) []*Commit {
	keep := make(map[CommitID]bool)
	for _, c := range ancestry(commits, target.ID) {
		keep[c.ID] = true
	}
	branches, err := n.reg.branches(ctx, d.ID)
	if err != nil {
		return nil // keeping too much is safe; the next reset or GC retries
	}
	for _, other := range branches {
		if other.Name == b.Name {
			continue
		}
		for _, c := range ancestry(commits, other.Head) {
			keep[c.ID] = true
		}
		keep[other.Origin] = true
	}
	var out []*Commit
	for _, c := range ancestry(commits, b.Head) {
		if !keep[c.ID] {
			out = append(out, c)
		}
	}
	return out
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

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// DeleteBranch removes a branch that is not the dot's current one, with
// the commits only it reaches.
func (n *Node) DeleteBranch(ctx context.Context, name DotName, branch string) error {
	if err := ValidateName("branch", branch); err != nil {
		return err
	}
	d, err := n.Dot(ctx, name)
	if err != nil {
		return err
	}
	defer n.lockDot(d.ID)()
	d, b, rev, err := n.resolveBranch(ctx, name, branch)
	if err != nil {
		return err
	}
	if d.Current == b.Name {
		return fmt.Errorf("%w: branch %s is the current branch of %s; check out another branch first", ErrInUse, b.Name, name)
	}
	be, err := n.backendOf(d)
	if err != nil {
		return err
	}
	commits, err := n.reg.commits(ctx, d.ID)
	if err != nil {
		return err
	}
	branches, err := n.reg.branches(ctx, d.ID)
	if err != nil {
		return err
	}
	// Data of a branch lives in its storage, so a branch others were made
	// from cannot go before them (git can, having one object store).
	keep := make(map[CommitID]bool)
	var dependents []string
	for _, other := range branches {
		if other.Name == b.Name {
			continue
		}
		for _, c := range ancestry(commits, other.Head) {
			keep[c.ID] = true
			if c.Branch == b.Name {
				dependents = append(dependents, other.Name)
				break
			}
		}
	}
	if len(dependents) > 0 {
		sort.Strings(dependents)
		return fmt.Errorf("%w: branches %s were made from commits of branch %s; delete them first", ErrInUse, strings.Join(dependents, ", "), b.Name)
	}
	for _, other := range branches {
		if other.Name != b.Name {
			for _, c := range ancestry(commits, other.Head) {
				keep[c.ID] = true
			}
		}
	}
	ops := []Op{DeleteOp(branchKey(d.ID, b.Name))}
	var elsewhere []*Commit // unreachable commits stored on other branches
	for _, c := range commits {
		if keep[c.ID] {
			continue
		}
		ops = append(ops, DeleteOp(commitKey(d.ID, c.ID)))
		if c.Branch != b.Name {
			elsewhere = append(elsewhere, c)
		}
	}
	if _, err := n.store.Txn(ctx, []Condition{IfRevision(branchKey(d.ID, b.Name), rev)}, ops); err != nil {
		if errors.Is(err, ErrConflict) {
			return fmt.Errorf("%w: branch %s of %s moved while deleting it; try again", ErrConflict, b.Name, name)
		}
		return err
	}
	if err := be.DeleteBranch(ctx, b.Ref()); err != nil {
		n.log.Warn("removing storage of a deleted branch", "branch", b.Ref().String(), "err", err)
	}
	for _, c := range elsewhere {
		if err := be.DeleteCommit(ctx, c.Ref()); err != nil {
			n.log.Warn("deleting data of an unreachable commit", "commit", c.ID, "err", err)
		}
	}
	return nil
}

// APIKey is a stored credential: only a hash of the key is kept.
type APIKey struct {
	User    string    `json:"user"`
	Hash    []byte    `json:"hash"`
	Created time.Time `json:"created"`
}

// putAPIKey is APIKeys.Put.
func (n *Node) putAPIKey(ctx context.Context, k APIKey) error {
	if err := ValidateName("user", k.User); err != nil {
		return err
	}
	return n.reg.putAPIKey(ctx, k)
}

// createAPIKey is APIKeys.Create.
func (n *Node) createAPIKey(ctx context.Context, k APIKey) error {
	if err := ValidateName("user", k.User); err != nil {
		return err
	}
	err := n.reg.createAPIKey(ctx, k)
	if errors.Is(err, ErrConflict) {
		return fmt.Errorf("%w: user %s has an API key already", ErrAlreadyExists, k.User)
	}
	return err
}

// apiKey is APIKeys.Get.
func (n *Node) apiKey(ctx context.Context, user string) (*APIKey, error) {
	if err := ValidateName("user", user); err != nil {
		return nil, err
	}
	k, err := n.reg.apiKey(ctx, user)
	if err != nil {
		return nil, notFound(err, "no API key for user %s", user)
	}
	return k, nil
}
