package dotmesh

import (
	"context"
	"strings"
	"sync"
	"time"
)

// A listing shows of each dot the length of its current branch's history
// and that branch's head commit. Counting histories needs the parent of
// every commit record of every dot: on etcd that is a ranged read of
// every record (12,000 keys, some 5 MB, for the bench's 1,001 dots and
// 10,000 commits: 190 ms of etcd's own time, four times bbolt's whole
// `dm list`). So the node remembers, per dot, the count and the decoded
// head it found, and reads a dot's records again only when they may have
// changed: its current head is another, or its commit records were
// written since. Writes through this node mark the dot at once (the
// keepingStore calls touch after each write); writes by other nodes of a
// cluster reach it through a watch on the commit records, as a
// replicating node learns of them. While the watch is not running (not
// started yet, lost and being started again) nothing is remembered.

// listCache is the node's memory of history counts and heads by dot.
type listCache struct {
	mu      sync.Mutex
	running bool              // the watch runs: entries are kept and used
	epoch   uint64            // bumped when the watch starts (again)
	gen     map[DotID]uint64  // bumped at every write of a dot's commit records
	byDot   map[DotID]dotHist // valid while gen[dot] is still entry.gen
	// links are the commit records of dots whose history a long walk
	// listed (linkReader), kept by the same rule as byDot and bounded by
	// their bytes, so that a log of a long history that did not change is
	// not a listing of every record again (a third of its node time).
	links      map[DotID]keptLinks
	linksBytes int
	started    bool // watch started (once)
	cancel     context.CancelFunc
	done       chan struct{}
}

// dotHist is a dot's remembered history: head, its count and record.
type dotHist struct {
	head  CommitID
	count int
	kv    KV // the head's record
	gen   uint64
	epoch uint64
}

// touch marks the dots whose commit records keys name as changed.
func (lc *listCache) touch(keys ...string) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	for _, k := range keys {
		if id, ok := commitKeyDot(k); ok {
			lc.touchLocked(id)
		}
	}
}

func (lc *listCache) touchLocked(id DotID) {
	if lc.gen == nil {
		lc.gen = make(map[DotID]uint64)
	}
	lc.gen[id]++
	delete(lc.byDot, id)
	lc.dropLinks(id)
}

// keptLinks are a dot's commit records as a walk listed them, with the
// stamp they were read under, their size and the memo of their chains
// (keptReader).
type keptLinks struct {
	ls    commitLinks
	gen   uint64
	epoch uint64
	size  int
	memo  *chainMemo
}

// maxKeptLinks bounds the bytes of the records links keeps: two histories
// of 10,000 commits of some 500 bytes.
const maxKeptLinks = 12 << 20

// keptLinks returns dot id's kept commit records if they hold head
// (empty: any) and did not change since they were listed; else a stamp to
// keep fresh ones with (taken before they are read); kept, the second
// result is the kept entry, with its memo. Callers must not change what
// they get.
func (lc *listCache) keptLinks(id DotID, head CommitID) (commitLinks, keptLinks, bool) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	stamp := keptLinks{gen: lc.gen[id], epoch: lc.epoch}
	k, ok := lc.links[id]
	if !lc.running || !ok || k.gen != stamp.gen || k.epoch != stamp.epoch {
		return nil, stamp, false
	}
	if _, has := k.ls[head]; head != "" && !has { // written by another node, not seen yet
		return nil, stamp, false
	}
	return k.ls, k, true
}

// keepLinks keeps ls, read under stamp, unless the dot's records may have
// changed since (as remember), or they are too many to keep, and returns
// the memo of its chains (nil: not kept).
func (lc *listCache) keepLinks(id DotID, stamp keptLinks, ls commitLinks) *chainMemo {
	size := 0
	for _, l := range ls {
		size += len(l.kv.Key) + len(l.kv.Value) + 64 // and the map's entry
	}
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if !lc.running || lc.gen[id] != stamp.gen || lc.epoch != stamp.epoch || size > maxKeptLinks {
		return nil
	}
	lc.dropLinks(id)
	for other := range lc.links { // full: drop others, in map order
		if lc.linksBytes+size <= maxKeptLinks {
			break
		}
		lc.dropLinks(other)
	}
	if lc.links == nil {
		lc.links = make(map[DotID]keptLinks)
	}
	stamp.ls, stamp.size, stamp.memo = ls, size, &chainMemo{}
	lc.links[id] = stamp
	lc.linksBytes += size
	return stamp.memo
}

func (lc *listCache) dropLinks(id DotID) {
	if k, ok := lc.links[id]; ok {
		delete(lc.links, id)
		lc.linksBytes -= k.size
	}
}

// commitKeyDot is the dot of a commit record's key.
func commitKeyDot(key string) (DotID, bool) {
	rest, ok := strings.CutPrefix(key, commitsPrefix)
	if !ok {
		return "", false
	}
	id, _, ok := strings.Cut(rest, "/")
	return DotID(id), ok
}

// touchOps is touch for the keys of ops, under one lock.
func (lc *listCache) touchOps(ops []Op) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	for _, op := range ops {
		if id, ok := commitKeyDot(op.Key); ok {
			lc.touchLocked(id)
		}
	}
}

// lookup returns dot id's remembered history if its head is still head;
// else a dotHist stamped with the generation and epoch to remember a
// fresh one with (read them before the records).
func (lc *listCache) lookup(id DotID, head CommitID) (dotHist, bool) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	stamp := dotHist{head: head, gen: lc.gen[id], epoch: lc.epoch}
	h, ok := lc.byDot[id]
	if !lc.running || !ok || h.head != head || h.gen != stamp.gen || h.epoch != stamp.epoch {
		return stamp, false
	}
	return h, true
}

// remember keeps h unless the dot's records may have changed since h's
// stamp was taken (a write, or the watch started again).
func (lc *listCache) remember(id DotID, h dotHist) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if !lc.running || lc.gen[id] != h.gen || lc.epoch != h.epoch {
		return
	}
	if lc.byDot == nil {
		lc.byDot = make(map[DotID]dotHist)
	}
	lc.byDot[id] = h
}

// start runs the watch on the commit records until stop, once.
func (lc *listCache) start(s ClusterStore, log func(msg string, args ...any)) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if lc.started {
		return
	}
	lc.started = true
	ctx, cancel := context.WithCancel(context.Background())
	lc.cancel, lc.done = cancel, make(chan struct{})
	go lc.watch(ctx, s, log)
}

// stop ends the watch.
func (lc *listCache) stop() {
	lc.mu.Lock()
	cancel, done := lc.cancel, lc.done
	lc.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// listWatchRetry is the pause before a lost watch is started again.
const listWatchRetry = time.Second

func (lc *listCache) watch(ctx context.Context, s ClusterStore, log func(msg string, args ...any)) {
	defer close(lc.done)
	for ctx.Err() == nil {
		ch, err := s.Watch(ctx, commitsPrefix)
		if err == nil {
			lc.mu.Lock()
			lc.running = true
			lc.epoch++
			lc.mu.Unlock()
			for ev := range ch {
				if id, ok := commitKeyDot(ev.KV.Key); ok {
					lc.mu.Lock()
					lc.touchLocked(id)
					lc.mu.Unlock()
				}
			}
		}
		// Lost (or never started): forget everything until it runs again.
		lc.mu.Lock()
		lc.running = false
		lc.byDot = nil
		lc.links, lc.linksBytes = nil, 0
		lc.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			log("watching commit records for listings", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(listWatchRetry):
		}
	}
}
