package etcdstore

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// ListCached implements dotmesh.CachedLister. The first call for a
// prefix lists it as List does and keeps the keys in memory, kept
// current by a watch from the revision of that read (so no change falls
// between them). Later calls answer from the copy once it holds every
// write this Store made under the prefix (the revision each write
// returned); a copy behind them for longer than mirrorWait, or whose
// watch etcd ended, is read again as List does (and watched again).
// A listing of 1,001 dots read two such prefixes of 1,000 keys on every
// call: the ranged reads, their decoding and etcd's own time were what
// etcd added to bbolt's `dm list`.
//
// Keys deleted by a lease's end show as gone once the watch delivered
// it, as other clients' writes do.
func (s *Store) ListCached(ctx context.Context, prefix string) ([]dotmesh.KV, error) {
	m := s.mirrorOf(prefix)
	if kvs, ok := m.read(ctx); ok {
		return kvs, nil
	}
	return m.load(ctx)
}

// mirrorWait bounds how long ListCached waits for its watch to deliver
// this Store's own writes before it reads etcd.
const mirrorWait = 50 * time.Millisecond

// mirror is the watched copy of one prefix's keys.
type mirror struct {
	s      *Store
	prefix string
	loadMu sync.Mutex // one load at a time

	mu      sync.Mutex
	running bool          // the watch runs and kvs is its copy
	rev     int64         // kvs holds every change through rev
	need    int64         // the revision of this Store's last write under prefix
	kvs     []dotmesh.KV  // sorted by key
	wake    chan struct{} // closed (and replaced) at every change of rev
}

func (s *Store) mirrorOf(prefix string) *mirror {
	s.mirrorMu.Lock()
	defer s.mirrorMu.Unlock()
	m, ok := s.mirrors[prefix]
	if !ok {
		if s.mirrors == nil {
			s.mirrors = make(map[string]*mirror)
		}
		m = &mirror{s: s, prefix: prefix, wake: make(chan struct{})}
		s.mirrors[prefix] = m
	}
	return m
}

// wrote notes that this Store's write at rev changed key: a mirror of a
// prefix of key answers only once it holds rev. Only writes that change
// a key may be noted (a delete of a missing key makes no event).
func (s *Store) wrote(rev int64, keys ...string) {
	s.mirrorMu.Lock()
	defer s.mirrorMu.Unlock()
	for prefix, m := range s.mirrors {
		for _, k := range keys {
			if strings.HasPrefix(k, prefix) {
				m.mu.Lock()
				m.need = max(m.need, rev)
				m.mu.Unlock()
				break
			}
		}
	}
}

// read returns a copy of the kept keys once they hold this Store's
// writes; false when the watch is not running or stays behind.
func (m *mirror) read(ctx context.Context) ([]dotmesh.KV, bool) {
	timer := (*time.Timer)(nil)
	for {
		m.mu.Lock()
		if !m.running {
			m.mu.Unlock()
			return nil, false
		}
		if m.rev >= m.need {
			out := slices.Clone(m.kvs)
			m.mu.Unlock()
			return out, true
		}
		wake := m.wake
		m.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(mirrorWait)
			defer timer.Stop()
		}
		select {
		case <-wake:
		case <-timer.C:
			return nil, false
		case <-ctx.Done():
			return nil, false
		}
	}
}

// load lists the prefix, as List does, and (re)starts the watch from the
// revision of that read.
func (m *mirror) load(ctx context.Context) ([]dotmesh.KV, error) {
	m.loadMu.Lock()
	defer m.loadMu.Unlock()
	m.mu.Lock()
	running := m.running
	m.mu.Unlock()
	if running { // running but behind: a plain read, the watch catches up
		return m.s.List(ctx, m.prefix)
	}
	kvs, rev, err := m.s.list(ctx, m.prefix)
	if err != nil {
		return nil, err
	}
	if m.s.isClosed() {
		return kvs, nil
	}
	wctx, cancel := context.WithCancel(m.s.ctx) // Close ends it
	// RequireLeader: a member cut off from the quorum ends the watch
	// rather than keep it open and silent.
	wch := m.s.c.Watch(clientv3.WithRequireLeader(wctx), m.s.prefix+m.prefix,
		clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	m.mu.Lock()
	m.running, m.rev, m.kvs = true, rev, slices.Clone(kvs)
	m.mu.Unlock()
	m.s.wg.Add(1)
	go m.follow(wctx, cancel, wch)
	return kvs, nil
}

// follow applies the watch's events to the copy until etcd or Close ends
// the watch; then the copy is dropped until the next load.
func (m *mirror) follow(ctx context.Context, cancel context.CancelFunc, wch clientv3.WatchChan) {
	defer m.s.wg.Done()
	defer cancel()
	defer func() {
		m.mu.Lock()
		m.running, m.kvs = false, nil
		close(m.wake)
		m.wake = make(chan struct{})
		m.mu.Unlock()
	}()
	for wresp := range wch {
		if err := wresp.Err(); err != nil || wresp.Canceled || wresp.CompactRevision != 0 {
			if ctx.Err() == nil && !errors.Is(err, rpctypes.ErrCompacted) {
				m.s.log.Warn("etcd ended the watch of a listing's copy; it is read again", "watch_prefix", m.prefix, "err", err)
			}
			return
		}
		if len(wresp.Events) == 0 {
			continue
		}
		m.mu.Lock()
		for _, ev := range wresp.Events {
			kv := m.s.kv(ev.Kv)
			i, found := slices.BinarySearchFunc(m.kvs, kv.Key, func(e dotmesh.KV, k string) int { return strings.Compare(e.Key, k) })
			switch {
			case ev.Type == clientv3.EventTypeDelete:
				if found {
					m.kvs = slices.Delete(m.kvs, i, i+1)
				}
			case found:
				m.kvs[i] = kv
			default:
				m.kvs = slices.Insert(m.kvs, i, kv)
			}
			m.rev = max(m.rev, ev.Kv.ModRevision)
		}
		close(m.wake)
		m.wake = make(chan struct{})
		m.mu.Unlock()
	}
}
