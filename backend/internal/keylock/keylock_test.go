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
