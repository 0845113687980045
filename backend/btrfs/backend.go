//go:build linux && cgo

package btrfs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/dotmesh-io/dotmesh/backend/internal/guard"
	"github.com/dotmesh-io/dotmesh/backend/internal/recordfiles"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"golang.org/x/sys/unix"
)

// Backend is the btrfs StorageBackend; see the package documentation for
// the layout.
type Backend struct {
	pool *pool
	root string // pool.root
	log  *slog.Logger
	lock *os.File // flock: one Backend per data directory

	sizeMu sync.Mutex
	sizes  map[string]sizeEntry // by subvolume path

	recsOnce sync.Once
	recs     *recordfiles.Dir
}

// Guarded is the btrfs backend as Open returns it: Backend behind the
// checks of package guard (arguments, open, per-branch locks, Close),
// with each of Backend's capabilities.
type Guarded struct {
	*guard.Backend
	guard.RecordKeeper
	guard.CommitViewer
	guard.DirtyChecker
	guard.ChangeCommitter
	guard.CommitJournal
	guard.StoreStatter
	guard.CapacityReporter
	guard.VolumeSizer
	b *Backend
}

var (
	_ dotmesh.StorageBackend   = (*Guarded)(nil)
	_ dotmesh.RecordKeeper     = (*Guarded)(nil)
	_ dotmesh.CommitViewer     = (*Guarded)(nil)
	_ dotmesh.DirtyChecker     = (*Guarded)(nil)
	_ dotmesh.ChangeCommitter  = (*Guarded)(nil)
	_ dotmesh.CommitJournal    = (*Guarded)(nil)
	_ dotmesh.InodeKeeper      = (*Guarded)(nil)
	_ dotmesh.CapacityReporter = (*Guarded)(nil)
	_ dotmesh.VolumeSizer      = (*Guarded)(nil)
	_ dotmesh.StoreStatter     = (*Guarded)(nil)
)

// KeepsInodes implements dotmesh.InodeKeeper (see Backend.KeepsInodes).
func (g *Guarded) KeepsInodes() bool { return g.b.KeepsInodes() }

// KeepsInodes implements dotmesh.InodeKeeper: btrfs snapshots keep the subvolume's inode numbers and ctimes.
func (b *Backend) KeepsInodes() bool { return true }

// Open opens (making it when needed) the btrfs backend in opts.DataDir and
// removes what operations interrupted by a crash left behind.
func Open(ctx context.Context, opts Options) (*Guarded, error) {
	b, err := open(ctx, opts)
	if err != nil {
		return nil, err
	}
	g := guard.New(b, guard.Options{Where: "btrfs backend " + b.root})
	return &Guarded{Backend: g, RecordKeeper: g.RecordKeeper(), CommitViewer: g.CommitViewer(), DirtyChecker: g.DirtyChecker(), ChangeCommitter: g.ChangeCommitter(), CommitJournal: g.CommitJournal(), StoreStatter: g.StoreStatter(), CapacityReporter: g.CapacityReporter(), VolumeSizer: g.VolumeSizer(), b: b}, nil
}

// Root is the directory holding the layout (the mount point of the image
// when file-backed).
func (g *Guarded) Root() string { return g.b.root }

