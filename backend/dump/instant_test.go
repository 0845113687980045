package dump

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// TestBarrier: nobody passes until all have arrived; none waits for zero.
func TestBarrier(t *testing.T) {
	newBarrier(0).arrive() // nobody to wait for: returns at once
	const n = 4
	b := newBarrier(n)
	var passed atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < n-1; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.arrive()
			passed.Add(1)
		}()
	}
	time.Sleep(50 * time.Millisecond)
	if passed.Load() != 0 {
		t.Fatal("passed before the last arrived")
	}
	b.arrive()
	wg.Wait()
	if passed.Load() != n-1 {
		t.Fatalf("%d passed", passed.Load())
	}
}

func TestSpreadMillis(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range []struct {
		in   []time.Time
		want string
	}{
		{nil, "0.000"},
		{[]time.Time{t0}, "0.000"},
		{[]time.Time{t0.Add(3 * time.Millisecond), t0, t0.Add(12345 * time.Microsecond)}, "12.345"},
	} {
		if got := dotmesh.SnapshotSpread(c.in); got != c.want {
			t.Errorf("SnapshotSpread(%v) = %s, want %s", c.in, got, c.want)
		}
	}
}
