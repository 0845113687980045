package dump

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/dump/cas"
	"github.com/dotmesh-io/dotmesh/backend/internal/guard"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/internal/seal"
	"golang.org/x/sys/unix"
)

// Options tune a Backend. The zero value is fine.
type Options struct {
	Logger *slog.Logger
	// Workers bounds the goroutines reading, chunking, hashing and
	// compressing (and restoring); default runtime.NumCPU().
	Workers int
	// CompressionLevel is the zstd level, 1 (fastest) to 22 (smallest);
	// 0 means fastest.
	CompressionLevel int
	// PinTTL is how long the objects of an interrupted receive are kept
	// for a re-run after it last stored some (pins.go); 0 means
	// dotmesh.DefaultTransferPin. Give it the node's transfer pin time.
	PinTTL time.Duration
	// OpenWorktrees lets other local users reach the working trees (for
	// services that run as another user): the directories on the way may
	// be traversed (0711) and the tree roots read (0755). Otherwise
	// everything the backend makes is private to its user (0700 and 0600,
	// packs 0400).
	OpenWorktrees bool
	// Encrypt makes a new store encrypted at rest (storekey.go) with
	// Password; a directory holding a plain store is refused.
	Encrypt bool
	// Password opens an encrypted store (and seals a new one's key). A
	// store that is encrypted needs it; one that is not refuses it.
	Password []byte
	// KDF and Cipher of a new encrypted store; zero values mean the
	// defaults of package internal/seal (Argon2id 19 MiB, AES-256-GCM).
	KDF    seal.KDFParams
	Cipher string
}

// Modes of what the backend makes; see Options.OpenWorktrees.
const (
	privateDir  = 0o700
	privateFile = 0o600
)

// Backend is the dump StorageBackend for plain directories: see the
// package documentation for the layout.
type Backend struct {
	dir     string
	log     *slog.Logger
	workers int
	store   *cas.Store
	lock    *os.File   // flock on dir/lock: one process per data directory
	keys    *storeKeys // nil: the store is not encrypted
	keyMu   sync.Mutex // serialises changes of the key file
	// passMode is the mode of the directories on the way to the working
	// trees, treeMode that of a tree's root (Options.OpenWorktrees).
	passMode, treeMode os.FileMode

	// gcMu keeps garbage collection away from everything that reads or
	// adds objects: they hold it shared, CollectGarbage exclusively, so a
	// deduplication hit can never be swept before its commit record lands.
	gcMu sync.RWMutex

	// bytesRead counts file content read by commits, for tests that check
	// the change cache.
	bytesRead atomic.Int64
	// recvFlushTest overrides recvFlushBytes in tests (0: the default).
	recvFlushTest atomic.Int64
	// adoptStepTest, when set by a test, is called between the steps of
	// AdoptWorkingState (crash tests kill the process there).
	adoptStepTest func(step string)

	pinTTL time.Duration
	// receiving counts the receives running per target branch: their
	// pins do not expire (pins.go).
	recvMu    sync.Mutex
	receiving map[dotmesh.BranchRef]int
	// receivedFiles: the files whose chunks a ChunkSink was offered, by
	// the commit being received (chunksink.go); under recvMu.
	receivedFiles map[dotmesh.CommitRef]map[string][]Chunk

	manifests manifestCache // decoded commit manifests (manifest_cache.go)
	empties   emptyDirs     // working trees seen empty (usage.go)

	warm     warmSources // sources' warm connections (sources.go)
	sinkBufs sinkBufs    // a dump sink's buffers between commits (dumpsink.go)
}

// Name is the key the dump backend is registered under and that dots
// record (stored, so it stays "dump").
const Name = "dump"

// UserName is the name users know the backend by ("files"): `dm serve
// --backend` and the API accept it for Name.
const UserName = "files"

// Guarded is the dump backend as Open returns it: Backend behind the
// checks of package guard (arguments, open, per-branch locks, Close),
// with each of Backend's capabilities.
type Guarded struct {
	*guard.Backend
	guard.GarbageCollector
	guard.GarbagePlanner
	guard.Checker
	guard.Verifier
	guard.ObjectNegotiator
	guard.ReceiveDiscarder
	guard.RecordKeeper
	guard.SourceManager
	guard.TreeReader
	guard.TreeFileOpener
	guard.SourceDiffer
	guard.StoreStatter
	guard.WorkingStateAdopter
	guard.ChunkStager
	guard.CapacityReporter
	guard.UsageBatcher
	b *Backend
}

