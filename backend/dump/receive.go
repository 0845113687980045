package dump

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/dotmesh-io/dotmesh/backend/dump/cas"
	"github.com/dotmesh-io/dotmesh/backend/dump/internal/delta"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Receive implements dotmesh.StorageBackend. Objects are verified as they
// arrive and staged; only when the trailer checks out and every object
// the commit needs is present (in the stream or already here) does the
// commit record appear. The branch needs no working tree: CreateBranch
// from the received commit makes one.
//
// Resume: verified objects are published to the store in steps (every
// recvFlushBytes) and pinned for target (pins.go), and when the stream
// breaks off (truncated, connection lost, canceled) the rest of what was
// staged is published too. A re-run's have/want exchange (HaveObjects)
// then finds them and the sender leaves them out. Objects are content
// addressed and each was checked against its hash, so keeping them
// cannot make a damaged commit; a stream shown to be altered (bad hash,
// bad checksum, bad framing) keeps nothing and drops target's pin.
func (b *Backend) Receive(ctx context.Context, target dotmesh.CommitRef, base *dotmesh.CommitRef, r io.Reader) error {
	defer b.startReceive(target.BranchRef)()
	if _, err := os.Lstat(b.recordPath(target)); err == nil {
		return fmt.Errorf("%w: commit %s is already stored here", dotmesh.ErrAlreadyExists, target)
	}
	defer b.useStore()()
	if base != nil {
		if _, _, err := b.readRecord(*base); err != nil {
			return fmt.Errorf("receive %s incrementally: base: %w", target, err)
		}
	}
	st, err := b.newObjectStager(ctx, target)
	if err != nil {
		return err
	}
	defer st.abort()

	var recData []byte
	err = readStream(r, streamHandler{
		header: func(h streamHeader) error {
			if h.Commit != string(target.ID) {
				return fmt.Errorf("%w: the stream carries commit %q, not %s", dotmesh.ErrInvalidArgument, h.Commit, target.ID)
			}
			return nil
		},
		object: func(h cas.Hash, stored []byte) error { return st.put(h, nil, stored) },
		delta:  st.put,
		record: func(data []byte) error {
			recData = append([]byte(nil), data...)
			return nil
		},
	})
	if serr := st.wait(); err == nil {
		err = serr
	}
	if err != nil {
		if keepPartial(err) {
			if n, kerr := st.publish(); kerr != nil {
				b.log.WarnContext(ctx, "cannot keep the objects of an interrupted receive", "commit", target, "err", kerr)
			} else {
				b.log.InfoContext(ctx, "kept the objects of an interrupted receive for a re-run", "commit", target, "objects", st.kept+n)
			}
		} else {
			b.dropPin(target)
		}
		return fmt.Errorf("receive %s: %w", target, err)
	}
	rec, err := parseRecord(recData, "received commit "+target.String())
	if err != nil {
		b.dropPin(target)
		return err
	}
	if _, err := st.publish(); err != nil {
		return fmt.Errorf("receive %s: %w", target, err)
	}
	root, _ := rec.root()
	sm, err := loadManifest(b.store, root)
	if err != nil {
		return fmt.Errorf("receive %s: %w", target, err)
	}
	missing := 0
	var first cas.Hash
	err = sm.objects(func(h cas.Hash) error {
		ok, err := b.store.Has(h)
		if err != nil {
			return err
		}
		if !ok {
			if missing == 0 {
				first = h
			}
			missing++
		}
		return nil
	})
	if err == nil && missing > 0 {
		err = fmt.Errorf("%w: the stream lacks %d objects (%s first) and this node does not have them (was it sent incrementally from a base this node lacks?)", dotmesh.ErrCorrupt, missing, first)
	}
	if err != nil {
		return fmt.Errorf("receive %s: %w", target, err)
	}
	// Counts are recomputed rather than taken from the peer.
	if err := b.writeRecord(target, recordFor(root, sm.Manifest)); err != nil {
		return err
	}
	b.dropPin(target)
	return nil
}

// keepPartial tells a stream that broke off (its objects are worth
// keeping) from one shown to be altered or not meant for this commit.
func keepPartial(err error) bool {
	if errors.Is(err, errTruncated) {
		return true
	}
	return !errors.Is(err, dotmesh.ErrCorrupt) && !errors.Is(err, dotmesh.ErrInvalidArgument)
}

// recvFlushBytes is how many stored bytes a receive stages before it
// publishes and pins them, so that a crash loses at most that much.
const recvFlushBytes = 32 << 20

