package repo

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
)

// indexEvery is how many stored packs a packer indexes at once before a
// Flush: a push killed later keeps them (it resumes from there).
const indexEvery = 4

// packBuf is a pack being filled or uploaded. The packer spools it to
// an unlinked temporary file f (size bytes), which keeps a writer's heap
// small; its blobs are read from there until it is stored, then from the
// store. Prune's repacker holds it in buf.
type packBuf struct {
	id      ID
	name    string
	buf     []byte
	f       *os.File
	size    int
	entries []packEntry
}

// newSpool makes the temporary file of a pack, unlinked at once so that
// nothing is left behind by a killed writer.
func newSpool() (*os.File, error) {
	f, err := os.CreateTemp("", "dotmesh-pack-")
	if err != nil {
		return nil, fmt.Errorf("a temporary file for a pack: %w", err)
	}
	os.Remove(f.Name())
	return f, nil
}

// packer gathers the blobs a Repo writes into packs, stores full packs
// in the background (at most PacksInFlight held at once) and writes
// index objects naming stored packs. Blobs it holds are pending: not yet
// present to HasBlobs, but not written twice by this Repo either.
type packer struct {
	r      *Repo
	ctx    context.Context // uploads' context; close cancels it
	cancel context.CancelFunc
	slots  chan struct{} // one per pack in memory

	mu        sync.Mutex
	cur       *packBuf
	pending   map[ID]*packBuf
	stored    []*packBuf // stored, not yet indexed
	uploading int
	idle      chan struct{} // closed when uploading drops to 0
	err       error         // an upload or index write failed: Flush reports it
}

func newPacker(r *Repo) *packer {
	ctx, cancel := context.WithCancel(context.Background())
	return &packer{r: r, ctx: ctx, cancel: cancel, slots: make(chan struct{}, r.opts.PacksInFlight), pending: map[ID]*packBuf{}}
}

func (p *packer) close() {
	p.cancel()
	p.mu.Lock()
	idle := p.idleLocked()
	if p.cur != nil {
		p.cur.f.Close()
		p.cur = nil
	}
	p.mu.Unlock()
	<-idle
}

// idleLocked is a channel closed once no upload runs.
func (p *packer) idleLocked() chan struct{} {
	if p.idle == nil {
		p.idle = make(chan struct{})
		if p.uploading == 0 {
			close(p.idle)
		}
	}
	return p.idle
}

// has says whether id is pending in this packer.
func (p *packer) has(id ID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pending[id] != nil
}

// add puts the stored form of blob id into the current pack, and stores
// the pack once full. It reports false when id was pending already.
func (p *packer) add(ctx context.Context, id ID, sealed []byte) (bool, error) {
	for {
		p.mu.Lock()
		if err := p.err; err != nil {
			p.mu.Unlock()
			return false, err
		}
		if p.pending[id] != nil {
			p.mu.Unlock()
			return false, nil
		}
		if p.cur != nil {
			break
		}
		p.mu.Unlock()
		// A pack being filled or stored needs a slot: the bound on what a
		// writer holds.
		select {
		case p.slots <- struct{}{}:
		case <-ctx.Done():
			return false, ctx.Err()
		}
		p.mu.Lock()
		if p.cur == nil {
			f, err := newSpool()
			if err != nil {
				p.mu.Unlock()
				<-p.slots
				return false, err
			}
			pid := newPackID()
			p.cur = &packBuf{id: pid, name: PackObject(pid), f: f}
			p.mu.Unlock()
			continue
		}
		p.mu.Unlock()
		<-p.slots // another writer made one
	}
	pb := p.cur
	if len(pb.entries) > 0 && packFull(pb.size+len(sealed), len(pb.entries)+1, p.r.opts.PackSize) {
		// It would overflow: the pack goes without it, it waits for the
		// next.
		p.cur = nil
		p.startLocked()
		p.mu.Unlock()
		go p.upload(pb)
		return p.add(ctx, id, sealed)
	}
	if _, err := pb.f.WriteAt(sealed, int64(pb.size)); err != nil {
		p.mu.Unlock()
		return false, fmt.Errorf("spooling a pack: %w", err)
	}
	pb.entries = append(pb.entries, packEntry{ID: id, Offset: uint32(pb.size), Length: uint32(len(sealed))})
	pb.size += len(sealed)
	p.pending[id] = pb
	p.mu.Unlock()
	return true, nil
}

// packFull says whether a pack of n blobs taking size bytes, with its
// header, would be more than target bytes: packs stay under it, so that
// one goes up in one request (bucket/s3's PartSize).
func packFull(size, n, target int) bool {
	return size+n*(packEntrySize+8)+64 > target
}

