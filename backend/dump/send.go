package dump

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/dotmesh-io/dotmesh/backend/dump/cas"
	"github.com/dotmesh-io/dotmesh/backend/internal/refs"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Send implements dotmesh.StorageBackend: the objects of target that base
// (when given) does not already have, then the commit record. Objects are
// verified before they leave, so local damage is reported here and not
// blamed on the network.
func (b *Backend) Send(ctx context.Context, target dotmesh.CommitRef, base *dotmesh.CommitRef, w io.Writer) error {
	if err := refs.Validate(target, base); err != nil {
		return err
	}
	done, err := b.useStore()
	if err != nil {
		return err
	}
	defer done()
	rec, root, err := b.readRecord(target)
	if err != nil {
		return err
	}
	sm, err := loadManifest(b.store, root)
	if err != nil {
		return fmt.Errorf("send %s: %w", target, err)
	}
	skip := map[cas.Hash]struct{}{}
	hdr := streamHeader{Dot: string(target.Dot), Branch: target.Branch, Commit: string(target.ID)}
	if base != nil {
		_, broot, err := b.readRecord(*base)
		if err != nil {
			return fmt.Errorf("send %s incrementally: base: %w", target, err)
		}
		bm, err := loadManifest(b.store, broot)
		if err != nil {
			return fmt.Errorf("send %s incrementally: base %s: %w", target, base, err)
		}
		_ = bm.objects(func(h cas.Hash) error { skip[h] = struct{}{}; return nil })
		hdr.Base = string(base.ID)
	}
	recData, err := json.Marshal(rec)
	if err != nil {
		return err
	}

	sw, err := newStreamWriter(w)
	if err != nil {
		return fmt.Errorf("send %s: %w", target, err)
	}
	if err := sw.frame(frameHeader, hdr.encode()); err != nil {
		return fmt.Errorf("send %s: %w", target, err)
	}
	var todo []cas.Hash
	_ = sm.objects(func(h cas.Hash) error {
		if _, ok := skip[h]; !ok {
			todo = append(todo, h)
		}
		return nil
	})
	err = b.fetchVerified(ctx, todo, func(h cas.Hash, stored []byte) error {
		return sw.object(h, stored)
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

// fetchVerified reads and verifies objects on all workers and hands them
// to fn in the order given; a bounded window of objects is in memory.
func (b *Backend) fetchVerified(ctx context.Context, hashes []cas.Hash, fn func(h cas.Hash, stored []byte) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type fetched struct {
		stored []byte
		err    error
	}
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
			for i := range jobs {
				stored, err := b.store.ReadStored(hashes[i])
				if err == nil {
					scratch, err = b.store.Decode(hashes[i], stored, scratch)
				}
				slots[i] <- fetched{stored, corruptIfMissing(err)}
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
		if err := fn(h, r.stored); err != nil {
			return err
		}
		<-window
	}
	return nil
}