var (
	_ dotmesh.StorageBackend   = (*Guarded)(nil)
	_ dotmesh.GarbageCollector = (*Guarded)(nil)
	_ dotmesh.GarbagePlanner   = (*Guarded)(nil)
	_ dotmesh.Checker          = (*Guarded)(nil)
	_ dotmesh.Verifier         = (*Guarded)(nil)
	_ dotmesh.ObjectNegotiator = (*Guarded)(nil)
	_ dotmesh.ReceiveDiscarder = (*Guarded)(nil)
	_ dotmesh.RecordKeeper     = (*Guarded)(nil)
	_ dotmesh.SourceManager    = (*Guarded)(nil)
	_ dotmesh.TreeReader       = (*Guarded)(nil)
	_ dotmesh.TreeFileOpener   = (*Guarded)(nil)
	_ dotmesh.SourceDiffer     = (*Guarded)(nil)
	_ dotmesh.StoreStatter     = (*Guarded)(nil)
	_ dotmesh.ChunkStager      = (*Guarded)(nil)
	_ dotmesh.CapacityReporter = (*Guarded)(nil)
	_ dotmesh.UsageBatcher     = (*Guarded)(nil)
)

// Open opens (creating it if needed) a dump backend keeping everything
// under dir. Only one Backend may have dir open at a time, across
// processes too (ErrInUse otherwise). Leftovers of operations interrupted
// by a crash are removed.
func Open(dir string, opts Options) (*Guarded, error) {
	b, err := open(dir, opts)
	if err != nil {
		return nil, err
	}
	g := guard.New(b, guard.Options{Where: "dump backend " + b.dir})
	return &Guarded{
		Backend:          g,
		GarbageCollector: g.GarbageCollector(),
		GarbagePlanner:   g.GarbagePlanner(),
		Checker:          g.Checker(),
		Verifier:         g.Verifier(),
		ObjectNegotiator: g.ObjectNegotiator(),
		ReceiveDiscarder: g.ReceiveDiscarder(),
		RecordKeeper:     g.RecordKeeper(),
		SourceManager:    g.SourceManager(),
		TreeReader:       g.TreeReader(),
		TreeFileOpener:   g.TreeFileOpener(),
		SourceDiffer:     g.SourceDiffer(),
		StoreStatter:     g.StoreStatter(),

		WorkingStateAdopter: g.WorkingStateAdopter(),
		ChunkStager:         g.ChunkStager(),
		CapacityReporter:    g.CapacityReporter(),
		UsageBatcher:        g.UsageBatcher(),
		b:                   b,
	}, nil
}

// Dir is the backend's data directory.
func (g *Guarded) Dir() string { return g.b.dir }

var _ dotmesh.StoreKeyManager = (*Guarded)(nil)

// StoreKeys implements dotmesh.StoreKeyManager (storekey.go).
func (g *Guarded) StoreKeys(context.Context) ([]dotmesh.StoreKey, error) {
	ks, err := g.b.Keys()
	if err != nil {
		return nil, err
	}
	out := make([]dotmesh.StoreKey, len(ks))
	for i, k := range ks {
		out[i] = dotmesh.StoreKey{ID: k.ID, Created: k.Created, KDF: k.KDF.Name, InUse: k.InUse}
	}
	return out, nil
}

// AddStoreKey implements dotmesh.StoreKeyManager with the default key
// derivation (Backend.AddKey).
func (g *Guarded) AddStoreKey(_ context.Context, password []byte) (string, error) {
	return g.b.AddKey(password, seal.KDFParams{})
}

// RemoveStoreKey implements dotmesh.StoreKeyManager (Backend.RemoveKey).
func (g *Guarded) RemoveStoreKey(_ context.Context, id string, force bool) error {
	return g.b.RemoveKey(id, force)
}

