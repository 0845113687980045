package cas

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/dotmesh-io/dotmesh/backend/internal/durable"
)

// PruneStats reports what Prune removed.
type PruneStats struct {
	Objects int64 // objects removed
	Bytes   int64 // bytes the store's files shrank by
}

// Small packs are merged: one per commit makes many, and each costs an
// index to load at Open and a file to open for reads.
const (
	smallPack = 8 << 20 // packs under this size are merged...
	mergeAt   = 32      // ...once there are this many of them
)

// prunePlan is what Prune with one keep func does.
type prunePlan struct {
	victims []*pack         // packs to delete
	moved   []placed        // their kept objects, to copy into a new pack
	dead    map[*pack]int64 // objects removed with each victim
	punch   []punchPlan     // large packs freed in place (punch.go)
}

// gone sums the objects removed with the victims and their files' bytes.
func (s *Store) gone(victims []*pack, dead map[*pack]int64) (objects, bytes int64) {
	for _, p := range victims {
		objects += dead[p]
		bytes += p.size + s.indexSize(p)
	}
	return objects, bytes
}

// packUse counts one pack's objects in the index: those keep accepts and
// the others, with their records' bytes.
type packUse struct {
	live, dead         int64
	liveUsed, deadUsed int64
}

// plan picks the packs that hold an object keep rejects, or bytes no
// index entry names. A pack with no live object is deleted unread; a
// large one (punchMin live bytes) is freed in place where the file
// system punches holes; the others are rewritten. It counts per pack
// first and lists entries only of the packs it changes, so its memory
// grows with those, not with the store.
func (s *Store) plan(keep func(Hash) bool) prunePlan {
	punchable := s.canPunch()
	s.mu.RLock()
	uses := make(map[*pack]*packUse, len(s.packs))
	for _, p := range s.packs {
		uses[p] = &packUse{}
	}
	for h, l := range s.index {
		u := uses[l.p]
		if keep(h) {
			u.live++
			u.liveUsed += recordHeader + int64(l.n)
		} else {
			u.dead++
			u.deadUsed += recordHeader + int64(l.n)
		}
	}
	s.mu.RUnlock()
	pl := prunePlan{dead: map[*pack]int64{}}
	rewrite := map[*pack]bool{}
	punching := map[*pack]*punchPlan{}
	var small []*pack
	for p, u := range uses {
		used := u.liveUsed + u.deadUsed + int64(len(packMagic))
		switch {
		case u.live == 0:
			pl.victims = append(pl.victims, p)
			pl.dead[p] = u.dead
		case punchable && u.liveUsed >= punchMin:
			all, block, err := allocated(s.packPath(p.id, ".pack"))
			if err != nil {
				continue // gone or unreadable: Verify names it
			}
			// Each record's blocks hold at most one block more than
			// its bytes: beyond that (and extent blocks) lies garbage.
			if u.dead == 0 && all <= u.liveUsed+int64(len(packMagic))+(u.live+1)*block+slack(int(u.live), block) {
				continue
			}
			punching[p] = &punchPlan{p: p, dead: u.dead, allocated: all, block: block, idxBefore: s.indexSize(p)}
		case u.dead > 0 || used != p.size:
			pl.victims = append(pl.victims, p)
			pl.dead[p] = u.dead
			rewrite[p] = true
		case p.size < smallPack:
			small = append(small, p)
		}
	}
	// Rewriting victims adds a pack: count it, or the Prune that makes
	// the mergeAt-th small pack leaves a merge for the next one to find.
	rewritten := 0
	if len(rewrite) > 0 {
		rewritten = 1
	}
	if len(small)+rewritten >= mergeAt {
		for _, p := range small {
			pl.victims = append(pl.victims, p)
			rewrite[p] = true
		}
	}
	if len(rewrite) == 0 && len(punching) == 0 {
		return pl
	}
	s.mu.RLock()
	for h, l := range s.index {
		pp, punched := punching[l.p]
		if !punched && !rewrite[l.p] || !keep(h) {
			continue
		}
		e := entry{h: h, off: l.off, n: l.n}
		if punched {
			pp.live = append(pp.live, e)
		} else {
			pl.moved = append(pl.moved, placed{l.p, e})
		}
	}
	s.mu.RUnlock()
	for _, pp := range punching {
		sortByOffset(pp.live)
		pp.keepBlocks = blocksTouched(pp.live, pp.block)
		if pp.dead == 0 && pp.allocated <= pp.keepBlocks+slack(len(pp.live), pp.block) {
			continue // the bytes beyond the records are extent blocks, not garbage
		}
		pl.punch = append(pl.punch, *pp)
	}
	return pl
}

