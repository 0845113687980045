// Package keylock provides one mutex per key, made on first use, for
// backends that serialise operations per branch or per dot while letting
// different ones run in parallel.
package keylock

import "sync"

// Map holds a mutex per key. The zero value is ready to use. Mutexes are
// kept for the life of the Map (one per branch or dot ever touched).
type Map[K comparable] struct {
	mu    sync.Mutex
	locks map[K]*entry
}

type entry struct {
	sync.Mutex
	waiting int           // callers of Lock not holding it yet (Map.mu)
	wanted  chan struct{} // closed when one starts waiting (Map.mu)
}

func (m *Map[K]) entry(k K) *entry {
	l, ok := m.locks[k]
	if !ok {
		if m.locks == nil {
			m.locks = make(map[K]*entry)
		}
		l = new(entry)
		m.locks[k] = l
	}
	return l
}

// Lock locks k's mutex and returns the function that unlocks it, so that
// `defer m.Lock(k)()` holds it for the rest of the caller.
func (m *Map[K]) Lock(k K) (unlock func()) {
	m.mu.Lock()
	l := m.entry(k)
	l.waiting++
	if l.wanted != nil {
		close(l.wanted)
		l.wanted = nil
	}
	m.mu.Unlock()
	l.Lock()
	m.mu.Lock()
	l.waiting--
	m.mu.Unlock()
	return l.Unlock
}

// Wanted returns a channel that is closed when a caller of Lock waits
// for k (at once when one does already): the holder of k's lock learns
// that work it put off, keeping the lock, is now in somebody's way.
func (m *Map[K]) Wanted(k K) <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.entry(k)
	if l.waiting > 0 {
		c := make(chan struct{})
		close(c)
		return c
	}
	if l.wanted == nil {
		l.wanted = make(chan struct{})
	}
	return l.wanted
}