// open opens the Backend that Open guards.
func open(ctx context.Context, opts Options) (*Backend, error) {
	if opts.DataDir == "" {
		return nil, fmt.Errorf("%w: btrfs backend needs a data directory", dotmesh.ErrInvalidArgument)
	}
	if opts.PoolSize == 0 {
		opts.PoolSize = DefaultPoolSize
	}
	if opts.PoolSize < minPoolSize {
		return nil, fmt.Errorf("%w: btrfs pool size %d is below the minimum of %d bytes", dotmesh.ErrInvalidArgument, opts.PoolSize, minPoolSize)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	dir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("btrfs data directory %q: %w", opts.DataDir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create btrfs data directory: %w", err)
	}
	p, err := openPool(ctx, dir, opts.PoolSize)
	if err != nil {
		return nil, err
	}
	b := &Backend{
		pool:  p,
		root:  p.root,
		log:   opts.Logger.With("backend", Name),
		sizes: make(map[string]sizeEntry),
	}
	if err := b.init(); err != nil {
		return nil, errors.Join(err, p.close())
	}
	if p.atime {
		b.log.WarnContext(ctx, "the btrfs filesystem is mounted without noatime: reading a file can make a committed branch look dirty", "root", b.root)
	}
	b.log.InfoContext(ctx, "opened btrfs backend", "root", b.root, "image", p.image, "mounted", p.mounted)
	return b, nil
}

func (b *Backend) init() error {
	for _, d := range []string{b.dotsDir(), b.trashDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	lock, err := os.OpenFile(filepath.Join(b.root, "lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open lock: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return fmt.Errorf("%w: btrfs data directory %s is open in another backend or process", dotmesh.ErrInUse, b.root)
		}
		return fmt.Errorf("lock %s: %w", b.root, err)
	}
	b.lock = lock
	if err := b.recover(); err != nil {
		lock.Close()
		return err
	}
	return nil
}

// Name implements dotmesh.StorageBackend.
func (b *Backend) Name() string { return Name }

// Root is the directory holding the layout (the mount point of the image
// when file-backed).
func (b *Backend) Root() string { return b.root }

// Close releases the lock and unmounts the image if Open mounted it; the
// guard calls it once, after the operations in flight.
func (b *Backend) Close() error {
	err := b.records().Close() // before the image may be unmounted
	err = errors.Join(err, b.lock.Close())
	return errors.Join(err, b.pool.close())
}

// Layout. Everything a branch owns is under its directory, so deleting a
// branch is one rename into the trash.
func (b *Backend) dotsDir() string  { return filepath.Join(b.root, "dots") }
func (b *Backend) trashDir() string { return filepath.Join(b.root, "trash") }

func (b *Backend) branchDir(br dotmesh.BranchRef) string {
	return filepath.Join(b.dotsDir(), string(br.Dot), br.Branch)
}
func (b *Backend) livePath(br dotmesh.BranchRef) string {
	return filepath.Join(b.branchDir(br), "live")
}
func (b *Backend) rollbackPath(br dotmesh.BranchRef) string {
	return filepath.Join(b.branchDir(br), "rollback")
}
func (b *Backend) commitsDir(br dotmesh.BranchRef) string {
	return filepath.Join(b.branchDir(br), "commits")
}
func (b *Backend) commitDir(c dotmesh.CommitRef) string {
	return filepath.Join(b.commitsDir(c.BranchRef), string(c.ID))
}

// snapPath is the read-only snapshot of a commit. It sits one directory
// below the commit's name because btrfs refuses to move a read-only
// subvolume to another directory: a received snapshot becomes visible by
// renaming its (plain) staging directory instead.
func (b *Backend) snapPath(c dotmesh.CommitRef) string {
	return filepath.Join(b.commitDir(c), snapName)
}

// snapName is the name of a commit's snapshot in its directory.
const snapName = "snap"

// toTrash moves path into the trash (atomically, so it vanishes from the
// layout at once) and removes it; what cannot be removed now goes on the
// next Open.
func (b *Backend) toTrash(path string) error {
	dst := filepath.Join(b.trashDir(), randomName())
	if err := os.Rename(path, dst); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("move %s to the trash: %w", path, err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return err
	}
	if err := removeTree(dst); err != nil {
		b.log.Warn("cannot empty the trash now; retried on next open", "path", dst, "err", err)
	}
	return nil
}

func randomName() string {
	var r [8]byte
	if _, err := rand.Read(r[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return hex.EncodeToString(r[:])
}

func exists(path string) (bool, error) {
	_, err := os.Lstat(path)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return false, err
}

// needLive returns ErrNotFound unless br has a working state.
func (b *Backend) needLive(br dotmesh.BranchRef) error {
	ok, err := exists(b.livePath(br))
	if err == nil && !ok {
		err = os.ErrNotExist
	}
	return liveError(br, err)
}

// liveError is the error of reaching br's working state: ErrNotFound
// when it has none (err is os.ErrNotExist), nil when err is.
func liveError(br dotmesh.BranchRef, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%w: branch %s has no working state on this backend", dotmesh.ErrNotFound, br)
	}
	return fmt.Errorf("working state of %s: %w", br, err)
}

// openLive opens br's working state for ioctls; ErrNotFound as needLive
// when it has none.
func (b *Backend) openLive(br dotmesh.BranchRef) (int, error) {
	fd, err := openDir(b.livePath(br))
	if err != nil {
		return -1, liveError(br, err)
	}
	return fd, nil
}

// needCommit returns ErrNotFound unless c's snapshot is stored.
func (b *Backend) needCommit(c dotmesh.CommitRef) error {
	ok, err := exists(b.snapPath(c))
	if err != nil {
		return fmt.Errorf("commit %s: %w", c, err)
	}
	if !ok {
		return fmt.Errorf("%w: commit %s is not stored on this backend", dotmesh.ErrNotFound, c)
	}
	return nil
}
