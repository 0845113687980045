package bucketremote

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/dotmesh-io/dotmesh/bucket"
	"github.com/dotmesh-io/dotmesh/bucket/repo"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// defaultParallel is Config.Parallel's default.
const defaultParallel = 8

func (c Config) withDefaults() Config {
	if c.Parallel <= 0 {
		c.Parallel = defaultParallel
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Retry.Logger == nil {
		c.Retry.Logger = c.Logger
	}
	if c.Repo.Logger == nil {
		c.Repo.Logger = c.Logger
	}
	return c
}

// openStore opens cfg.URL with logging, retries and the parallel limit
// around it.
func openStore(ctx context.Context, cfg Config) (bucket.Store, error) {
	st, err := bucket.Open(ctx, cfg.URL, cfg.Store)
	if err != nil {
		return nil, err
	}
	st = bucket.WithLogging(st, cfg.Logger)
	st = bucket.WithRetry(st, cfg.Retry)
	return bucket.WithLimit(st, cfg.Parallel), nil
}

// Dial opens the store at cfg.URL (with retries, the parallel limit
// and logging around it) and the repository in it. A store with no
// repository is dotmesh.ErrNotFound (Init makes one); a wrong password
// is repo.ErrWrongPassword, at once.
func Dial(ctx context.Context, cfg Config) (*Remote, error) {
	cfg = cfg.withDefaults()
	st, err := openStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	rp, err := repo.Open(ctx, st, cfg.Password, cfg.Repo)
	if err != nil {
		st.Close()
		if errors.Is(err, dotmesh.ErrNotFound) {
			return nil, fmt.Errorf("%w; initialise a repository there first", err)
		}
		return nil, err
	}
	return New(rp, cfg), nil
}

// Init makes a repository in the empty store at cfg.URL and opens it;
// a store that already holds one is dotmesh.ErrAlreadyExists.
func Init(ctx context.Context, cfg Config, o repo.InitOptions) (*Remote, error) {
	cfg = cfg.withDefaults()
	st, err := openStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if o.Password == nil && !o.NoEncryption {
		o.Password = cfg.Password
	}
	rp, err := repo.Init(ctx, st, o, cfg.Repo)
	if err != nil {
		st.Close()
		return nil, err
	}
	return New(rp, cfg), nil
}

// New makes a Remote of an open repository (tests and programs that
// open it themselves); Close closes r.
func New(r *repo.Repo, cfg Config) *Remote {
	cfg = cfg.withDefaults()
	return &Remote{repo: r, cfg: cfg, log: cfg.Logger}
}

// Close releases the locks the Remote holds and closes the repository
// and its store. Closing again does nothing.
func (r *Remote) Close(ctx context.Context) error {
	r.mu.Lock()
	l, closed := r.lock, r.closed
	r.lock, r.closed = nil, true
	r.mu.Unlock()
	if closed {
		return nil
	}
	var errs []error
	if l != nil {
		if err := l.Unlock(context.WithoutCancel(ctx)); err != nil {
			errs = append(errs, fmt.Errorf("releasing the repository lock: %w", err))
		}
	}
	errs = append(errs, r.repo.Close(), r.repo.Store().Close())
	return errors.Join(errs...)
}

// writeLock takes the shared repository lock on the first write and
// keeps it until Close (taking it reloads the repository's blob index,
// so a blob skipped as present cannot vanish under this Remote's
// pushes). A lock lost since (removed as stale) fails every later write.
func (r *Remote) writeLock(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return fmt.Errorf("%w: the remote %s is closed", dotmesh.ErrInvalidArgument, r.Location())
	}
	if r.lock != nil {
		return r.lock.Err()
	}
	l, err := r.repo.Lock(ctx, false)
	if err != nil {
		return err
	}
	r.lock = l
	return nil
}

// lockErr is why writes must stop: the shared lock was lost.
func (r *Remote) lockErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lock == nil {
		return nil
	}
	return r.lock.Err()
}
