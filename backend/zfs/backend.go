package zfs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/dotmesh-io/dotmesh/backend/internal/changewatch"
	"github.com/dotmesh-io/dotmesh/backend/internal/guard"
	"github.com/dotmesh-io/dotmesh/backend/zfs/internal/fusesock"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Backend is the ZFS StorageBackend: see the package documentation.
type Backend struct {
	z    *cli
	log  *slog.Logger
	pool string
	root dataset
	mnt  string

	locks *guard.Locks // by dot, shared with the guard
	// sends runs one `zfs send` at a time: zfs-fuse deadlocked when a pool
	// sent to two receivers at once (cluster replication to two nodes).
	sends sync.Mutex

	invs invCache
	// recs holds kept registry records not yet written (records.go).
	recs recQueue
	// bg counts work that finishes an operation after it returned (see
	// switchToClone); Close waits for it, having ended closing, which
	// cuts short the wait of such work for a quiet moment.
	bg      sync.WaitGroup
	closing context.Context
	closeBg context.CancelFunc
	// dataDir holds the records of deferred switches (pending.go); failed
	// are those whose clone failed at run time, retried by inventory.
	dataDir   string
	pendingMu sync.Mutex
	failed    map[dotmesh.DotID]map[dotmesh.BranchRef]pendingSwitch
	// watch proves writes into mounted working states (watch.go); nil
	// where fanotify is unavailable, and then commits check exactly.
	watch   *changewatch.Watcher
	watched watchIndex
}

// Guarded is the ZFS backend as Open returns it: Backend behind the
// checks of package guard (arguments, open, per-dot locks, Close), with
// each of Backend's capabilities.
type Guarded struct {
	*guard.Backend
	guard.RecordKeeper
	guard.DirtyChecker
	guard.HeadFollower
	guard.ChangeCommitter
	guard.StoreStatter
	guard.CapacityReporter
	guard.VolumeSizer
	guard.DirectTransferer
	b *Backend
}

var (
	_ dotmesh.StorageBackend   = (*Guarded)(nil)
	_ dotmesh.RecordKeeper     = (*Guarded)(nil)
	_ dotmesh.DirtyChecker     = (*Guarded)(nil)
	_ dotmesh.HeadFollower     = (*Guarded)(nil)
	_ dotmesh.ChangeCommitter  = (*Guarded)(nil)
	_ dotmesh.InodeKeeper      = (*Guarded)(nil)
	_ dotmesh.TreeLocator      = (*Guarded)(nil)
	_ dotmesh.CapacityReporter = (*Guarded)(nil)
	_ dotmesh.VolumeSizer      = (*Guarded)(nil)
	_ dotmesh.StoreStatter     = (*Guarded)(nil)
	_ dotmesh.DirectTransferer = (*Guarded)(nil)
)

// TreePath implements dotmesh.TreeLocator: the branch's mountpoint, which
// SubdotPath mounts the working state at (on first use; a branch that
// only receives is never mounted). It stays the same across rollbacks.
func (g *Guarded) TreePath(ref dotmesh.BranchRef) string { return g.b.livePath(ref) }

// KeepsInodes implements dotmesh.InodeKeeper (see Backend.KeepsInodes).
func (g *Guarded) KeepsInodes() bool { return g.b.KeepsInodes() }

// KeepsInodes implements dotmesh.InodeKeeper: zfs snapshots and clones share their object numbers; zfs-fuse stamps ctime from CLOCK_REALTIME, OpenZFS from the kernel's clock.
func (b *Backend) KeepsInodes() bool { return true }

// Open finds the ZFS tools, imports or creates the pool, makes the root
// dataset and repairs what operations interrupted by a crash left behind.
func Open(ctx context.Context, opts Options) (*Guarded, error) {
	b, err := open(ctx, opts)
	if err != nil {
		return nil, err
	}
	g := guard.New(b, guard.Options{
		Where: "zfs backend " + b.root.name,
		Locks: b.locks,
		// Receive locks the dot after reading the stream's header; Rollback
		// and FollowHead may hand the lock to work that finishes later.
		SelfLocked: guard.Receive | guard.Rollback | guard.FollowHead,
	})
	return &Guarded{Backend: g, RecordKeeper: g.RecordKeeper(), DirtyChecker: g.DirtyChecker(), HeadFollower: g.HeadFollower(), ChangeCommitter: g.ChangeCommitter(), StoreStatter: g.StoreStatter(), CapacityReporter: g.CapacityReporter(), VolumeSizer: g.VolumeSizer(), DirectTransferer: g.DirectTransferer(), b: b}, nil
}

// Root returns the dataset under which the backend keeps dots.
func (g *Guarded) Root() string { return g.b.Root() }

// Mountpoint returns the directory branches are mounted below.
func (g *Guarded) Mountpoint() string { return g.b.Mountpoint() }

