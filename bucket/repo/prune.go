package repo

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/dotmesh-io/dotmesh/bucket"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// DefaultMaxUnused is the share of a pack's bytes that may be unused
// blobs before Prune repacks it (restic repacks by a like threshold).
const DefaultMaxUnused = 0.2

// PruneOptions tune Prune.
type PruneOptions struct {
	// MaxUnused: a pack whose unused bytes are more than this share of
	// it is repacked (0 means DefaultMaxUnused; 1 never repacks, so only
	// packs with no used blob go).
	MaxUnused float64
	// DryRun reports what would go and changes nothing.
	DryRun bool
	// Lock, the exclusive lock held, is checked between steps: a lock
	// lost stops the prune.
	Lock *Lock
}

// PruneResult says what Prune removed (or would remove).
type PruneResult struct {
	Blobs int // blobs no longer stored
	// Bytes is what the removed blobs took (their stored size, as
	// ListBlobs gives it) and packs no index names: what a dry run can
	// tell exactly. Freed is what the store holds less: removed packs
	// and loose blobs less the packs written.
	Bytes        int64
	Freed        int64
	PacksDeleted int // packs removed (their used blobs repacked)
	PacksWritten int
	Repacked     int64 // bytes of used blobs copied into new packs
}

// Prune removes the blobs keep refuses: packs holding no used blob go,
// packs with more than MaxUnused unused bytes are repacked (their used
// blobs copied into new packs), loose blobs go, as do packs no index
// names (left by a killed writer). The caller holds the exclusive lock.
//
// Every step leaves a repository with every used blob: new packs, then
// an index naming all that stays, then the old index objects go, then
// the old packs. A crash leaves duplicates or garbage for the next
// prune, never a missing blob. A used blob that does not open stops the
// prune before anything is deleted.
func (r *Repo) Prune(ctx context.Context, keep func(ID) bool, o PruneOptions) (PruneResult, error) {
	return r.prune(ctx, keep, o, nil)
}

// PhaseRepacking is Prune's progress phase: the bytes of the packs read
// to write their used blobs into new ones.
const PhaseRepacking = "repacking"

