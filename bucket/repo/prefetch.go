package repo

import (
	"context"
	"sync"

	"github.com/dotmesh-io/dotmesh/bucket"
)

// indexPrefetch is the index objects of an encrypted repository read
// while Open derives the password's key (about half a second of CPU, on
// a clone's critical path, with the network idle): their names and
// their stored bytes, opened once the key is known. The first readIndex
// takes them (a later one, or a strict one, lists anew); what a gc
// removed since is as if read just before it (GetBlobs reads the index
// again when a pack it names is gone).
type indexPrefetch struct {
	cancel context.CancelFunc
	done   chan struct{}
	names  []string
	raw    map[string][]byte // at most prefetchMax bytes in all
	err    error
}

// prefetchMax bounds the bytes of index objects read ahead; those past
// it are read by readIndex as without a prefetch.
const prefetchMax = 16 << 20

// startIndexPrefetch lists and reads the index objects of st on a
// goroutine until ctx ends or stop.
func startIndexPrefetch(ctx context.Context, st bucket.Store) *indexPrefetch {
	ctx, cancel := context.WithCancel(ctx)
	p := &indexPrefetch{cancel: cancel, done: make(chan struct{}), raw: map[string][]byte{}}
	go func() {
		defer close(p.done)
		if p.err = st.List(ctx, indexDir, func(oi bucket.ObjectInfo) error {
			if parseIndexObject(oi.Name) == nil {
				p.names = append(p.names, oi.Name)
			}
			return nil
		}); p.err != nil {
			return
		}
		var (
			mu    sync.Mutex
			wg    sync.WaitGroup
			sem   = make(chan struct{}, 8)
			total int64
		)
		for _, name := range p.names {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				b, err := readSmall(ctx, st, name, maxStored)
				mu.Lock()
				defer mu.Unlock()
				if err == nil && total+int64(len(b)) <= prefetchMax {
					p.raw[name] = b
					total += int64(len(b))
				}
			}()
		}
		wg.Wait()
	}()
	return p
}

// wait waits for the prefetch to end and returns what it read: nil
// names after a failure.
func (p *indexPrefetch) wait() ([]string, map[string][]byte) {
	<-p.done
	p.cancel()
	if p.err != nil {
		return nil, nil
	}
	return p.names, p.raw
}

// stop ends the prefetch and waits for it.
func (p *indexPrefetch) stop() {
	p.cancel()
	<-p.done
}

// takePrefetch returns the index objects read ahead, once: nil after.
func (r *Repo) takePrefetch() *indexPrefetch {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.prefetch
	r.prefetch = nil
	return p
}

// dropPrefetch ends a prefetch not taken: what it read may be older
// than what a caller needs now.
func (r *Repo) dropPrefetch() {
	if p := r.takePrefetch(); p != nil {
		p.stop()
	}
}