func (p *packer) startLocked() {
	if p.uploading == 0 {
		p.idle = nil
	}
	p.uploading++
}

// upload stores pb (its slot is released after), and indexes the
// stored packs once indexEvery wait.
func (p *packer) upload(pb *packBuf) {
	// Readers read blobs from pb.f meanwhile: the header goes after them.
	tail := p.r.codec.sealPack(pb.name, nil, pb.entries)
	_, err := pb.f.WriteAt(tail, int64(pb.size))
	if err == nil {
		size := int64(pb.size + len(tail))
		err = p.r.store.Put(p.ctx, pb.name, io.NewSectionReader(pb.f, 0, size), size)
	}
	p.mu.Lock()
	pb.f.Close()
	pb.f = nil
	var index []*packBuf
	if err != nil {
		p.failLocked(fmt.Errorf("storing pack %s: %w", pb.name, err), pb)
	} else {
		p.stored = append(p.stored, pb)
		if len(p.stored) >= indexEvery {
			index, p.stored = p.stored, nil
		}
	}
	p.mu.Unlock()
	<-p.slots
	if index != nil {
		p.index(p.ctx, index)
	}
	p.mu.Lock()
	p.uploading--
	if p.uploading == 0 && p.idle != nil {
		close(p.idle)
	}
	p.mu.Unlock()
}

// failLocked records err and forgets the blobs of packs that will not
// be indexed, so that they are written again.
func (p *packer) failLocked(err error, pbs ...*packBuf) {
	if p.err == nil {
		p.err = err
	}
	for _, pb := range pbs {
		for _, e := range pb.entries {
			if p.pending[e.ID] == pb {
				delete(p.pending, e.ID)
			}
		}
	}
}

// index writes an index object naming the stored packs pbs; their blobs
// are then present.
func (p *packer) index(ctx context.Context, pbs []*packBuf) error {
	ps := make([]indexPack, len(pbs))
	for i, pb := range pbs {
		ps[i] = indexPack{Pack: pb.id, Blobs: pb.entries}
	}
	_, err := p.r.writeIndex(ctx, ps)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		err = fmt.Errorf("storing the index of %d packs: %w", len(pbs), err)
		p.failLocked(err, pbs...)
		return err
	}
	p.r.mu.Lock()
	if ix := p.r.index; ix != nil {
		ix.add(ps)
	}
	p.r.mu.Unlock()
	for _, pb := range pbs {
		for _, e := range pb.entries {
			if p.pending[e.ID] == pb {
				delete(p.pending, e.ID)
			}
		}
	}
	return nil
}

// flush stores the current pack, waits for every upload and indexes what
// is stored. It returns (and clears) the first failure since the last
// flush: the blobs of failed packs are then not pending any more.
func (p *packer) flush(ctx context.Context) error {
	p.mu.Lock()
	cur := p.cur
	p.cur = nil
	if cur != nil {
		p.startLocked()
	}
	p.mu.Unlock()
	if cur != nil {
		p.upload(cur)
	}
	for {
		p.mu.Lock()
		idle := p.idleLocked()
		p.mu.Unlock()
		select {
		case <-idle:
		case <-ctx.Done():
			return ctx.Err()
		}
		p.mu.Lock()
		if p.uploading == 0 {
			break
		}
		p.mu.Unlock()
	}
	stored, err := p.stored, p.err
	p.stored, p.err = nil, nil
	if err != nil {
		p.failLocked(err, stored...)
		p.err = nil // reported here
	}
	p.mu.Unlock()
	if err != nil {
		return err
	}
	if len(stored) == 0 {
		return nil
	}
	if err := p.index(ctx, stored); err != nil {
		p.mu.Lock()
		p.err = nil // reported here
		p.mu.Unlock()
		return err
	}
	return nil
}

// read returns the stored form of pending blob id: from memory while its
// pack is, else from the stored pack. ok is false when id is not pending.
func (p *packer) read(ctx context.Context, id ID) (stored []byte, pack string, ok bool, err error) {
	p.mu.Lock()
	pb := p.pending[id]
	if pb == nil {
		p.mu.Unlock()
		return nil, "", false, nil
	}
	var e packEntry
	for _, pe := range pb.entries {
		if pe.ID == id {
			e = pe
			break
		}
	}
	if pb.f != nil {
		b := make([]byte, e.Length)
		_, err := pb.f.ReadAt(b, int64(e.Offset))
		p.mu.Unlock()
		return b, pb.name, true, err
	}
	p.mu.Unlock()
	b, err := p.r.readRange(ctx, pb.name, e)
	return b, pb.name, true, err
}
