// Package bboltstore implements dotmesh.ClusterStore on a single bbolt file,
// for a node that runs alone (no etcd).
//
// Layout of the file:
//
//	meta        "rev" -> store revision, "lease_seq" -> last lease id (uint64 BE)
//	kv          key -> record: mod revision (8) | lease id (8) | value
//	leases      lease id (8) -> ttl ns (8) | expiry unix ns (8)
//	lease_keys  lease id (8) | key -> "" (which keys to delete with a lease)
//
// All writes go through one bbolt Update transaction each and are serialised
// by the store, so that watch events can be fanned out in revision order
// right after the transaction commits.
//
// Watch caveat: each watcher has a buffered channel (Options.WatchBuffer
// events). Writers never wait for watchers: if a watcher falls so far behind
// that its buffer is full, its channel is closed (and a warning logged)
// while its context is still live. Callers that see a channel close before
// their context ended must re-Watch and re-List to resynchronise.
package bboltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/dotmesh-io/dotmesh/cluster/internal/txn"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

var (
	bucketMeta      = []byte("meta")
	bucketKV        = []byte("kv")
	bucketLeases    = []byte("leases")
	bucketLeaseKeys = []byte("lease_keys")

	metaRev      = []byte("rev")
	metaLeaseSeq = []byte("lease_seq")
)

const (
	recordHeader = 16 // mod revision + lease id

	defaultTimeout            = time.Second
	defaultWatchBuffer        = 1024
	defaultLeaseCheckInterval = 100 * time.Millisecond
)

// Options configure Open. The zero value is usable.
type Options struct {
	// Logger receives warnings (dropped watchers) and debug messages
	// (expired leases). Default: slog.Default().
	Logger *slog.Logger
	// Timeout bounds the wait for the file lock held by another process.
	// Default 1s; bbolt itself would wait forever.
	Timeout time.Duration
	// WatchBuffer is the channel capacity of each watcher; a watcher whose
	// buffer overflows is closed. Default 1024.
	WatchBuffer int
	// LeaseCheckInterval is how often expired leases are looked for, so a
	// lease outlives its TTL by at most about this much. Default 100ms.
	LeaseCheckInterval time.Duration
	// NoSync skips fsync after each write: faster, but a machine crash can
	// lose or corrupt recent writes. Only for tests.
	NoSync bool
}

// Store is a dotmesh.ClusterStore backed by one bbolt file.
type Store struct {
	db          *bolt.DB
	path        string
	log         *slog.Logger
	watchBuffer int
	checkEvery  time.Duration

	// wlock serialises write transactions together with their event
	// fan-out, so watchers see events in revision order. A channel rather
	// than a mutex so that waiting for it honours ctx.
	wlock chan struct{}

	mu       sync.Mutex // guards watchers, closed and stamps
	watchers map[*watcher]struct{}
	closed   bool
	stamps   map[string]uint64 // writes by key prefix (WriteStamp)

	// ctx ends at Close; it stops the lease goroutine and the watchers.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var (
	_ dotmesh.ClusterStore = (*Store)(nil)
	_ dotmesh.Scanner      = (*Store)(nil)
)

type watcher struct {
	prefix string
	ch     chan dotmesh.Event
	done   bool
}