// PlanPrune reports what Prune(keep) would remove, changing nothing.
func (s *Store) PlanPrune(keep func(Hash) bool) PruneStats {
	pl := s.plan(keep)
	after := int64(0)
	if len(pl.moved) > 0 {
		after = int64(len(packMagic)) + int64(indexHead+len(pl.moved)*indexEntry+HashSize) + s.indexOverhead()
		for _, m := range pl.moved {
			after += recordHeader + int64(m.e.n)
		}
	}
	objects, before := s.gone(pl.victims, pl.dead)
	bytes := max(before-after, 0)
	for _, pp := range pl.punch {
		objects += pp.dead
		idxAfter := int64(indexHead+len(pp.live)*indexEntry+HashSize) + s.indexOverhead()
		bytes += max(pp.allocated-pp.keepBlocks, 0) + max(pp.idxBefore-idxAfter, 0)
	}
	return PruneStats{Objects: objects, Bytes: bytes}
}

// Prune removes every object for which keep returns false. Packs left with
// no object are deleted unread; large packs with some lose the others in
// place (punch.go); small ones are rewritten into one new pack holding
// their kept objects. Both also reclaim bytes that no index names
// (objects taken back while staged, copies another pack holds).
// Once there are mergeAt packs under smallPack, they go into it too. The
// new pack is published before any old one goes, so a crash leaves each
// kept object findable (and a removed one, at worst, back until the next
// Prune). A pack with a kept object that cannot be read (damaged: Verify
// names it) is left as it is, garbage and all, so nothing more is lost.
//
// The caller keeps batches away while Prune runs.
func (s *Store) Prune(keep func(Hash) bool) (PruneStats, error) {
	pl := s.plan(keep)
	victims, moved := pl.victims, pl.moved
	if len(victims) == 0 && len(pl.punch) == 0 {
		return PruneStats{}, nil
	}

	var fresh []*pack
	if len(moved) > 0 {
		b, err := s.NewBatch()
		if err != nil {
			return PruneStats{}, err
		}
		b.replace = true
		sortByPlace(moved)
		unreadable := map[*pack]bool{}
		for _, m := range moved {
			if unreadable[m.p] {
				continue
			}
			comp, err := s.readFrom(m.p, m.e, nil)
			if err != nil {
				s.log.Warn("pack not rewritten: an object it keeps is unreadable", "pack", m.p.id, "err", err)
				unreadable[m.p] = true
				continue
			}
			if err := b.stage(m.e.h, comp); err != nil {
				b.Abort()
				return PruneStats{}, fmt.Errorf("rewriting packs: %w", err)
			}
		}
		victims = slices.DeleteFunc(victims, func(p *pack) bool { return unreadable[p] })
		_, ids, err := b.publishPacks(true)
		if err != nil {
			return PruneStats{}, fmt.Errorf("rewriting packs: %w", err)
		}
		s.mu.RLock()
		for _, id := range ids {
			fresh = append(fresh, s.packs[id])
		}
		s.mu.RUnlock()
	}

	objects, before := s.gone(victims, pl.dead)

	// The kept objects point at the new pack now: forget the dead ones
	// and the old packs, then delete the old packs' files (index first: a
	// pack without one is removed by Open).
	dropped := make(map[*pack]bool, len(victims))
	s.mu.Lock()
	for _, p := range victims {
		dropped[p] = true
		delete(s.packs, p.id)
	}
	for h, l := range s.index {
		if dropped[l.p] {
			delete(s.index, h)
		}
	}
	s.mu.Unlock()
	var errs []error
	for _, p := range victims {
		s.closePack(p)
		for _, ext := range []string{".idx", ".pack"} {
			if err := os.Remove(s.packPath(p.id, ext)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	if err := durable.SyncDirs([]string{filepath.Join(s.dir, packsDir)}, 1); err != nil {
		errs = append(errs, err)
	}
	after := int64(0)
	for _, p := range fresh {
		after += p.size + s.indexSize(p)
	}
	st := PruneStats{Objects: objects, Bytes: max(before-after, 0)}
	punched, freed, err := s.punchPacks(pl.punch)
	st.Objects += punched
	st.Bytes += freed
	return st, errors.Join(append(errs, err)...)
}

func (s *Store) indexSize(p *pack) int64 {
	st, err := os.Stat(s.packPath(p.id, ".idx"))
	if err != nil {
		return 0
	}
	return st.Size()
}
