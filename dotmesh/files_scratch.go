package dotmesh

import (
	"sync"
	"time"
)

// Scratch branches that read a commit (zfs: a clone of its snapshot,
// mounted) cost more to make, mount and destroy than a diff of a large
// tree costs to walk: they are kept for scratchIdle after their last use,
// so the next diff, --stat after --name-status, or a page of the UI
// reuses them. A commit is immutable, so its scratch copy stays valid.
// Kept copies go when idle, at Close, and before the dot's data is
// deleted (dropScratch); after a crash reconcile removes them, as any
// storage without commits the registry does not know.
const (
	scratchIdle = time.Minute
	scratchMax  = 8 // kept copies, all dots; the least recently used go first
)

type scratchKey struct {
	dot    DotID
	commit CommitID
}

type scratchEntry struct {
	key     scratchKey
	dir     string
	cleanup func()
	users   int
	dead    bool // dropped while in use: the last user cleans up
	last    time.Time
	timer   *time.Timer
}

// scratchTrees keeps scratch copies of commits; the zero value is ready.
type scratchTrees struct {
	mu      sync.Mutex
	idle    time.Duration // scratchIdle when zero
	max     int           // scratchMax when zero
	entries map[scratchKey]*scratchEntry
	closed  bool
	running sync.WaitGroup // cleanups started by timers and last users
}

// acquire returns the directory of k's scratch copy, making it with mk
// when none is kept (kept says it was), and release, to call when done
// reading it.
func (s *scratchTrees) acquire(k scratchKey, mk func() (string, func(), error)) (dir string, release func(), kept bool, err error) {
	s.mu.Lock()
	if e := s.entries[k]; e != nil && !e.dead {
		e.users++
		if e.timer != nil {
			e.timer.Stop()
			e.timer = nil
		}
		s.mu.Unlock()
		return e.dir, func() { s.release(e) }, true, nil
	}
	s.mu.Unlock()
	dir, cleanup, err := mk()
	if err != nil {
		return "", nil, false, err
	}
	s.mu.Lock()
	if s.closed || s.entries[k] != nil {
		// Closing, or another caller made one meanwhile: this one is
		// not kept.
		s.mu.Unlock()
		return dir, cleanup, false, nil
	}
	if s.entries == nil {
		s.entries = map[scratchKey]*scratchEntry{}
	}
	e := &scratchEntry{key: k, dir: dir, cleanup: cleanup, users: 1}
	s.entries[k] = e
	over := s.overflowLocked()
	s.mu.Unlock()
	runCleanups(over)
	return dir, func() { s.release(e) }, false, nil
}

func (s *scratchTrees) release(e *scratchEntry) {
	s.mu.Lock()
	e.users--
	if e.users > 0 {
		s.mu.Unlock()
		return
	}
	if e.dead {
		s.running.Add(1)
		s.mu.Unlock()
		defer s.running.Done()
		e.cleanup()
		return
	}
	e.last = time.Now()
	idle := s.idle
	if idle == 0 {
		idle = scratchIdle
	}
	e.timer = time.AfterFunc(idle, func() { s.expire(e) })
	s.mu.Unlock()
}

func (s *scratchTrees) expire(e *scratchEntry) {
	s.mu.Lock()
	if s.entries[e.key] != e || e.users > 0 {
		s.mu.Unlock()
		return
	}
	delete(s.entries, e.key)
	s.running.Add(1)
	s.mu.Unlock()
	defer s.running.Done()
	e.cleanup()
}

// overflowLocked drops the least recently used idle entries beyond the
// limit and returns their cleanups.
func (s *scratchTrees) overflowLocked() []func() {
	limit := s.max
	if limit == 0 {
		limit = scratchMax
	}
	var out []func()
	for len(s.entries) > limit {
		var oldest *scratchEntry
		for _, e := range s.entries {
			if e.users == 0 && (oldest == nil || e.last.Before(oldest.last)) {
				oldest = e
			}
		}
		if oldest == nil {
			break // all in use: they go when released and idle
		}
		out = append(out, s.dropLocked(oldest))
	}
	return out
}

// dropLocked forgets e and returns what cleans it up now (nothing when in
// use: its last user does).
func (s *scratchTrees) dropLocked(e *scratchEntry) func() {
	delete(s.entries, e.key)
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
	if e.users > 0 {
		e.dead = true
		return func() {}
	}
	return e.cleanup
}

// drop removes the kept copies of the commits of dot (of every dot when
// all), before that data is deleted: a clone would hold a snapshot back.
// With close set, nothing is kept from then on, and drop waits for the
// cleanups already running.
func (s *scratchTrees) drop(dot DotID, all, close bool) {
	s.mu.Lock()
	s.closed = s.closed || close
	var out []func()
	for k, e := range s.entries {
		if all || k.dot == dot {
			out = append(out, s.dropLocked(e))
		}
	}
	s.mu.Unlock()
	runCleanups(out)
	if close {
		s.running.Wait()
	}
}

// forget drops k's kept copy, found broken (unmounted or destroyed
// behind the Node's back), so the next reader makes a new one.
func (s *scratchTrees) forget(k scratchKey, dir string) {
	s.mu.Lock()
	var out []func()
	if e := s.entries[k]; e != nil && e.dir == dir {
		out = append(out, s.dropLocked(e))
	}
	s.mu.Unlock()
	runCleanups(out)
}

func runCleanups(fs []func()) {
	for _, f := range fs {
		f()
	}
}

// dropScratch removes the kept scratch copies of dot's commits; call it
// before deleting any of the dot's storage.
func (n *Node) dropScratch(dot DotID) { n.scratch.drop(dot, false, false) }