// Open opens or creates the store file at path. If another process holds
// the file (another dm serve on the same data directory), Open fails after
// opts.Timeout with an error wrapping dotmesh.ErrUnavailable.
func Open(path string, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Timeout <= 0 {
		opts.Timeout = defaultTimeout
	}
	if opts.WatchBuffer <= 0 {
		opts.WatchBuffer = defaultWatchBuffer
	}
	if opts.LeaseCheckInterval <= 0 {
		opts.LeaseCheckInterval = defaultLeaseCheckInterval
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("%w: cluster store: create directory for %s: %w", dotmesh.ErrUnavailable, path, err)
	}
	if err := Validate(path); err != nil {
		return nil, err
	}
	// The free list is rebuilt at open (a walk of the pages, as checkOpen
	// makes anyway) instead of written with every transaction: one page
	// less to write and sync per commit, as etcd's backend does. bbolt
	// reads a file with or without a stored free list either way.
	db, err := openBolt(path, &bolt.Options{Timeout: opts.Timeout, NoSync: opts.NoSync,
		NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err == nil {
		if err = checkOpen(db, path); err != nil {
			db.Close()
			return nil, err
		}
	}
	if err != nil {
		switch {
		case errors.Is(err, berrors.ErrTimeout):
			return nil, fmt.Errorf("%w: cluster store %s is locked by another process; another dm serve probably uses this data directory (stop it, or choose another data directory): %w",
				dotmesh.ErrUnavailable, path, err)
		case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch):
			return nil, corrupt(path, "%v", err)
		case errors.Is(err, dotmesh.ErrCorrupt):
			return nil, err
		}
		return nil, fmt.Errorf("%w: open cluster store %s: %w", dotmesh.ErrUnavailable, path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketKV, bucketLeases, bucketLeaseKeys} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("%w: initialise cluster store %s: %w", dotmesh.ErrUnavailable, path, err)
	}
	s := &Store{
		db:          db,
		path:        path,
		log:         opts.Logger.With("store", path),
		watchBuffer: opts.WatchBuffer,
		checkEvery:  opts.LeaseCheckInterval,
		wlock:       make(chan struct{}, 1),
		watchers:    make(map[*watcher]struct{}),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1)
	go s.expireLoop()
	return s, nil
}

// WriteStamp implements dotmesh.WriteStamper: the count of committed
// writes under the prefixes, each a first segment of keys ("users/").
// The file is locked while open, so every write is counted here.
func (s *Store) WriteStamp(prefixes ...string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n uint64
	for _, p := range prefixes {
		n += s.stamps[p]
	}
	return n
}

// stamp counts the writes of events in the prefix stamps, before their
// transaction's caller learns that it committed.
func (s *Store) stamp(events []dotmesh.Event) {
	if len(events) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stamps == nil {
		s.stamps = make(map[string]uint64)
	}
	for _, e := range events {
		p := e.KV.Key
		if i := strings.IndexByte(p, '/'); i >= 0 {
			p = p[:i+1]
		}
		s.stamps[p]++
	}
}

// Close stops the lease goroutine, closes every watch channel, waits for
// writes in progress and closes the file. Later calls fail with
// ErrUnavailable.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for w := range s.watchers {
		s.closeWatcherLocked(w)
	}
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	// Wait for the write in flight; writers queued behind it see closed.
	s.wlock <- struct{}{}
	defer func() { <-s.wlock }()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("%w: close cluster store %s: %w", dotmesh.ErrUnavailable, s.path, err)
	}
	return nil
}

func (s *Store) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *Store) errClosed() error {
	return fmt.Errorf("%w: cluster store %s is closed", dotmesh.ErrUnavailable, s.path)
}

// wrapDB classifies errors coming out of bbolt.
func (s *Store) wrapDB(op string, err error) error {
	switch {
	case errors.Is(err, berrors.ErrDatabaseNotOpen):
		return s.errClosed()
	case errors.Is(err, berrors.ErrKeyTooLarge), errors.Is(err, berrors.ErrValueTooLarge):
		return fmt.Errorf("%w: cluster store: %s: %w", dotmesh.ErrInvalidArgument, op, err)
	case errors.Is(err, dotmesh.ErrCorrupt):
		return fmt.Errorf("cluster store %s: %s: %w", s.path, op, err)
	}
	return fmt.Errorf("%w: cluster store %s: %s: %w", dotmesh.ErrUnavailable, s.path, op, err)
}

// ---- reads ----

// Get returns the key, or ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) (dotmesh.KV, error) {
	if err := s.checkRead(ctx); err != nil {
		return dotmesh.KV{}, err
	}
	var kv dotmesh.KV
	found := false
	err := s.db.View(func(tx *bolt.Tx) error {
		rec := tx.Bucket(bucketKV).Get([]byte(key))
		if rec == nil {
			return nil
		}
		found = true
		var err error
		kv, err = decodeKV(key, rec)
		return err
	})
	if err != nil {
		return dotmesh.KV{}, s.wrapDB("get", err)
	}
	if !found {
		return dotmesh.KV{}, fmt.Errorf("%w: key %q", dotmesh.ErrNotFound, key)
	}
	return kv, nil
}

