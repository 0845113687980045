package repo

import (
	"math/bits"
	"sync"
)

// Buffers for reads whose caller gives their memory back
// (GetBlobsFramesPooled): a clone reads its whole tree through a few
// MiB-sized buffers, and a fresh allocation of each costs zeroing it and
// collecting it (about a tenth of a clone's CPU time, measured with
// pprof on BenchmarkNodeCloneFromBucket).

// Buffers are pooled by power-of-two size class, from 64 KiB to 64 MiB;
// others are allocated and dropped as usual.
const (
	minPoolClass = 16
	maxPoolClass = 26
)

var bufPools [maxPoolClass + 1]sync.Pool

// poolClass is the size class of a buffer of n bytes, or -1.
func poolClass(n int) int {
	if n <= 0 {
		return -1
	}
	c := max(bits.Len(uint(n-1)), minPoolClass)
	if c > maxPoolClass {
		return -1
	}
	return c
}

// bufs hands out buffers and keeps them for one release.
type bufs struct {
	held [][]byte
}

// get returns a buffer of n bytes whose contents are undefined.
func (p *bufs) get(n int) []byte {
	c := poolClass(n)
	if c < 0 {
		return make([]byte, n)
	}
	var b []byte
	if v, ok := bufPools[c].Get().(*[]byte); ok {
		b = (*v)[:n]
	} else {
		b = make([]byte, n, 1<<c)
	}
	p.held = append(p.held, b)
	return b
}

// release returns every buffer get handed out; none may be used after.
func (p *bufs) release() {
	for _, b := range p.held {
		if c := poolClass(cap(b)); c >= 0 && cap(b) == 1<<c {
			b = b[:cap(b)]
			bufPools[c].Put(&b)
		}
	}
	p.held = nil
}