// prune is Prune; with only it repacks just the packs holding blob
// *only (DeleteBlob), leaving the rest alone.
func (r *Repo) prune(ctx context.Context, keep func(ID) bool, o PruneOptions, only *ID) (PruneResult, error) {
	var res PruneResult
	if o.MaxUnused <= 0 {
		o.MaxUnused = DefaultMaxUnused
	}
	lockErr := func() error {
		if o.Lock != nil {
			return o.Lock.Err()
		}
		return nil
	}
	ix, err := r.readIndex(ctx, true)
	if err != nil {
		return res, err
	}
	sizes := map[ID]int64{}
	if err := r.store.List(ctx, packsDir, func(oi bucket.ObjectInfo) error {
		if id, err := ParsePackObject(oi.Name); err == nil {
			sizes[id] = oi.Size
		}
		return nil
	}); err != nil {
		return res, err
	}

	var (
		drop, repack []ID // packs that go; of repack the used blobs stay
		kept         []indexPack
		changed      = ix.dups > 0
		gone         = map[ID]int64{} // blobs whose copy goes: their size
	)
	canonical := func(pack ID, e packEntry) bool {
		l := ix.blobs[e.ID]
		return !l.Loose && l.Pack == pack && l.Offset == e.Offset
	}
	packIDs := make([]ID, 0, len(ix.packs))
	for id := range ix.packs {
		packIDs = append(packIDs, id)
	}
	slices.SortFunc(packIDs, func(a, b ID) int { return bytes.Compare(a[:], b[:]) })
	for _, pid := range packIDs {
		es := ix.packs[pid]
		size, ok := sizes[pid]
		if !ok {
			r.log.Warn("repository: an index names a pack that is missing; its blobs count as missing", "pack", PackObject(pid))
			changed = true
			continue
		}
		var used int64
		usedN, holds := 0, false
		for _, e := range es {
			if canonical(pid, e) && keep(e.ID) {
				used += int64(e.Length)
				usedN++
			}
			holds = holds || only != nil && e.ID == *only
		}
		switch {
		case usedN == 0 && (only == nil || holds):
			drop = append(drop, pid)
		case only != nil && holds, only == nil && float64(size-used) > o.MaxUnused*float64(size):
			repack = append(repack, pid)
			res.Repacked += used
		default:
			kept = append(kept, indexPack{Pack: pid, Blobs: es})
			continue
		}
		for _, e := range es {
			if canonical(pid, e) && !keep(e.ID) {
				gone[e.ID] = int64(e.Length)
			}
		}
		res.Freed += size
		changed = true
	}
	res.PacksDeleted = len(drop) + len(repack)
	var orphans []string
	if only == nil {
		for pid, size := range sizes {
			if _, ok := ix.packs[pid]; !ok {
				orphans = append(orphans, PackObject(pid))
				res.Bytes += size
				res.Freed += size
			}
		}
	}
	var loose []ID
	for id, l := range ix.blobs {
		if l.Loose && !keep(id) && (only == nil || id == *only) {
			loose = append(loose, id)
			gone[id] = int64(l.Length)
			res.Freed += int64(l.Length)
		}
	}
	res.Blobs = len(gone)
	for _, n := range gone {
		res.Bytes += n
	}
	entries := 0
	for _, p := range kept {
		entries += len(p.Blobs)
	}
	// Many small index objects (one per push) are merged too.
	changed = changed || len(ix.files) > 2*(entries/maxIndexEntries+1)+8
	if o.DryRun {
		res.Freed -= res.Repacked
		return res, nil
	}

	// New packs of the repacked packs' used blobs.
	w := &repacker{r: r}
	var total int64
	for _, pid := range repack {
		total += sizes[pid]
	}
	meter := dotmesh.StartProgress(ctx, PhaseRepacking, total)
	for _, pid := range repack {
		if err := lockErr(); err != nil {
			return res, err
		}
		name := PackObject(pid)
		b, err := r.readWhole(ctx, name, sizes[pid])
		if err != nil {
			return res, fmt.Errorf("prune deleted nothing: reading pack %s to repack it: %w", name, err)
		}
		for _, e := range ix.packs[pid] {
			if !canonical(pid, e) || !keep(e.ID) {
				continue
			}
			if int64(len(b)) < e.end() {
				return res, fmt.Errorf("prune deleted nothing: %w", corrupt(name, fmt.Errorf("shorter than its blob %s at offset %d", e.ID, e.Offset)))
			}
			stored := b[e.Offset:e.end()]
			if err := r.codec.openBlob(e.ID, stored); err != nil {
				return res, fmt.Errorf("prune deleted nothing: a used blob is damaged: %w", corrupt(name, fmt.Errorf("blob %s at offset %d: %w", e.ID, e.Offset, err)))
			}
			if err := w.add(ctx, e.ID, stored); err != nil {
				return res, fmt.Errorf("prune deleted nothing: %w", err)
			}
		}
		meter.Add(sizes[pid])
	}
	meter.Done()
	if err := w.flush(ctx); err != nil {
		return res, fmt.Errorf("prune deleted nothing: %w", err)
	}
	res.PacksWritten = len(w.packs)
	res.Freed -= w.bytes
	kept = append(w.packs, kept...)

	if changed {
		// Each blob once: copies (a crashed prune's) are left out.
		seen := map[ID]bool{}
		for i, p := range kept {
			es := make([]packEntry, 0, len(p.Blobs))
			for _, e := range p.Blobs {
				if !seen[e.ID] {
					seen[e.ID] = true
					es = append(es, e)
				}
			}
			kept[i].Blobs = es
		}
		if err := lockErr(); err != nil {
			return res, err
		}
		if _, err := r.writeIndex(ctx, kept); err != nil {
			return res, fmt.Errorf("prune deleted nothing: storing the new index: %w", err)
		}
		if err := r.deleteAll(ctx, ix.files, lockErr); err != nil {
			return res, fmt.Errorf("prune stopped removing old index objects (the new index is complete; run it again): %w", err)
		}
	}
	var objs []string
	for _, pid := range append(drop, repack...) {
		objs = append(objs, PackObject(pid))
	}
	objs = append(objs, orphans...)
	for _, id := range loose {
		objs = append(objs, BlobObject(id))
	}
	if err := r.deleteAll(ctx, objs, lockErr); err != nil {
		return res, fmt.Errorf("prune stopped removing packs (what is left is garbage for the next prune): %w", err)
	}
	r.ReloadIndex()
	r.log.Info("repository: pruned", "blobs", res.Blobs, "bytes", res.Bytes, "freed", res.Freed, "packs_deleted", res.PacksDeleted, "packs_written", res.PacksWritten, "repacked", res.Repacked)
	return res, nil
}

// deleteAll removes objects, checking the lock before each.
func (r *Repo) deleteAll(ctx context.Context, objs []string, lockErr func() error) error {
	for _, name := range objs {
		if err := lockErr(); err != nil {
			return err
		}
		if err := r.store.Delete(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

// readWhole reads object name of size bytes (at most a pack's).
func (r *Repo) readWhole(ctx context.Context, name string, size int64) ([]byte, error) {
	if size > maxPackSize {
		return nil, corrupt(name, fmt.Errorf("%d bytes, larger than a pack may be", size))
	}
	rc, err := r.store.Get(ctx, name, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return readAllLimit(rc, maxPackSize, name)
}

// repacker writes blobs' stored forms into new packs, synchronously.
type repacker struct {
	r     *Repo
	cur   *packBuf
	packs []indexPack
	bytes int64
}

func (w *repacker) add(ctx context.Context, id ID, stored []byte) error {
	if w.cur != nil && packFull(len(w.cur.buf)+len(stored), len(w.cur.entries)+1, w.r.opts.PackSize) {
		if err := w.flush(ctx); err != nil {
			return err
		}
	}
	if w.cur == nil {
		pid := newPackID()
		w.cur = &packBuf{id: pid, name: PackObject(pid)}
	}
	w.cur.entries = append(w.cur.entries, packEntry{ID: id, Offset: uint32(len(w.cur.buf)), Length: uint32(len(stored))})
	w.cur.buf = append(w.cur.buf, stored...)
	return nil
}

func (w *repacker) flush(ctx context.Context) error {
	pb := w.cur
	if pb == nil {
		return nil
	}
	w.cur = nil
	out := w.r.codec.sealPack(pb.name, pb.buf, pb.entries)
	if err := w.r.store.Put(ctx, pb.name, bytesReader(out), int64(len(out))); err != nil {
		return fmt.Errorf("storing pack %s: %w", pb.name, err)
	}
	w.packs = append(w.packs, indexPack{Pack: pb.id, Blobs: pb.entries})
	w.bytes += int64(len(out))
	return nil
}
