package cas

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"

	"github.com/dotmesh-io/dotmesh/backend/internal/durable"
	"golang.org/x/sys/unix"
)

// Garbage in a large pack is freed in place: the pack's index is
// rewritten without the dead objects, then their bytes are punched out
// of the file (fallocate PUNCH_HOLE, size kept). The cost is the garbage,
// not the live data around it, which rewriting the pack would copy: a
// store of one pack per commit frees 5% of a first commit's data without
// writing the other 95% again (what restic avoids by leaving garbage in
// packs under a threshold; this frees it all). Small packs are still
// rewritten and merged (prune.go), and a file system that cannot punch
// holes gets its packs rewritten as before.
//
// Crash safety: each new index is written beside the old one and
// fsynced, all are renamed in, the directory is fsynced, and only then
// are holes punched, so a crash leaves the old index over intact bytes or
// the new one. Holes a crash lost come back as allocated bytes no index
// names, which the next Prune finds (allocated blocks beyond those of the
// live records) and punches.

// punchMin is the live bytes from which a pack with garbage is punched
// rather than rewritten: below it, copying the live objects costs little
// and merges small packs.
const punchMin = 4 << 20

// punchPlan is one pack to free in place.
type punchPlan struct {
	p          *pack
	live       []entry // sorted by offset
	dead       int64   // objects removed
	allocated  int64   // bytes the pack file holds on disk now
	keepBlocks int64   // bytes of the blocks its magic and live records touch
	block      int64
	idxBefore  int64
}

// allocated returns the bytes path holds on disk and its block size.
func allocated(path string) (bytes, block int64, err error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, 0, err
	}
	return st.Blocks * 512, max(int64(st.Blksize), 512), nil
}

// blocksTouched is the bytes of the blocks that the pack's magic and the
// records of es (sorted by offset) lie in.
func blocksTouched(es []entry, block int64) int64 {
	var n int64
	last := int64(-1) // the last block counted
	add := func(from, to int64) {
		first, end := from/block, (to-1)/block
		if first <= last {
			first = last + 1
		}
		if end >= first {
			n += (end - first + 1) * block
			last = end
		}
	}
	add(0, int64(len(packMagic)))
	for _, e := range es {
		add(e.off-recordHeader, e.off+int64(e.n))
	}
	return n
}

// holes returns the ranges of a pack of size bytes that no record of es
// (sorted by offset) covers, past the magic.
func holes(es []entry, size int64) [][2]int64 {
	var out [][2]int64
	at := int64(len(packMagic))
	for _, e := range es {
		if start := e.off - recordHeader; start > at {
			out = append(out, [2]int64{at, start})
		}
		at = max(at, e.off+int64(e.n))
	}
	if size > at {
		out = append(out, [2]int64{at, size})
	}
	return out
}

// slack is how far a pack's allocated bytes may exceed its live records'
// blocks without garbage: extent tree blocks of a file with many holes.
func slack(live int, block int64) int64 { return block * int64(2+live/128) }

// sortByOffset orders one pack's entries as the pack holds them.
func sortByOffset(es []entry) {
	slices.SortFunc(es, func(a, b entry) int { return int(a.off - b.off) })
}

// canPunch reports whether the store's file system punches holes,
// probed once on a scratch file in staging/.
func (s *Store) canPunch() bool {
	s.punchOnce.Do(func() {
		p := filepath.Join(s.dir, stagingDir, "punch-probe")
		defer os.Remove(p)
		f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return
		}
		defer f.Close()
		if _, err := f.Write(make([]byte, 64<<10)); err != nil {
			return
		}
		s.punchOK = punch(f, 0, 32<<10) == nil
	})
	return s.punchOK
}

func punch(f *os.File, from, to int64) error {
	return unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, from, to-from)
}

// punchPacks frees the garbage of each planned pack in place (see the
// top of this file) and returns the objects removed and bytes freed.
// Dead objects leave the in-memory index first: the caller keeps every
// reader and batch away.
func (s *Store) punchPacks(pps []punchPlan) (objects, freed int64, err error) {
	if len(pps) == 0 {
		return 0, 0, nil
	}
	dir := filepath.Join(s.dir, packsDir)
	var done []punchPlan
	var errs []error
	for _, pp := range pps {
		tmp := s.packPath(pp.p.id, ".idx.tmp")
		os.Remove(tmp)
		if err := writeSynced(tmp, s.encodeIndexOf(pp.p.id, slices.Clone(pp.live))); err != nil {
			os.Remove(tmp)
			errs = append(errs, fmt.Errorf("rewrite index of pack %s: %w", pp.p.id, err))
			continue
		}
		done = append(done, pp)
	}
	// Forget the dead objects, then publish the new indexes.
	s.forgetDead(done)
	for i := 0; i < len(done); i++ {
		pp := done[i]
		if err := os.Rename(s.packPath(pp.p.id, ".idx.tmp"), s.packPath(pp.p.id, ".idx")); err != nil {
			errs = append(errs, fmt.Errorf("publish index of pack %s: %w", pp.p.id, err))
			done = slices.Delete(done, i, i+1)
			i--
		}
	}
	if err := durable.SyncDirs([]string{dir}, 1); err != nil {
		return 0, 0, errors.Join(append(errs, err)...)
	}
	for _, pp := range done {
		objects += pp.dead
		n, err := s.punchHoles(pp)
		freed += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	return objects, freed, errors.Join(errs...)
}

// forgetDead drops from the in-memory index every object that lies in a
// planned pack but not among its live entries.
func (s *Store) forgetDead(pps []punchPlan) {
	live := make(map[*pack]map[int64]bool, len(pps))
	for _, pp := range pps {
		m := make(map[int64]bool, len(pp.live))
		for _, e := range pp.live {
			m[e.off] = true
		}
		live[pp.p] = m
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for h, l := range s.index {
		if m, ok := live[l.p]; ok && !m[l.off] {
			delete(s.index, h)
		}
	}
}

// punchHoles punches every range of pp's pack that no live record
// covers and returns the bytes freed on disk (and by the smaller index).
func (s *Store) punchHoles(pp punchPlan) (int64, error) {
	path := s.packPath(pp.p.id, ".pack")
	// Published packs are read-only (packMode); punching needs a
	// writable descriptor, opened across a moment of owner write.
	if err := os.Chmod(path, 0o600); err != nil {
		return 0, fmt.Errorf("punch pack %s: %w", pp.p.id, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if cerr := os.Chmod(path, packMode); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		return 0, fmt.Errorf("punch pack %s: %w", pp.p.id, err)
	}
	defer f.Close()
	for _, h := range holes(pp.live, pp.p.size) {
		if err := punch(f, h[0], h[1]); err != nil {
			return 0, fmt.Errorf("punch pack %s: %w", pp.p.id, err)
		}
	}
	after, _, err := allocated(path)
	if err != nil {
		return 0, err
	}
	return max(pp.allocated-after, 0) + max(pp.idxBefore-s.indexSize(pp.p), 0), nil
}

// punchState is the Store's memory of whether punching works.
type punchState struct {
	punchOnce sync.Once
	punchOK   bool
}