// List returns every key with the prefix (a plain byte prefix), sorted.
func (s *Store) List(ctx context.Context, prefix string) ([]dotmesh.KV, error) {
	var out []dotmesh.KV
	err := s.records(ctx, "list", prefix, func(k, rec []byte) error {
		kv, err := decodeKV(string(k), rec)
		out = append(out, kv)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Scan implements dotmesh.Scanner: fn sees each record's value in bbolt's
// mapped memory, inside one read transaction, without the copy List makes.
func (s *Store) Scan(ctx context.Context, prefix string, fn func(key, value []byte) error) error {
	var fnErr error
	err := s.records(ctx, "scan", prefix, func(k, rec []byte) error {
		if len(rec) < recordHeader {
			_, err := decodeKV(string(k), rec) // the damaged record's error
			return err
		}
		fnErr = fn(k, rec[recordHeader:])
		return fnErr
	})
	if fnErr != nil {
		return fnErr // as fn returned it
	}
	return err
}

// records calls fn with every key under prefix and its stored record, in
// key order, inside one read transaction; fn's error ends the walk.
func (s *Store) records(ctx context.Context, op, prefix string, fn func(k, rec []byte) error) error {
	if err := s.checkRead(ctx); err != nil {
		return err
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketKV).Cursor()
		p := []byte(prefix)
		k, v := c.First()
		if len(p) > 0 {
			k, v = c.Seek(p)
		}
		for ; k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			if err := fn(k, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return s.wrapDB(op, err)
	}
	return nil
}

func (s *Store) checkRead(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.isClosed() {
		return s.errClosed()
	}
	return nil
}

// ---- writes ----

// Put writes the key unconditionally (detaching any lease, as etcd does).
func (s *Store) Put(ctx context.Context, key string, value []byte) (int64, error) {
	return s.Txn(ctx, nil, []dotmesh.Op{dotmesh.PutOp(key, value)})
}

// Delete removes the key; a missing key is no error and no new revision.
func (s *Store) Delete(ctx context.Context, key string) error {
	_, err := s.Txn(ctx, nil, []dotmesh.Op{dotmesh.DeleteOp(key)})
	return err
}

// Txn applies ops atomically if every condition holds.
func (s *Store) Txn(ctx context.Context, conds []dotmesh.Condition, ops []dotmesh.Op) (int64, error) {
	if err := txn.Validate(conds, ops, bolt.MaxKeySize); err != nil {
		return 0, err
	}
	return s.update(ctx, "txn", func(w *writeTx) error {
		for _, c := range conds {
			if err := w.check(c); err != nil {
				return err
			}
		}
		now := time.Now()
		for _, op := range ops {
			if op.Delete {
				if err := w.del(op.Key); err != nil {
					return err
				}
				continue
			}
			if op.Lease != 0 {
				if _, ok := w.lease(op.Lease, now); !ok {
					return fmt.Errorf("%w: lease %d (expired or revoked; grant a new one)", dotmesh.ErrNotFound, op.Lease)
				}
			}
			if err := w.put(op.Key, op.Value, op.Lease); err != nil {
				return err
			}
		}
		return nil
	})
}

// writeTx is one bbolt write transaction with the revision it allocates
// (lazily, on the first change) and the events it will emit.
type writeTx struct {
	tx     *bolt.Tx
	kv     *bolt.Bucket
	rev    int64 // current revision, then the new one once changed
	dirty  bool
	events []dotmesh.Event
}

func (w *writeTx) newRev() int64 {
	if !w.dirty {
		w.dirty = true
		w.rev++
	}
	return w.rev
}

func (w *writeTx) check(c dotmesh.Condition) error {
	rec := w.kv.Get([]byte(c.Key))
	switch {
	case c.Revision == 0 && rec != nil:
		return fmt.Errorf("%w: key %q exists (revision %d) but the txn required it to be absent; re-read it and retry",
			dotmesh.ErrConflict, c.Key, recordRev(rec))
	case c.Revision != 0 && rec == nil:
		return fmt.Errorf("%w: key %q does not exist but the txn required revision %d; re-read it and retry",
			dotmesh.ErrConflict, c.Key, c.Revision)
	case c.Revision != 0 && recordRev(rec) != c.Revision:
		return fmt.Errorf("%w: key %q is at revision %d but the txn required revision %d; re-read it and retry",
			dotmesh.ErrConflict, c.Key, recordRev(rec), c.Revision)
	}
	return nil
}

func (w *writeTx) put(key string, value []byte, lease dotmesh.LeaseID) error {
	k := []byte(key)
	if old := w.kv.Get(k); old != nil {
		if err := w.unindex(recordLease(old), key); err != nil {
			return err
		}
	}
	rev := w.newRev()
	rec := encodeRecord(rev, lease, value)
	if err := w.kv.Put(k, rec); err != nil {
		return err
	}
	if lease != 0 {
		if err := w.tx.Bucket(bucketLeaseKeys).Put(leaseKey(lease, key), nil); err != nil {
			return err
		}
	}
	w.events = append(w.events, dotmesh.Event{Type: dotmesh.EventPut, KV: dotmesh.KV{
		Key: key, Value: rec[recordHeader:], Revision: rev, Lease: lease,
	}})
	return nil
}

func (w *writeTx) del(key string) error {
	k := []byte(key)
	old := w.kv.Get(k)
	if old == nil {
		return nil
	}
	if err := w.unindex(recordLease(old), key); err != nil {
		return err
	}
	if err := w.kv.Delete(k); err != nil {
		return err
	}
	w.events = append(w.events, dotmesh.Event{Type: dotmesh.EventDelete, KV: dotmesh.KV{Key: key, Revision: w.newRev()}})
	return nil
}

func (w *writeTx) unindex(lease dotmesh.LeaseID, key string) error {
	if lease == 0 {
		return nil
	}
	return w.tx.Bucket(bucketLeaseKeys).Delete(leaseKey(lease, key))
}

// lease returns the ttl of a live lease.
func (w *writeTx) lease(id dotmesh.LeaseID, now time.Time) (time.Duration, bool) {
	v := w.tx.Bucket(bucketLeases).Get(u64(uint64(id)))
	if v == nil || !now.Before(leaseExpiry(v)) {
		return 0, false
	}
	return time.Duration(binary.BigEndian.Uint64(v[0:8])), true
}

// revoke deletes a lease and all its keys.
func (w *writeTx) revoke(id dotmesh.LeaseID) error {
	c := w.tx.Bucket(bucketLeaseKeys).Cursor()
	p := u64(uint64(id))
	var keys []string
	for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
		keys = append(keys, string(k[8:]))
	}
	for _, key := range keys {
		if err := w.del(key); err != nil {
			return err
		}
	}
	return w.tx.Bucket(bucketLeases).Delete(p)
}

// update runs fn in one write transaction, commits it, bumps the store
// revision if anything changed and fans the events out to watchers. It
// returns the new (or, if nothing changed, current) revision.
func (s *Store) update(ctx context.Context, what string, fn func(w *writeTx) error) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	select {
	case s.wlock <- struct{}{}:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	defer func() { <-s.wlock }()
	if s.isClosed() {
		return 0, s.errClosed()
	}
	var w writeTx
	var fnErr error
	err := s.db.Update(func(tx *bolt.Tx) error {
		w = writeTx{tx: tx, kv: tx.Bucket(bucketKV), rev: int64(getU64(tx.Bucket(bucketMeta), metaRev))}
		if fnErr = fn(&w); fnErr != nil {
			return fnErr
		}
		if !w.dirty {
			return nil
		}
		return tx.Bucket(bucketMeta).Put(metaRev, u64(uint64(w.rev)))
	})
	if fnErr != nil {
		if errors.Is(fnErr, dotmesh.ErrConflict) || errors.Is(fnErr, dotmesh.ErrNotFound) {
			return 0, fnErr
		}
		return 0, s.wrapDB(what, fnErr)
	}
	if err != nil {
		return 0, s.wrapDB(what, err)
	}
	s.stamp(w.events)
	s.fanOut(w.events)
	return w.rev, nil
}

// ---- watch ----

// Watch streams changes under prefix made after it returned. See the
// package comment for what happens to a watcher that does not keep up.
func (s *Store) Watch(ctx context.Context, prefix string) (<-chan dotmesh.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	w := &watcher{prefix: prefix, ch: make(chan dotmesh.Event, s.watchBuffer)}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, s.errClosed()
	}
	// Registering under mu while writers fan out under mu too gives a clean
	// cut: writes that returned before this point are not delivered.
	s.watchers[w] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		select {
		case <-ctx.Done():
		case <-s.ctx.Done():
		}
		s.mu.Lock()
		s.closeWatcherLocked(w)
		s.mu.Unlock()
	}()
	return w.ch, nil
}