// open opens the Backend that Open guards.
func open(dir string, opts Options) (*Backend, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.NumCPU()
	}
	if opts.PinTTL < 0 {
		return nil, fmt.Errorf("%w: pin time %s: use a positive duration, or 0 for the default", dotmesh.ErrInvalidArgument, opts.PinTTL)
	}
	if opts.PinTTL == 0 {
		opts.PinTTL = dotmesh.DefaultTransferPin
	}
	if opts.CompressionLevel < 0 || opts.CompressionLevel > 22 {
		return nil, fmt.Errorf("%w: compression level %d: use 0 (fastest) or 1..22", dotmesh.ErrInvalidArgument, opts.CompressionLevel)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("dump backend directory %q: %w", dir, err)
	}
	passMode, treeMode := os.FileMode(privateDir), os.FileMode(privateDir)
	if opts.OpenWorktrees {
		passMode, treeMode = 0o711, 0o755
	}
	if opts.Encrypt && !IsEncrypted(abs) {
		// Before anything else is made: see storekey.go.
		var err error
		if _, serr := os.Stat(abs); errors.Is(serr, os.ErrNotExist) {
			err = initKeys(abs, opts, passMode)
		} else if len(opts.Password) == 0 {
			err = fmt.Errorf("%w: an encrypted store needs a password", dotmesh.ErrInvalidArgument)
		} else {
			err = markEncrypting(abs)
		}
		if err != nil {
			return nil, err
		}
	}
	// Chmod too: a directory made by an earlier version (0755) or by
	// someone else gets the mode it should have.
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{abs, passMode}, {filepath.Join(abs, "branches"), passMode}, {filepath.Join(abs, "trash"), privateDir}, {filepath.Join(abs, "tmp"), privateDir}} {
		if err := os.MkdirAll(d.path, d.mode); err != nil {
			return nil, fmt.Errorf("create dump backend directory: %w", err)
		}
		if err := os.Chmod(d.path, d.mode); err != nil {
			return nil, fmt.Errorf("dump backend directory: %w", err)
		}
	}
	lock, err := os.OpenFile(filepath.Join(abs, "lock"), os.O_RDWR|os.O_CREATE, privateFile)
	if err != nil {
		return nil, fmt.Errorf("open lock of %s: %w", abs, err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: dump backend directory %s is open in another backend or process; close it or use another directory", dotmesh.ErrInUse, abs)
		}
		return nil, fmt.Errorf("lock %s: %w", abs, err)
	}
	if opts.Encrypt && !IsEncrypted(abs) {
		if err := initKeys(abs, opts, passMode); err != nil {
			lock.Close()
			return nil, err
		}
	}
	keys, err := openKeys(abs, opts)
	if err != nil {
		lock.Close()
		return nil, err
	}
	var sealing *cas.Sealing
	if keys != nil {
		sealing = keys.cas
	}
	store, err := cas.Open(filepath.Join(abs, "store"), cas.Options{
		Level:       opts.CompressionLevel,
		Concurrency: opts.Workers,
		Logger:      opts.Logger,
		Seal:        sealing,
	})
	if err != nil {
		lock.Close()
		return nil, err
	}
	b := &Backend{
		dir:     abs,
		log:     opts.Logger.With("backend", Name),
		workers: opts.Workers,
		store:   store,
		lock:    lock,
		keys:    keys,
		pinTTL:  opts.PinTTL,

		passMode: passMode,
		treeMode: treeMode,
	}
	b.warm.init(b.primeDump)
	b.cleanLeftovers()
	return b, nil
}

// cleanLeftovers removes what interrupted operations left: deleted
// branches not yet removed (trash/), half-built trees (tmp/), temporary
// record files.
func (b *Backend) cleanLeftovers() {
	for _, name := range []string{"trash", "tmp"} {
		dir := filepath.Join(b.dir, name)
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if err := removeAll(filepath.Join(dir, e.Name())); err != nil {
				b.log.Warn("cannot remove leftover", "path", filepath.Join(dir, e.Name()), "err", err)
			}
		}
	}
	refs, err := b.listBranchDirs()
	if err != nil {
		b.log.Warn("cannot scan branches for leftovers", "err", err)
		return
	}
	for _, br := range refs {
		for _, d := range []string{b.branchDir(br), b.commitsDir(br)} {
			ents, _ := os.ReadDir(d)
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), tmpPrefix) {
					p := filepath.Join(d, e.Name())
					if err := removeAll(p); err != nil {
						b.log.Warn("cannot remove leftover", "path", p, "err", err)
					}
				}
			}
		}
	}
}

// Name implements dotmesh.StorageBackend.
func (b *Backend) Name() string { return Name }

// Close implements dotmesh.StorageBackend; the guard calls it once, when
// no call is in flight.
func (b *Backend) Close() error {
	b.warm.close()
	b.empties.close()
	err := b.store.Close()
	if cerr := b.lock.Close(); err == nil {
		err = cerr
	}
	return err
}

// useStore takes the shared side of gcMu; call the returned function when
// done with objects.
func (b *Backend) useStore() func() {
	b.gcMu.RLock()
	return b.gcMu.RUnlock
}

func (b *Backend) branchDir(br dotmesh.BranchRef) string {
	return filepath.Join(b.dir, "branches", string(br.Dot), br.Branch)
}

func (b *Backend) treeDir(br dotmesh.BranchRef) string {
	return filepath.Join(b.branchDir(br), "tree")
}

func (b *Backend) commitsDir(br dotmesh.BranchRef) string {
	return filepath.Join(b.branchDir(br), "commits")
}

func (b *Backend) recordPath(c dotmesh.CommitRef) string {
	return filepath.Join(b.commitsDir(c.BranchRef), string(c.ID))
}

func (b *Backend) syncedPath(br dotmesh.BranchRef) string {
	return filepath.Join(b.branchDir(br), "synced")
}

// treeExists reports whether br has a working tree.
func (b *Backend) treeExists(br dotmesh.BranchRef) (bool, error) {
	st, err := os.Lstat(b.treeDir(br))
	if err == nil {
		if !st.IsDir() {
			return false, fmt.Errorf("%w: working tree of %s is not a directory", dotmesh.ErrCorrupt, br)
		}
		return true, nil
	}
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return false, fmt.Errorf("stat working tree of %s: %w", br, err)
}

// needTree returns ErrNotFound unless br has a working tree.
func (b *Backend) needTree(br dotmesh.BranchRef) error {
	ok, err := b.treeExists(br)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: branch %s has no working state on this backend; create it first", dotmesh.ErrNotFound, br)
	}
	return nil
}
