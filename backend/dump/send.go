package dump

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/dotmesh-io/dotmesh/backend/dump/cas"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Send implements dotmesh.StorageBackend: the objects of target that base
// (when given) does not already have, then the commit record. Objects are
// verified before they leave, so local damage is reported here and not
// blamed on the network.
func (b *Backend) Send(ctx context.Context, target dotmesh.CommitRef, base *dotmesh.CommitRef, w io.Writer) error {
	return b.send(ctx, target, base, nil, w)
}

// SendWithout implements dotmesh.ObjectNegotiator: Send leaving out the
// objects the receiver said it holds.
func (b *Backend) SendWithout(ctx context.Context, target dotmesh.CommitRef, base *dotmesh.CommitRef, have []dotmesh.ObjectID, w io.Writer) error {
	held := make(map[cas.Hash]struct{}, len(have))
	for _, id := range have {
		h, err := parseObjectID(id)
		if err != nil {
			return err
		}
		held[h] = struct{}{}
	}
	return b.send(ctx, target, base, held, w)
}

// streamPlan is what a stream of target carries.
type streamPlan struct {
	rec      *commitRecord
	hdr      streamHeader
	todo     []cas.Hash // objects, in stream order
	sm, base *storedManifest
}

// planStream lists the objects of target's stream: its manifest's,
// without those of base. The caller holds useStore.
func (b *Backend) planStream(target dotmesh.CommitRef, base *dotmesh.CommitRef) (*streamPlan, error) {
	rec, root, err := b.readRecord(target)
	if err != nil {
		return nil, err
	}
	sm, err := loadManifest(b.store, root)
	if err != nil {
		return nil, fmt.Errorf("send %s: %w", target, err)
	}
	skip := map[cas.Hash]struct{}{}
	p := &streamPlan{rec: rec, hdr: streamHeader{Dot: string(target.Dot), Branch: target.Branch, Commit: string(target.ID)}}
	if base != nil {
		_, broot, err := b.readRecord(*base)
		if err != nil {
			return nil, fmt.Errorf("send %s incrementally: base: %w", target, err)
		}
		bm, err := loadManifest(b.store, broot)
		if err != nil {
			return nil, fmt.Errorf("send %s incrementally: base %s: %w", target, base, err)
		}
		_ = bm.objects(func(h cas.Hash) error { skip[h] = struct{}{}; return nil })
		p.hdr.Base = string(base.ID)
		p.base = bm
	}
	p.sm = sm
	_ = sm.objects(func(h cas.Hash) error {
		if _, ok := skip[h]; !ok {
			p.todo = append(p.todo, h)
		}
		return nil
	})
	return p, nil
}

func (b *Backend) send(ctx context.Context, target dotmesh.CommitRef, base *dotmesh.CommitRef, held map[cas.Hash]struct{}, w io.Writer) error {
	defer b.useStore()()
	p, err := b.planStream(target, base)
	if err != nil {
		return err
	}
	recData, err := json.Marshal(p.rec)
	if err != nil {
		return err
	}
	todo := p.todo
	if len(held) > 0 {
		todo = todo[:0:0]
		for _, h := range p.todo {
			if _, ok := held[h]; !ok {
				todo = append(todo, h)
			}
		}
	}

	var srcs map[cas.Hash][]cas.Hash
	if p.base != nil {
		want := make(map[cas.Hash]struct{}, len(todo))
		for _, h := range todo {
			want[h] = struct{}{}
		}
		srcs = deltaSources(p.sm, p.base, want)
	}

	sw, err := newStreamWriter(w)
	if err != nil {
		return fmt.Errorf("send %s: %w", target, err)
	}
	if err := sw.frame(frameHeader, p.hdr.encode()); err != nil {
		return fmt.Errorf("send %s: %w", target, err)
	}
	err = b.fetchVerified(ctx, todo, srcs, func(h cas.Hash, f fetched) error {
		if f.delta != nil {
			return sw.delta(h, srcs[h], f.delta)
		}
		return sw.object(h, f.stored)
	})
	if err != nil {
		return fmt.Errorf("send %s: %w", target, err)
	}
	if err := sw.frame(frameRecord, recData); err != nil {
		return fmt.Errorf("send %s: %w", target, err)
	}
	if err := sw.finish(); err != nil {
		return fmt.Errorf("send %s: %w", target, err)
	}
	return nil
}

// fetched is an object read for sending: its stored form, or a delta
// against the bases deltaSources picked for it.
type fetched struct {
	stored, delta []byte
	err           error
}

// fetchVerified reads and verifies objects on all workers, makes deltas
// for those with sources in srcs, and hands them to fn in the order
// given; a bounded window of objects is in memory.
func (b *Backend) fetchVerified(ctx context.Context, hashes []cas.Hash, srcs map[cas.Hash][]cas.Hash, fn func(h cas.Hash, f fetched) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	slots := make([]chan fetched, len(hashes))
	for i := range slots {
		slots[i] = make(chan fetched, 1)
	}
	window := make(chan struct{}, 2*b.workers+2)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < b.workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var scratch []byte
			var sc deltaScratch
			for i := range jobs {
				h := hashes[i]
				stored, err := b.store.ReadStored(h)
				if err == nil {
					scratch, err = b.store.Decode(h, stored, scratch)
				}
				f := fetched{stored: stored, err: corruptIfMissing(err)}
				if err == nil && srcs[h] != nil {
					f.delta = b.makeDelta(h, srcs[h], scratch, len(stored), &sc)
				}
				slots[i] <- f
			}
		}()
	}
	go func() {
		defer close(jobs)
		for i := range hashes {
			select {
			case window <- struct{}{}:
			case <-ctx.Done():
				return
			}
			jobs <- i
		}
	}()
	defer wg.Wait()
	for i, h := range hashes {
		var r fetched
		select {
		case r = <-slots[i]:
		case <-ctx.Done():
			return ctx.Err()
		}
		if r.err != nil {
			return r.err
		}
		if err := fn(h, r); err != nil {
			return err
		}
		<-window
	}
	return nil
}