// open opens the Backend that Open guards.
func open(ctx context.Context, opts Options) (*Backend, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	z, err := findTools(opts.CommandTimeout)
	if err != nil {
		return nil, err
	}
	z.log = opts.Logger.With("backend", Name)
	z.lock = cmdLockAt(opts.CommandLock)
	if opts.FuseSocket != "" {
		sc := fusesock.New(opts.FuseSocket)
		if err := sc.Check(ctx); err != nil {
			opts.Logger.InfoContext(ctx, "zfs-fuse's command socket does not serve this client; snapshots, sends and receives run the zfs command", "socket", opts.FuseSocket, "err", err)
		} else {
			z.sock.Store(sc)
		}
	}
	b := &Backend{
		z: z, log: opts.Logger.With("backend", Name, "root", opts.Root),
		pool: opts.Pool, root: dataset{opts.Root}, mnt: opts.Mountpoint,
		dataDir: opts.DataDir, locks: guard.NewLocks(true),
	}
	b.closing, b.closeBg = context.WithCancel(context.Background())
	if err := b.openPool(ctx, opts); err != nil {
		return nil, err
	}
	if err := b.ensureRoot(ctx); err != nil {
		return nil, err
	}
	if err := b.replayPending(ctx); err != nil {
		return nil, fmt.Errorf("zfs backend: finishing an interrupted switch: %w", err)
	}
	if err := b.recover(ctx); err != nil {
		return nil, fmt.Errorf("zfs backend: repairing after an interrupted operation: %w", err)
	}
	if w, err := changewatch.New(); err != nil {
		b.log.InfoContext(ctx, "commits check every working state for changes exactly", "err", err)
	} else {
		b.watch = w
	}
	return b, nil
}

// Name implements dotmesh.StorageBackend.
func (b *Backend) Name() string { return Name }

// Close implements dotmesh.StorageBackend (called once by the guard,
// after the calls in flight). The pool stays imported and the branches
// mounted: containers may still use them.
func (b *Backend) Close() error {
	b.recs.mu.Lock()
	b.recs.hurry++ // the records left are written at once
	b.recs.mu.Unlock()
	b.closeBg() // switches put off are made at once
	b.bg.Wait()
	if b.watch != nil {
		return b.watch.Close()
	}
	return nil
}

// Root returns the dataset under which the backend keeps dots.
func (b *Backend) Root() string { return b.root.name }

// Mountpoint returns the directory branches are mounted below.
func (b *Backend) Mountpoint() string { return b.mnt }

// lockDot takes the guard's lock of a dot, in the methods the guard does
// not lock. The unit is the dot, not the branch: zfs promote moves
// snapshots between a dot's filesystems.
func (b *Backend) lockDot(dot dotmesh.DotID) func() { return b.locks.Lock(dotmesh.BranchRef{Dot: dot}) }

// ensureRoot creates the root dataset, or corrects its properties: every
// dataset below inherits the mountpoint (so a renamed dataset's mountpoint
// follows its name) and atime=off (so reading does not make a branch dirty).
func (b *Backend) ensureRoot(ctx context.Context) error {
	mp, err := newProp("mountpoint", b.mnt)
	if err != nil {
		return err
	}
	want := []prop{mp, mustProp("canmount", "off"), mustProp("atime", "off")}
	rows, err := b.z.get(ctx, false, []string{"mountpoint", "canmount", "atime"}, b.root)
	if errors.Is(err, ErrNoDataset) {
		if err := b.ensureParents(ctx, b.root); err != nil {
			return err
		}
		err = b.z.create(ctx, b.root, want...)
		if err == nil || errors.Is(err, ErrExists) {
			b.log.InfoContext(ctx, "created root dataset", "mountpoint", b.mnt)
			return os.MkdirAll(b.mnt, 0o755)
		}
	}
	if err != nil {
		return fmt.Errorf("zfs backend root %s: %w", b.root, err)
	}
	have := map[string]string{}
	for _, r := range rows {
		have[r.prop] = r.value
	}
	for _, p := range want {
		if have[p.key] != p.value {
			if err := b.z.set(ctx, b.root.name, p); err != nil {
				return fmt.Errorf("zfs backend root %s: %w", b.root, err)
			}
		}
	}
	return os.MkdirAll(b.mnt, 0o755)
}

// ensureParents creates the datasets between the pool and d, unmounted.
func (b *Backend) ensureParents(ctx context.Context, d dataset) error {
	var chain []dataset
	for p := parentOf(d); p.name != d.Pool(); p = parentOf(p) {
		chain = append([]dataset{p}, chain...)
	}
	for _, p := range chain {
		err := b.z.create(ctx, p, mustProp("canmount", "off"))
		if err != nil && !errors.Is(err, ErrExists) {
			return fmt.Errorf("creating %s: %w", p, err)
		}
	}
	return nil
}

func parentOf(d dataset) dataset {
	i := len(d.name) - len(d.Leaf()) - 1
	if i <= 0 {
		return d
	}
	return dataset{d.name[:i]}
}
