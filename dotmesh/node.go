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
	// restore, see restore.go; "commit answered" of a journaled commit,
	// before its registry transaction, see journal.go), so that tests
	// can cut one short there. Nil in production.
	StepHook func(step string)
	// TransferPin is how long what an interrupted incoming transfer
	// received is kept for a re-run after its last byte arrived; then gc
	// removes it. 0 means DefaultTransferPin.
	TransferPin time.Duration
	// PathsDir, when set, is a directory the node owns for stable paths:
	// PathsDir/NAMESPACE/DOT is a symlink to the working tree of the dot's
	// current branch, switched by checkout (see Path). Its permissions are
	// given to the namespace directories made in it.
	PathsDir string
	// Observer, when set, is told of the operations the node runs and
	// the stream bytes it moves (metrics); nil means nobody is.
	Observer Observer
	// Hooks, when set, runs the dots' commit hooks (hooks.go); without
	// it, setting a hook is refused, and so is a commit of a dot that
	// has some.
	Hooks HookRunner
}

// Node is the dotmesh engine: every operation on dots, branches and commits,
// on top of a ClusterStore and one or more StorageBackends. It is safe for
// concurrent use; operations that change one dot are serialised.
//
// A Node owns the store and backends passed to it and closes them in Close.
//
// Its methods are the verbs a library user calls:
//
//   - dots: CreateDot, Dot, ListDots, Status, DeleteDot, Path, SubdotPath, Subdots
//   - branches: Branches, CreateBranch, Checkout, CheckoutReport, DeleteBranch
//   - commits: Commit, Log, ResolveRef, Reset
//   - hooks run around commits: SetHook, RemoveHook, Hooks, AllHooks
//   - transfers: Push, Pull, Clone (to and from a Transport)
//   - the node: Backend, BackendNames, GC, Verify, Close
//
// Secondary concerns sit behind handles: Users, APIKeys, Access, Audit,
// Cluster, Mounts, Sources, TransferPeer (the side of a transfer another
// node drives, and the node's incoming transfers) and FrontendRecords
// (records a frontend keeps in the registry).
type Node struct {
	reg      registry
	store    ClusterStore
	ks       *keepingStore // store, for the journal's gate (journal.go)
	backends map[string]StorageBackend
	def      string
	log      *slog.Logger
	now      func() time.Time
	pin      time.Duration // Options.TransferPin
	paths    string        // Options.PathsDir
	recv     receiving
	scratch  scratchTrees // kept scratch copies of commits (files_scratch.go)
	lists    listCache    // history counts and heads for listings (listcache.go)
	auth     authCache    // principals of keys that authenticated (authcache.go)
	// listedDots and listedBranches are the records listings decoded
	// (listdecode.go).
	listedDots     decodedRecords[Dot]
	listedBranches decodedRecords[Branch]
	obs            Observer   // Options.Observer, or noObserver
	sched          scheduler  // the policies' passes (schedule.go)
	hooks          HookRunner // Options.Hooks; nil: none run

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
		paths:    opts.PathsDir,
		hooks:    opts.Hooks,
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
	if n.obs = opts.Observer; n.obs == nil {
		n.obs = noObserver{}
	}
	ks := newKeepingStore(opts.Store, n)
	ks.off = opts.Cluster != nil
	n.auth.st, _ = opts.Store.(WriteStamper)
	n.store, n.ks, n.reg = ks, ks, registry{s: ks, cc: newCommitCache(commitCacheBytes), lc: &n.lists}
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
	if err := n.relinkAll(ctx); err != nil {
		n.place.stop() // the caller closes the store and backends it gave
		return nil, err
	}
	// The listings' memory needs its watch running before it keeps
	// anything: started here, a node's first listing is remembered (on
	// etcd, the first two after a start read every commit record).
	n.lists.start(n.store, n.log.Warn)
	return n, nil
}

// Close leaves the cluster, removes the scratch copies of commits kept
// for reading, then closes the backends and the store.
// Closing again does nothing.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		_ = n.ks.gate.wait(context.Background()) // answered commits' transactions
		n.place.stop()
		n.lists.stop()
		n.scratch.drop("", true, true)
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

func (n *Node) cleanupBranch(be StorageBackend, b BranchRef) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := be.DeleteBranch(ctx, b); err != nil {
		n.log.Warn("removing storage after a failed operation", "branch", b.String(), "err", err)
	}
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
	walkParents(head, func(id CommitID) (CommitID, bool) {
		c, ok := commits[id]
		if ok {
			out = append(out, c)
			return c.Parent, true
		}
		return "", false
	})
	return out
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

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