func (s *Store) closeWatcherLocked(w *watcher) {
	if w.done {
		return
	}
	w.done = true
	close(w.ch)
	delete(s.watchers, w)
}

// fanOut delivers events without ever blocking the writer (see package doc).
func (s *Store) fanOut(events []dotmesh.Event) {
	if len(events) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for w := range s.watchers {
		for _, ev := range events {
			if !strings.HasPrefix(ev.KV.Key, w.prefix) {
				continue
			}
			if ev.KV.Value != nil {
				ev.KV.Value = bytes.Clone(ev.KV.Value) // each watcher owns its copy
			}
			select {
			case w.ch <- ev:
				continue
			default:
			}
			s.log.Warn("closing watch channel: the watcher fell behind and its buffer is full; it must re-watch and re-list",
				"prefix", w.prefix, "buffer", cap(w.ch), "revision", ev.KV.Revision)
			s.closeWatcherLocked(w)
			break
		}
	}
}

// ---- leases ----

// Grant creates a lease that expires after ttl unless kept alive.
func (s *Store) Grant(ctx context.Context, ttl time.Duration) (dotmesh.LeaseID, error) {
	if ttl <= 0 {
		return 0, fmt.Errorf("%w: lease ttl %v must be positive", dotmesh.ErrInvalidArgument, ttl)
	}
	var id dotmesh.LeaseID
	_, err := s.update(ctx, "grant", func(w *writeTx) error {
		meta := w.tx.Bucket(bucketMeta)
		seq := getU64(meta, metaLeaseSeq) + 1
		if err := meta.Put(metaLeaseSeq, u64(uint64(seq))); err != nil {
			return err
		}
		id = dotmesh.LeaseID(seq)
		return w.tx.Bucket(bucketLeases).Put(u64(uint64(seq)), leaseValue(ttl, time.Now().Add(ttl)))
	})
	return id, err
}

