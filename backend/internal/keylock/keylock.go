// Package keylock provides one mutex per key, made on first use, for
// backends that serialise operations per branch or per dot while letting
// different ones run in parallel.
package keylock

import "sync"

// Map holds a mutex per key. The zero value is ready to use. Mutexes are
// kept for the life of the Map (one per branch or dot ever touched).
type Map[K comparable] struct {
	mu    sync.Mutex
	locks map[K]*sync.Mutex
}

// Lock locks k's mutex and returns the function that unlocks it, so that
// `defer m.Lock(k)()` holds it for the rest of the caller.
func (m *Map[K]) Lock(k K) (unlock func()) {
	m.mu.Lock()
	l, ok := m.locks[k]
	if !ok {
		if m.locks == nil {
			m.locks = make(map[K]*sync.Mutex)
		}
		l = new(sync.Mutex)
		m.locks[k] = l
	}
	m.mu.Unlock()
	l.Lock()
	return l.Unlock
}