// objectStager verifies and stages received objects on all workers while
// the stream is being read; memory is bounded by a fixed set of buffers.
// Every recvFlushBytes it publishes what it staged (see Receive).
type objectStager struct {
	b      *Backend
	ctx    context.Context
	target dotmesh.CommitRef
	jobs   chan stagedObject
	bufs   chan []byte
	wg     sync.WaitGroup

	// owned by the stream reader's goroutine
	batch    *cas.Batch
	inflight sync.WaitGroup
	pending  []cas.Hash // received since the last publish
	bytes    int64
	flush    int64
	kept     int // objects published so far

	mu  sync.Mutex
	err error
}

type stagedObject struct {
	batch  *cas.Batch
	hash   cas.Hash
	stored []byte     // or a delta, with bases
	bases  []cas.Hash // of a delta
}

func (b *Backend) newObjectStager(ctx context.Context, target dotmesh.CommitRef) (*objectStager, error) {
	batch, err := b.store.NewBatch()
	if err != nil {
		return nil, err
	}
	s := &objectStager{
		b:      b,
		ctx:    ctx,
		target: target,
		batch:  batch,
		flush:  b.recvFlush(),
		jobs:   make(chan stagedObject, b.workers),
		bufs:   make(chan []byte, 2*b.workers+2),
	}
	for i := 0; i < cap(s.bufs); i++ {
		s.bufs <- nil
	}
	for i := 0; i < b.workers; i++ {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			var scratch, comp []byte
			var sc deltaScratch
			for j := range s.jobs {
				if s.failed() == nil {
					var err error
					if j.bases == nil {
						_, scratch, err = j.batch.PutStored(j.hash, j.stored, scratch)
					} else {
						comp, err = s.putDelta(j, &scratch, comp, &sc)
					}
					if err != nil {
						s.fail(err)
					}
				}
				s.bufs <- j.stored[:0]
				s.inflight.Done()
			}
		}()
	}
	return s, nil
}

func (b *Backend) recvFlush() int64 {
	if n := b.recvFlushTest.Load(); n > 0 {
		return n
	}
	return recvFlushBytes
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

// putDelta rebuilds a received delta's object, checks it and stages it
// like a received object; comp is a compression buffer, returned grown.
func (s *objectStager) putDelta(j stagedObject, plain *[]byte, comp []byte, sc *deltaScratch) ([]byte, error) {
	out, err := s.b.applyDelta(j.hash, j.bases, j.stored, *plain, sc)
	if err != nil {
		return comp, err
	}
	*plain = out
	claimed, err := j.batch.Claim(j.hash)
	if err != nil || !claimed {
		return comp, err
	}
	return j.batch.WriteClaimed(j.hash, out, comp)
}

// put queues a copy of stored, an object or (with bases) a delta; the
// stream reader reuses its buffers.
func (s *objectStager) put(h cas.Hash, bases []cas.Hash, stored []byte) error {
	if err := s.failed(); err != nil {
		return err
	}
	var buf []byte
	select {
	case buf = <-s.bufs:
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
	s.inflight.Add(1)
	s.jobs <- stagedObject{batch: s.batch, hash: h, stored: append(buf[:0], stored...), bases: bases}
	s.pending = append(s.pending, h)
	n := len(stored)
	if bases != nil {
		// What it will store: about its size (bounded, checked later).
		if size, err := delta.Size(stored); err == nil {
			n = int(min(size, cas.MaxObjectSize))
		}
	}
	s.bytes += int64(n)
	if s.bytes < s.flush {
		return nil
	}
	// Publish what is staged: wait for the queued objects, then swap in
	// a new batch. Only this goroutine queues, so nothing races.
	s.inflight.Wait()
	if err := s.failed(); err != nil {
		return err
	}
	n, err := s.publish()
	if err != nil {
		s.fail(err)
		return err
	}
	s.kept += n
	if s.batch, err = s.b.store.NewBatch(); err != nil {
		s.fail(err)
		return err
	}
	return nil
}

// publish pins the objects received since the last publish and makes the
// staged ones visible; the caller makes sure none is in flight.
func (s *objectStager) publish() (int, error) {
	if err := s.b.addPins(s.target, s.pending); err != nil {
		return 0, err
	}
	hs, err := s.batch.CommitStaged()
	s.pending, s.bytes = s.pending[:0], 0
	return len(hs), err
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

// abort drops whatever is still staged.
func (s *objectStager) abort() {
	if s.batch != nil {
		s.batch.Abort()
	}
}