// KeepAlive renews a lease for another ttl; ErrNotFound once expired.
func (s *Store) KeepAlive(ctx context.Context, id dotmesh.LeaseID) error {
	expired := false
	_, err := s.update(ctx, "keepalive", func(w *writeTx) error {
		leases := w.tx.Bucket(bucketLeases)
		v := leases.Get(u64(uint64(id)))
		if v == nil {
			return fmt.Errorf("%w: lease %d (expired or revoked; grant a new one)", dotmesh.ErrNotFound, id)
		}
		now := time.Now()
		if ttl, ok := w.lease(id, now); ok {
			return leases.Put(u64(uint64(id)), leaseValue(ttl, now.Add(ttl)))
		}
		// Expired but not yet reaped: reap it now so its keys go with it.
		expired = true
		return w.revoke(id)
	})
	if err == nil && expired {
		err = fmt.Errorf("%w: lease %d expired; grant a new one", dotmesh.ErrNotFound, id)
	}
	return err
}

// Revoke ends a lease now, deleting its keys at one revision.
func (s *Store) Revoke(ctx context.Context, id dotmesh.LeaseID) error {
	_, err := s.update(ctx, "revoke", func(w *writeTx) error {
		if w.tx.Bucket(bucketLeases).Get(u64(uint64(id))) == nil {
			return fmt.Errorf("%w: lease %d (expired or revoked already)", dotmesh.ErrNotFound, id)
		}
		return w.revoke(id)
	})
	return err
}

