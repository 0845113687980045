package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/user"
	"sync"
	"syscall"
	"time"

	"github.com/dotmesh-io/dotmesh/bucket"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

const locksDir = "locks/"

// Lock scopes: the repository (gc against writers) and its refs (a ref
// swap on stores without conditional writes).
const (
	scopeRepo = "repo"
	scopeRefs = "refs"
)

// lockFile is a lock object's content.
type lockFile struct {
	Version   int       `json:"version"`
	Scope     string    `json:"scope"`
	Exclusive bool      `json:"exclusive"`
	Time      time.Time `json:"time"` // last refresh
	Host      string    `json:"host"`
	PID       int       `json:"pid"`
	User      string    `json:"user"`
}

// parseLockFile decodes and checks a lock object's content.
func parseLockFile(b []byte) (lockFile, error) {
	var l lockFile
	if err := json.Unmarshal(b, &l); err != nil {
		return l, fmt.Errorf("lock is not JSON: %v", err)
	}
	if l.Version != FormatVersion {
		return l, fmt.Errorf("lock has format version %d; this dotmesh knows version %d", l.Version, FormatVersion)
	}
	if l.Scope != scopeRepo && l.Scope != scopeRefs {
		return l, fmt.Errorf("lock has unknown scope %.40q", l.Scope)
	}
	if l.Time.IsZero() || l.PID < 0 || len(l.Host) > 255 || len(l.User) > 255 {
		return l, errors.New("lock has no time, a negative pid, or an overlong host or user")
	}
	return l, nil
}

func (l lockFile) describe() string {
	kind := "shared"
	if l.Exclusive {
		kind = "exclusive"
	}
	return fmt.Sprintf("%s lock held by %s (pid %d on %s, refreshed %s)", kind, l.User, l.PID, l.Host, l.Time.UTC().Format(time.RFC3339))
}

// LockedError: the repository is locked by another holder in a way that
// conflicts. It wraps dotmesh.ErrInUse.
type LockedError struct {
	Holder string // the other lock, in words
	Object string // its object
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("%v: the repository is locked: %s (object %s); try again later, or remove it if its holder is gone", dotmesh.ErrInUse, e.Holder, e.Object)
}

func (e *LockedError) Unwrap() error { return dotmesh.ErrInUse }

// Lock is a held lock. It refreshes itself until Unlock.
type Lock struct {
	r    *Repo
	name string
	file lockFile
	stop chan struct{}
	done chan struct{}

	mu  sync.Mutex
	err error // a failed refresh: the lock may be lost
}

func defaultHost() string {
	h, err := os.Hostname()
	if err != nil {
		return "unknown"
	}
	return h
}

func defaultPID() int { return os.Getpid() }

func currentUser() string {
	u, err := user.Current()
	if err != nil {
		return fmt.Sprintf("uid %d", os.Getuid())
	}
	return u.Username
}

// Lock takes a shared (writers that only add: push) or exclusive (what
// deletes: gc) lock on the repository, and reloads the blob index under
// it. A conflicting lock held by another is a LockedError at once; stale
// locks are removed.
func (r *Repo) Lock(ctx context.Context, exclusive bool) (*Lock, error) {
	l, err := r.lock(ctx, scopeRepo, exclusive)
	if err != nil {
		return nil, err
	}
	r.ReloadIndex()
	return l, nil
}

// lockWait tries to take a lock until wait has passed.
func (r *Repo) lockWait(ctx context.Context, scope string, exclusive bool, wait time.Duration) (*Lock, error) {
	deadline := time.Now().Add(wait)
	for {
		l, err := r.lock(ctx, scope, exclusive)
		var le *LockedError
		if !errors.As(err, &le) || time.Now().After(deadline) {
			return l, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(20+rand.IntN(180)) * time.Millisecond):
		}
	}
}

func (r *Repo) lock(ctx context.Context, scope string, exclusive bool) (*Lock, error) {
	// A conflict seen before writing costs no write.
	if err := r.checkLocks(ctx, scope, exclusive, ""); err != nil {
		return nil, err
	}
	l := &Lock{r: r, name: locksDir + newKeyID(), file: lockFile{
		Version: FormatVersion, Scope: scope, Exclusive: exclusive,
		Time: r.now().UTC(), Host: r.opts.Host, PID: r.opts.PID, User: currentUser(),
	}}
	if err := l.write(ctx); err != nil {
		return nil, err
	}
	// Two writers who both wrote see each other here, and both back off.
	if err := r.checkLocks(ctx, scope, exclusive, l.name); err != nil {
		r.store.Delete(context.WithoutCancel(ctx), l.name)
		return nil, err
	}
	l.stop, l.done = make(chan struct{}), make(chan struct{})
	go l.keepFresh()
	return l, nil
}

