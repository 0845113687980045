package keylock

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestSameKeySerialises(t *testing.T) {
	var m Map[string]
	var in, most atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer m.Lock("a")()
			n := in.Add(1)
			for {
				old := most.Load()
				if n <= old || most.CompareAndSwap(old, n) {
					break
				}
			}
			time.Sleep(time.Millisecond)
			in.Add(-1)
		}()
	}
	wg.Wait()
	if most.Load() != 1 {
		t.Fatalf("%d holders of one key at once", most.Load())
	}
}

func TestKeysAreIndependent(t *testing.T) {
	var m Map[int]
	unlock := m.Lock(1)
	done := make(chan struct{})
	go func() { m.Lock(2)(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("key 2 waited for key 1")
	}
	unlock()
	m.Lock(1)() // free again
}

func TestWanted(t *testing.T) {
	var m Map[string]
	unlock := m.Lock("a")
	w := m.Wanted("a")
	select {
	case <-w:
		t.Fatal("wanted before anyone waits")
	default:
	}
	m.Lock("b")() // another key wants nothing of a
	select {
	case <-w:
		t.Fatal("wanted by a lock of another key")
	default:
	}
	got := make(chan struct{})
	go func() { m.Lock("a")(); close(got) }()
	select {
	case <-w:
	case <-time.After(5 * time.Second):
		t.Fatal("a waiting Lock did not close Wanted")
	}
	select {
	case <-m.Wanted("a"): // one is waiting still: closed at once
	default:
		t.Fatal("Wanted is open while a caller waits")
	}
	unlock()
	<-got
	unlock = m.Lock("a")
	defer unlock()
	select {
	case <-m.Wanted("a"):
		t.Fatal("wanted after the waiter got the lock and left")
	default:
	}
}