// expireLoop reaps expired leases until Close. Expiry uses wall-clock
// times stored in the file, so leases of a node that was down expire soon
// after it restarts.
func (s *Store) expireLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.checkEvery)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		if err := s.expireOnce(); err != nil {
			s.log.Warn("expiring leases failed; will retry", "err", err)
		}
	}
}

func (s *Store) expireOnce() error {
	var due []dotmesh.LeaseID
	now := time.Now()
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLeases).ForEach(func(k, v []byte) error {
			if !now.Before(leaseExpiry(v)) {
				due = append(due, dotmesh.LeaseID(binary.BigEndian.Uint64(k)))
			}
			return nil
		})
	})
	if err != nil {
		if errors.Is(err, berrors.ErrDatabaseNotOpen) {
			return nil
		}
		return err
	}
	ctx := s.ctx
	for _, id := range due {
		// One transaction (and revision) per lease, like etcd. Re-check
		// expiry inside it: a KeepAlive may have won the race.
		rev, err := s.update(ctx, "expire lease", func(w *writeTx) error {
			v := w.tx.Bucket(bucketLeases).Get(u64(uint64(id)))
			if v == nil || time.Now().Before(leaseExpiry(v)) {
				return nil
			}
			return w.revoke(id)
		})
		if err != nil {
			if ctx.Err() != nil || s.isClosed() {
				return nil
			}
			return err
		}
		s.log.Debug("lease expired", "lease", int64(id), "revision", rev)
	}
	return nil
}

// ---- encoding ----

// encodeRecord is the stored form of a key's value: its mod revision and
// lease, then the value.
func encodeRecord(rev int64, lease dotmesh.LeaseID, value []byte) []byte {
	rec := make([]byte, recordHeader+len(value))
	binary.BigEndian.PutUint64(rec[0:8], uint64(rev))
	binary.BigEndian.PutUint64(rec[8:16], uint64(lease))
	copy(rec[recordHeader:], value)
	return rec
}

// decodeKV reads a stored record; a record too short for its header (a
// damaged file) is ErrCorrupt, never a panic.
func decodeKV(key string, rec []byte) (dotmesh.KV, error) {
	if len(rec) < recordHeader {
		return dotmesh.KV{}, fmt.Errorf("%w: registry record of key %q is %d bytes, shorter than its %d-byte header", dotmesh.ErrCorrupt, key, len(rec), recordHeader)
	}
	return dotmesh.KV{
		Key:      key,
		Value:    bytes.Clone(rec[recordHeader:]), // bbolt memory is only valid inside the tx
		Revision: recordRev(rec),
		Lease:    recordLease(rec),
	}, nil
}

// recordRev and recordLease read 0 from a damaged (short) record, so that
// overwriting or deleting it still works.
func recordRev(rec []byte) int64 {
	if len(rec) < recordHeader {
		return 0
	}
	return int64(binary.BigEndian.Uint64(rec[0:8]))
}

func recordLease(rec []byte) dotmesh.LeaseID {
	if len(rec) < recordHeader {
		return 0
	}
	return dotmesh.LeaseID(binary.BigEndian.Uint64(rec[8:16]))
}

func leaseKey(id dotmesh.LeaseID, key string) []byte {
	b := make([]byte, 8+len(key))
	binary.BigEndian.PutUint64(b, uint64(id))
	copy(b[8:], key)
	return b
}

func leaseValue(ttl time.Duration, expiry time.Time) []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b[0:8], uint64(ttl))
	binary.BigEndian.PutUint64(b[8:16], uint64(expiry.UnixNano()))
	return b
}

func leaseExpiry(v []byte) time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(v[8:16])))
}

func u64(n uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, n)
	return b
}

func getU64(b *bolt.Bucket, key []byte) uint64 {
	v := b.Get(key)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}
