package dump

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/dotmesh-io/dotmesh/backend/dump/cas"
	"github.com/dotmesh-io/dotmesh/backend/internal/refs"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Receive implements dotmesh.StorageBackend. Objects are verified as they
// arrive and staged; only when the trailer checks out and every object
// the commit needs is present (in the stream or already here) do they
// become visible, followed by the commit record. The branch needs no
// working tree: CreateBranch from the received commit makes one.
func (b *Backend) Receive(ctx context.Context, target dotmesh.CommitRef, base *dotmesh.CommitRef, r io.Reader) error {
	if err := refs.Validate(target, base); err != nil {
		return err
	}
	if err := b.checkOpen(); err != nil {
		return err
	}
	defer b.lockBranch(target.BranchRef)()
	if _, err := os.Lstat(b.recordPath(target)); err == nil {
		return fmt.Errorf("%w: commit %s is already stored here", dotmesh.ErrAlreadyExists, target)
	}
	done, err := b.useStore()
	if err != nil {
		return err
	}
	defer done()
	if base != nil {
		if _, _, err := b.readRecord(*base); err != nil {
			return fmt.Errorf("receive %s incrementally: base: %w", target, err)
		}
	}
	batch, err := b.store.NewBatch()
	if err != nil {
		return err
	}
	defer batch.Abort()

	var recData []byte
	st := b.newObjectStager(ctx, batch)
	err = readStream(r, streamHandler{
		header: func(h streamHeader) error {
			if h.Commit != string(target.ID) {
				return fmt.Errorf("%w: the stream carries commit %q, not %s", dotmesh.ErrInvalidArgument, h.Commit, target.ID)
			}
			return nil
		},
		object: st.put,
		record: func(data []byte) error {
			recData = append([]byte(nil), data...)
			return nil
		},
	})
	if serr := st.wait(); err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("receive %s: %w", target, err)
	}
	rec, err := parseRecord(recData, "received commit "+target.String())
	if err != nil {
		return err
	}
	root, _ := rec.root()
	sm, err := loadManifest(batch, root)
	if err != nil {
		return fmt.Errorf("receive %s: %w", target, err)
	}
	err = sm.objects(func(h cas.Hash) error {
		ok, err := batch.Has(h)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: the stream lacks object %s and this node does not have it (was it sent incrementally from a base this node lacks?)", dotmesh.ErrCorrupt, h)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("receive %s: %w", target, err)
	}
	if err := batch.Commit(); err != nil {
		return fmt.Errorf("receive %s: %w", target, err)
	}
	// Counts are recomputed rather than taken from the peer.
	return b.writeRecord(target, recordFor(root, sm.Manifest))
}

// objectStager verifies and stages received objects on all workers while
// the stream is being read; memory is bounded by a fixed set of buffers.
type objectStager struct {
	ctx   context.Context
	batch *cas.Batch
	jobs  chan stagedObject
	bufs  chan []byte
	wg    sync.WaitGroup

	mu  sync.Mutex
	err error
}

type stagedObject struct {
	hash   cas.Hash
	stored []byte
}

func (b *Backend) newObjectStager(ctx context.Context, batch *cas.Batch) *objectStager {
	s := &objectStager{
		ctx:   ctx,
		batch: batch,
		jobs:  make(chan stagedObject, b.workers),
		bufs:  make(chan []byte, 2*b.workers+2),
	}
	for i := 0; i < cap(s.bufs); i++ {
		s.bufs <- nil
	}
	for i := 0; i < b.workers; i++ {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			var scratch []byte
			for j := range s.jobs {
				if s.failed() == nil {
					var err error
					if _, scratch, err = batch.PutStored(j.hash, j.stored, scratch); err != nil {
						s.fail(err)
					}
				}
				s.bufs <- j.stored[:0]
			}
		}()
	}
	return s
}

func (s *objectStager) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
}

func (s *objectStager) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// put queues a copy of stored (the stream reader reuses its buffer).
func (s *objectStager) put(h cas.Hash, stored []byte) error {
	if err := s.failed(); err != nil {
		return err
	}
	var buf []byte
	select {
	case buf = <-s.bufs:
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
	s.jobs <- stagedObject{hash: h, stored: append(buf[:0], stored...)}
	return nil
}

// wait finishes the queued objects and reports the first failure.
func (s *objectStager) wait() error {
	close(s.jobs)
	s.wg.Wait()
	if err := s.failed(); err != nil {
		return err
	}
	return s.ctx.Err()
}