// checkLocks returns a LockedError for a live lock of scope, other than
// own, that conflicts with a lock of kind exclusive; it removes stale ones.
func (r *Repo) checkLocks(ctx context.Context, scope string, exclusive bool, own string) error {
	return r.eachLock(ctx, own, func(name string, lf lockFile) error {
		if r.stale(lf) {
			r.log.Info("repository: removing stale lock", "object", name, "lock", lf.describe())
			return r.store.Delete(ctx, name)
		}
		if lf.Scope == scope && (exclusive || lf.Exclusive) {
			return &LockedError{Holder: lf.describe(), Object: name}
		}
		return nil
	})
}

// eachLock calls fn with every lock but skip; locks removed since the
// listing are passed over.
func (r *Repo) eachLock(ctx context.Context, skip string, fn func(name string, lf lockFile) error) error {
	var names []string
	if err := r.store.List(ctx, locksDir, func(oi bucket.ObjectInfo) error {
		if oi.Name != skip {
			names = append(names, oi.Name)
		}
		return nil
	}); err != nil {
		return err
	}
	for _, name := range names {
		lf, err := r.readLock(ctx, name)
		if errors.Is(err, dotmesh.ErrNotFound) {
			continue // unlocked meanwhile
		}
		if err == nil {
			err = fn(name, lf)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (r *Repo) readLock(ctx context.Context, name string) (lockFile, error) {
	b, err := r.get(ctx, kindLock, name)
	if err != nil {
		return lockFile{}, err
	}
	lf, err := parseLockFile(b)
	if err != nil {
		return lf, corrupt(name, err)
	}
	return lf, nil
}

// stale: not refreshed for LockStaleAfter, or held by a process of this
// host that is gone.
func (r *Repo) stale(l lockFile) bool {
	if r.now().Sub(l.Time) > r.opts.LockStaleAfter {
		return true
	}
	if l.Host == r.opts.Host && l.PID > 0 {
		return errors.Is(syscall.Kill(l.PID, 0), syscall.ESRCH)
	}
	return false
}

// RemoveStaleLocks removes every stale lock and returns how many.
func (r *Repo) RemoveStaleLocks(ctx context.Context) (int, error) {
	n := 0
	err := r.eachLock(ctx, "", func(name string, lf lockFile) error {
		if !r.stale(lf) {
			return nil
		}
		n++
		return r.store.Delete(ctx, name)
	})
	return n, err
}

// Locks describes the repository's locks, stale ones included.
func (r *Repo) Locks(ctx context.Context) ([]string, error) {
	var out []string
	err := r.eachLock(ctx, "", func(_ string, lf lockFile) error {
		d := lf.Scope + ": " + lf.describe()
		if r.stale(lf) {
			d += " (stale)"
		}
		out = append(out, d)
		return nil
	})
	return out, err
}

func (l *Lock) write(ctx context.Context) error {
	b, _ := json.Marshal(l.file)
	return l.r.put(ctx, kindLock, l.name, b, false, false)
}

// LockLostError: a held lock's object vanished (removed as stale by
// another): what it protected may have changed. It wraps
// dotmesh.ErrConflict.
type LockLostError struct{ Object string }

func (e *LockLostError) Error() string {
	return fmt.Sprintf("%v: lock %s was removed by another (stale?); stop and start over", dotmesh.ErrConflict, e.Object)
}

func (e *LockLostError) Unwrap() error { return dotmesh.ErrConflict }

// Refresh renews the lock's time. LockLostError when its object is gone.
func (l *Lock) Refresh(ctx context.Context) error {
	if _, err := l.r.store.Stat(ctx, l.name); errors.Is(err, dotmesh.ErrNotFound) {
		l.setErr(&LockLostError{Object: l.name})
		return l.Err()
	} else if err != nil {
		return err
	}
	l.file.Time = l.r.now().UTC()
	return l.write(ctx)
}

func (l *Lock) setErr(err error) {
	l.mu.Lock()
	if l.err == nil {
		l.err = err
	}
	l.mu.Unlock()
}

// Err is why the lock may no longer be held (a refresh found it gone), or
// nil.
func (l *Lock) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

func (l *Lock) keepFresh() {
	defer close(l.done)
	every := l.r.opts.LockStaleAfter / 4
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), every)
			err := l.Refresh(ctx)
			cancel()
			if err != nil {
				l.r.log.Warn("repository: refreshing lock failed", "object", l.name, "err", err)
			}
		}
	}
}

// Unlock stops refreshing and removes the lock. It returns Err when the
// lock was lost while held.
func (l *Lock) Unlock(ctx context.Context) error {
	if l.stop != nil {
		close(l.stop)
		<-l.done
		l.stop = nil
	}
	if err := l.r.store.Delete(ctx, l.name); err != nil {
		return err
	}
	return l.Err()
}

// Name is the lock's object, for messages.
func (l *Lock) Name() string { return l.name }
