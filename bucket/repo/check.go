package repo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"

	"github.com/dotmesh-io/dotmesh/bucket"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// CheckOptions say how much Check reads.
type CheckOptions struct {
	// ReadData opens blobs too: all of them, or those of a random
	// DataPercent of the packs (and of loose blobs) when 0 < DataPercent
	// < 100. Without it only packs' headers are read.
	ReadData    bool
	DataPercent float64
	// Parallel bounds concurrent reads (default 4).
	Parallel int
}

// Problem is one object that failed a check.
type Problem struct {
	Object string
	Err    error
	// Blobs are the blobs the problem loses (of a pack: those that fail,
	// or all it should hold), so that a caller names what needs them.
	Blobs []ID
}

// CheckResult is what Check found.
type CheckResult struct {
	Objects   int // objects looked at
	Blobs     int // blobs the index names, and loose blobs
	BlobsRead int
	Packs     int // packs stored
	// Unindexed counts packs no index names: a writer's that was killed
	// (garbage for Prune), or one's still writing.
	Unindexed int
	Problems  []Problem
}

// Err is nil when no problem was found, else a CorruptError naming the
// first bad object and counting the others.
func (c CheckResult) Err() error {
	if len(c.Problems) == 0 {
		return nil
	}
	p := c.Problems[0]
	err := p.Err
	if len(c.Problems) > 1 {
		err = fmt.Errorf("%v (and %d more bad objects)", err, len(c.Problems)-1)
	}
	var ce *CorruptError
	if errors.As(p.Err, &ce) && len(c.Problems) == 1 {
		return p.Err
	}
	return &CorruptError{Name: p.Object, Err: err}
}

// Check opens every object but blobs (keys, locks, records, refs, index
// objects) and every pack's header, checking that the index says what
// the packs hold and names no missing pack; with ReadData it reads packs
// (and loose blobs) whole, opening every blob and checking it against
// its ID. Bad objects are Problems, never fatal;
// the error is for a check that could not run (the store unreachable).
func (r *Repo) Check(ctx context.Context, o CheckOptions) (CheckResult, error) {
	if o.Parallel <= 0 {
		o.Parallel = 4
	}
	var (
		mu  sync.Mutex
		res CheckResult
	)
	bad := func(name string, err error, blobs ...ID) {
		mu.Lock()
		res.Problems = append(res.Problems, Problem{Object: name, Err: err, Blobs: blobs})
		mu.Unlock()
	}
	// Reads run in parallel; errors other than a bad object stop the check.
	var (
		wg      sync.WaitGroup
		sem     = make(chan struct{}, o.Parallel)
		fatalMu sync.Mutex
		fatal   error
	)
	run := func(name string, f func() ([]ID, error)) {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			blobs, err := f()
			var ce *CorruptError
			switch {
			case err == nil, errors.Is(err, dotmesh.ErrNotFound):
				// Gone since the listing: an unlock, a ref's old version.
			case errors.As(err, &ce), errors.Is(err, dotmesh.ErrCorrupt):
				bad(name, err, blobs...)
			default:
				fatalMu.Lock()
				if fatal == nil {
					fatal = err
				}
				fatalMu.Unlock()
			}
		}()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ix := newRepoIndex()
	indexOf := map[ID]string{} // pack -> an index object naming it
	packs := map[ID]int64{}
	var loose []ID
	err := r.store.List(ctx, "", func(oi bucket.ObjectInfo) error {
		res.Objects++
		name := oi.Name
		switch {
		case name == configName:
			// Checked by Open.
		case strings.HasPrefix(name, keysDir):
			run(name, func() ([]ID, error) {
				b, err := readSmall(ctx, r.store, name, maxKeySize)
				if err == nil {
					if _, err = parseKeyFile(b); err != nil {
						err = corrupt(name, err)
					}
				}
				return nil, err
			})
		case strings.HasPrefix(name, locksDir):
			run(name, func() ([]ID, error) { _, err := r.readLock(ctx, name); return nil, err })
		case strings.HasPrefix(name, recordsDir):
			kind, _, _ := strings.Cut(strings.TrimPrefix(name, recordsDir), "/")
			if validKind(kind) != nil {
				bad(name, corrupt(name, errors.New("not a record's name")))
				return nil
			}
			if _, err := r.parseRecordName(kind, name); err != nil {
				bad(name, err)
				return nil
			}
			run(name, func() ([]ID, error) { _, err := r.get(ctx, kindRecord, name); return nil, err })
		case strings.HasPrefix(name, refsDir):
			tok, err := parseRefObject(name)
			if err == nil {
				if _, err = r.codec.untoken("ref", tok); err != nil {
					err = corrupt(name, err)
				}
			}
			if err != nil {
				bad(name, err)
				return nil
			}
			run(name, func() ([]ID, error) { _, err := r.get(ctx, kindRef, name); return nil, err })
		case strings.HasPrefix(name, indexDir):
			if err := parseIndexObject(name); err != nil {
				bad(name, corrupt(name, err))
				return nil
			}
			run(name, func() ([]ID, error) {
				ps, err := r.readIndexObject(ctx, name)
				if err == nil {
					mu.Lock()
					ix.add(ps)
					for _, p := range ps {
						indexOf[p.Pack] = name
					}
					mu.Unlock()
				}
				return nil, err
			})
		case strings.HasPrefix(name, packsDir):
			id, err := ParsePackObject(name)
			if err != nil {
				bad(name, corrupt(name, err))
				return nil
			}
			packs[id] = oi.Size
		case strings.HasPrefix(name, dataDir):
			id, err := ParseBlobObject(name)
			if err != nil {
				bad(name, corrupt(name, err))
				return nil
			}
			loose = append(loose, id)
		default:
			bad(name, corrupt(name, errors.New("is no object of a repository")))
		}
		fatalMu.Lock()
		defer fatalMu.Unlock()
		return fatal
	})
	wg.Wait()
	if err == nil {
		err = fatal
	}
	if err != nil {
		return res, err
	}
	var total int64
	for _, size := range packs {
		total += size
	}
	meter := dotmesh.StartProgress(ctx, PhaseVerifying, total)
	r.checkPacks(ctx, o, ix, indexOf, packs, loose, &res, run, bad, meter)
	wg.Wait()
	meter.Done()
	return res, fatal
}

