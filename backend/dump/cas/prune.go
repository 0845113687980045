package cas

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dotmesh-io/dotmesh/backend/dump/internal/durable"
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
	victims   []*pack         // packs to delete
	moved     []entry         // their kept objects, to copy into a new pack
	movedFrom map[Hash]*pack  // where each moved object is now
	dead      map[*pack]int64 // objects removed with each victim
	objects   int64           // objects removed
	before    int64           // bytes of the victims' files
}

// plan picks the packs that hold an object keep rejects, or bytes no
// index entry names.
func (s *Store) plan(keep func(Hash) bool) prunePlan {
	type use struct {
		kept, dead []entry
		used       int64 // bytes of records the index names
	}
	s.mu.RLock()
	uses := make(map[*pack]*use, len(s.packs))
	for _, p := range s.packs {
		uses[p] = &use{}
	}
	for h, l := range s.index {
		u := uses[l.p]
		e := entry{h: h, off: l.off, n: l.n}
		if keep(h) {
			u.kept = append(u.kept, e)
		} else {
			u.dead = append(u.dead, e)
		}
		u.used += recordHeader + int64(l.n)
	}
	s.mu.RUnlock()
	pl := prunePlan{movedFrom: map[Hash]*pack{}, dead: map[*pack]int64{}}
	var small []*pack
	for p, u := range uses {
		if len(u.dead) == 0 && u.used+int64(len(packMagic)) == p.size {
			if p.size < smallPack {
				small = append(small, p)
			}
			continue
		}
		pl.victims = append(pl.victims, p)
		pl.before += p.size + s.indexSize(p)
		pl.objects += int64(len(u.dead))
		pl.dead[p] = int64(len(u.dead))
		for _, e := range u.kept {
			pl.moved = append(pl.moved, e)
			pl.movedFrom[e.h] = p
		}
	}
	if len(small) >= mergeAt {
		for _, p := range small {
			pl.victims = append(pl.victims, p)
			pl.before += p.size + s.indexSize(p)
			for _, e := range uses[p].kept {
				pl.moved = append(pl.moved, e)
				pl.movedFrom[e.h] = p
			}
		}
	}
	return pl
}

// PlanPrune reports what Prune(keep) would remove, changing nothing.
func (s *Store) PlanPrune(keep func(Hash) bool) PruneStats {
	pl := s.plan(keep)
	after := int64(0)
	if len(pl.moved) > 0 {
		after = int64(len(packMagic)) + int64(indexHead+len(pl.moved)*indexEntry+HashSize)
		for _, e := range pl.moved {
			after += recordHeader + int64(e.n)
		}
	}
	return PruneStats{Objects: pl.objects, Bytes: max(pl.before-after, 0)}
}

// Prune removes every object for which keep returns false. Packs left with
// no object are deleted; packs with some are rewritten into one new pack
// holding their kept objects, which also reclaims bytes that no index
// names (objects taken back while staged, copies another pack holds).
// Once there are mergeAt packs under smallPack, they go into it too. The
// new pack is published before any old one goes, so a crash leaves each
// kept object findable (and a removed one, at worst, back until the next
// Prune). A pack with a kept object that cannot be read (damaged: Verify
// names it) is left as it is, garbage and all, so nothing more is lost.
//
// The caller keeps batches away while Prune runs.
func (s *Store) Prune(keep func(Hash) bool) (PruneStats, error) {
	pl := s.plan(keep)
	victims, moved, movedFrom := pl.victims, pl.moved, pl.movedFrom
	stats := PruneStats{Objects: pl.objects}
	if len(victims) == 0 {
		return stats, nil
	}
	before := pl.before

	var fresh *pack
	if len(moved) > 0 {
		b, err := s.NewBatch()
		if err != nil {
			return PruneStats{}, err
		}
		b.replace = true
		slices.SortFunc(moved, func(a, b entry) int { // read each pack in order
			if c := strings.Compare(movedFrom[a.h].id, movedFrom[b.h].id); c != 0 {
				return c
			}
			return cmp.Compare(a.off, b.off)
		})
		unreadable := map[*pack]bool{}
		for _, e := range moved {
			from := movedFrom[e.h]
			if unreadable[from] {
				continue
			}
			comp, err := s.readFrom(from, e)
			if err != nil {
				s.log.Warn("pack not rewritten: an object it keeps is unreadable", "pack", from.id, "err", err)
				unreadable[from] = true
				continue
			}
			if err := b.stage(e.h, comp); err != nil {
				b.Abort()
				return PruneStats{}, fmt.Errorf("rewriting packs: %w", err)
			}
		}
		if len(unreadable) > 0 {
			kept := victims[:0]
			for _, p := range victims {
				if unreadable[p] {
					stats.Objects -= pl.dead[p]
					before -= p.size + s.indexSize(p)
				} else {
					kept = append(kept, p)
				}
			}
			victims = kept
		}
		if err := b.Commit(); err != nil {
			return PruneStats{}, fmt.Errorf("rewriting packs: %w", err)
		}
		s.mu.RLock()
		fresh = s.packs[b.id]
		s.mu.RUnlock()
	}

	// The kept objects point at the new pack now: forget the dead ones
	// and the old packs, then delete the old packs' files (index first: a
	// pack without one is removed by Open).
	gone := make(map[*pack]bool, len(victims))
	s.mu.Lock()
	for _, p := range victims {
		gone[p] = true
		delete(s.packs, p.id)
	}
	for h, l := range s.index {
		if gone[l.p] {
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
	if fresh != nil {
		after = fresh.size + s.indexSize(fresh)
	}
	stats.Bytes = max(before-after, 0)
	return stats, errors.Join(errs...)
}

func (s *Store) indexSize(p *pack) int64 {
	st, err := os.Stat(s.packPath(p.id, ".idx"))
	if err != nil {
		return 0
	}
	return st.Size()
}

// readFrom reads object e's stored bytes from pack p.
func (s *Store) readFrom(p *pack, e entry) ([]byte, error) {
	f, done, err := s.openPack(p)
	if err != nil {
		return nil, err
	}
	defer done()
	return readRecord(f, e.off, e.n, e.h, s.packPath(p.id, ".pack"))
}