// PhaseVerifying is Check's progress phase: the bytes of the packs
// checked (their headers, or read whole as CheckOptions say).
const PhaseVerifying = "verifying"

// checkPacks checks what the index objects say against the packs (every
// entry inside a stored pack, as its header says), reads the packs'
// headers, or with ReadData (a sample of) the packs and loose blobs
// whole.
func (r *Repo) checkPacks(ctx context.Context, o CheckOptions, ix *repoIndex, indexOf map[ID]string, packs map[ID]int64, loose []ID,
	res *CheckResult, run func(string, func() ([]ID, error)), bad func(string, error, ...ID), meter *dotmesh.ProgressMeter) {
	var mu sync.Mutex
	res.Packs = len(packs)
	for pid, es := range ix.packs {
		if _, ok := packs[pid]; !ok {
			ids := make([]ID, len(es))
			for i, e := range es {
				ids[i] = e.ID
			}
			bad(PackObject(pid), fmt.Errorf("missing: index object %s names it", indexOf[pid]), ids...)
		}
	}
	blobs := map[ID]bool{}
	for id := range ix.blobs {
		blobs[id] = true
	}
	sample := func() bool {
		return o.ReadData && (o.DataPercent <= 0 || o.DataPercent >= 100 || rand.Float64()*100 < o.DataPercent)
	}
	for pid, size := range packs {
		indexed, ok := ix.packs[pid]
		if !ok {
			res.Unindexed++
			r.log.Info("repository: a pack no index names (a killed or running writer's)", "pack", PackObject(pid))
		}
		name, whole := PackObject(pid), sample()
		run(name, func() ([]ID, error) {
			es, failed, err := r.checkPack(ctx, name, size, whole)
			meter.Add(size)
			if err != nil && es == nil {
				ids := make([]ID, len(indexed))
				for i, e := range indexed {
					ids[i] = e.ID
				}
				if whole { // read, and all lost
					mu.Lock()
					res.BlobsRead += len(ids)
					mu.Unlock()
				}
				return ids, err
			}
			if whole {
				mu.Lock()
				res.BlobsRead += len(es)
				mu.Unlock()
			}
			// The index must say what the header says.
			at := make(map[ID]packEntry, len(es))
			for _, e := range es {
				at[e.ID] = e
			}
			for _, e := range indexed {
				if h, ok := at[e.ID]; !ok || h != e {
					failed = append(failed, e.ID)
					if err == nil {
						err = corrupt(name, fmt.Errorf("index object %s says it holds blob %s at offset %d, its header does not", indexOf[pid], e.ID, e.Offset))
					}
				}
			}
			return failed, err
		})
	}
	for _, id := range loose {
		if !blobs[id] {
			blobs[id] = true
		}
		if !sample() {
			continue
		}
		mu.Lock()
		res.BlobsRead++
		mu.Unlock()
		run(BlobObject(id), func() ([]ID, error) { _, err := r.getLoose(ctx, id); return []ID{id}, err })
	}
	res.Blobs = len(blobs)
}

// checkPack reads pack name's header, or the whole pack, and opens every
// blob in it; it returns the entries, and the blobs that fail with the
// first failure as a CorruptError.
func (r *Repo) checkPack(ctx context.Context, name string, size int64, whole bool) ([]packEntry, []ID, error) {
	if size < int64(packTrailer) || size > maxPackSize {
		return nil, nil, corrupt(name, fmt.Errorf("%d bytes: no pack is that size (truncated?)", size))
	}
	if whole {
		b, err := r.readWhole(ctx, name, size)
		if err != nil {
			return nil, nil, err
		}
		es, failed, first, err := r.codec.parsePack(name, b)
		if err != nil {
			return nil, nil, corrupt(name, err)
		}
		if first != nil {
			return es, failed, corrupt(name, first)
		}
		return es, nil, nil
	}
	tail, err := r.readRange(ctx, name, packEntry{Offset: uint32(size) - uint32(packTrailer), Length: uint32(packTrailer)})
	if err != nil {
		return nil, nil, err
	}
	hl, err := packTail(tail, size)
	if err != nil {
		return nil, nil, corrupt(name, err)
	}
	blobsEnd := size - int64(packTrailer) - hl
	hdr, err := r.readRange(ctx, name, packEntry{Offset: uint32(blobsEnd), Length: uint32(hl)})
	if err != nil {
		return nil, nil, err
	}
	es, err := r.codec.openPackHeader(name, hdr, blobsEnd)
	if err != nil {
		return nil, nil, corrupt(name, err)
	}
	return es, nil, nil
}
