package repo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/dotmesh-io/dotmesh/bucket"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Index objects (package doc) say which blobs each pack holds.
const (
	indexDir     = "index/"
	indexVersion = 1
	// maxIndexEntries bounds the blobs one index object names (~2 MiB).
	maxIndexEntries = 50000
)

// indexPack is one pack as an index object lists it.
type indexPack struct {
	Pack  ID
	Blobs []packEntry
}

// encodeIndex is an index object's plaintext: version, then per pack
// its ID and entries.
func encodeIndex(ps []indexPack) []byte {
	b := []byte{indexVersion}
	for _, p := range ps {
		b = append(b, p.Pack[:]...)
		b = appendEntries(b, p.Blobs)
	}
	return b
}

// decodeIndex decodes an index object's plaintext.
func decodeIndex(b []byte) ([]indexPack, error) {
	if len(b) == 0 || b[0] != indexVersion {
		return nil, errors.New("index: unknown version")
	}
	b = b[1:]
	var ps []indexPack
	for len(b) > 0 {
		if len(b) < 32 {
			return nil, errors.New("index: a truncated pack ID")
		}
		var p indexPack
		copy(p.Pack[:], b)
		es, rest, err := readEntries(b[32:], maxPackSize)
		if err != nil {
			return nil, fmt.Errorf("index: pack %s: %v", p.Pack, err)
		}
		p.Blobs, b = es, rest
		ps = append(ps, p)
	}
	return ps, nil
}

// IndexObject is the store object of index object id (index/<64 hex>);
// IDs are random.
func indexObject(id ID) string { return indexDir + id.String() }

func parseIndexObject(name string) error {
	rest, ok := strings.CutPrefix(name, indexDir)
	if !ok {
		return errors.New("not index/<64 hex>")
	}
	_, err := ParseID(rest)
	return err
}

// blobLoc is where a blob is: in a pack, or loose (data/, the layout of
// repositories written before packs).
type blobLoc struct {
	packEntry
	Pack  ID
	Loose bool
}

// repoIndex is what a Repo knows is stored.
type repoIndex struct {
	blobs map[ID]blobLoc
	// packs are the indexed packs' entries; files the index objects read.
	packs map[ID][]packEntry
	files []string
	// dups counts blobs indexed twice (a crash between a repack's new
	// index and the removal of the old one): Prune drops the copies.
	dups int
}

func newRepoIndex() *repoIndex {
	return &repoIndex{blobs: map[ID]blobLoc{}, packs: map[ID][]packEntry{}}
}

// add records the packs of one index object.
func (ix *repoIndex) add(ps []indexPack) {
	for _, p := range ps {
		if _, seen := ix.packs[p.Pack]; seen {
			continue // listed by two index objects: once is enough
		}
		ix.packs[p.Pack] = p.Blobs
		for _, e := range p.Blobs {
			if l, ok := ix.blobs[e.ID]; ok && !l.Loose {
				ix.dups++
				continue
			}
			ix.blobs[e.ID] = blobLoc{packEntry: e, Pack: p.Pack}
		}
	}
}

// readIndex reads every index object and lists loose blobs. strict
// fails on a damaged index object (what deletes must know everything);
// otherwise it is logged and skipped, so that a writer re-stores the
// blobs it named.
func (r *Repo) readIndex(ctx context.Context, strict bool) (*repoIndex, error) {
	var (
		names []string
		raw   map[string][]byte
	)
	if p := r.takePrefetch(); p != nil && !strict {
		names, raw = p.wait()
	} else if p != nil {
		p.stop() // what deletes must know is read now
	}
	if names == nil {
		if err := r.store.List(ctx, indexDir, func(oi bucket.ObjectInfo) error {
			if err := parseIndexObject(oi.Name); err != nil {
				r.log.Warn("repository: not an index object's name", "object", oi.Name, "err", err)
				return nil
			}
			names = append(names, oi.Name)
			return nil
		}); err != nil {
			return nil, err
		}
	}
	ix := newRepoIndex()
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
		sem   = make(chan struct{}, 8)
		got   = make([][]indexPack, len(names))
	)
	for i, name := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			var ps []indexPack
			var err error
			if b, ok := raw[name]; ok {
				ps, err = r.openIndexObject(name, b)
			} else {
				ps, err = r.readIndexObject(ctx, name)
			}
			switch {
			case errors.Is(err, dotmesh.ErrNotFound):
				// Removed since the listing (a gc replaced it).
			case err != nil && !strict && errors.Is(err, dotmesh.ErrCorrupt):
				r.log.Warn("repository: skipping a damaged index object; its blobs count as missing", "object", name, "err", err)
			case err != nil:
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			default:
				got[i] = ps
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	for i, ps := range got {
		if ps != nil {
			ix.add(ps)
			ix.files = append(ix.files, names[i])
		}
	}
	err := r.store.List(ctx, dataDir, func(oi bucket.ObjectInfo) error {
		id, err := ParseBlobObject(oi.Name)
		if err != nil {
			r.log.Warn("repository: not a blob's name", "object", oi.Name, "err", err)
			return nil
		}
		if _, ok := ix.blobs[id]; !ok {
			ix.blobs[id] = blobLoc{packEntry: packEntry{ID: id, Length: uint32(min(oi.Size, int64(maxStored)))}, Loose: true}
		}
		return nil
	})
	return ix, err
}

func (r *Repo) readIndexObject(ctx context.Context, name string) ([]indexPack, error) {
	b, err := r.get(ctx, kindRecord, name)
	if err != nil {
		return nil, err
	}
	return decodeIndexObject(name, b)
}

// openIndexObject opens index object name's stored bytes b.
func (r *Repo) openIndexObject(name string, b []byte) ([]indexPack, error) {
	pt, err := r.codec.open(kindRecord, name, b)
	if err != nil {
		return nil, corrupt(name, err)
	}
	return decodeIndexObject(name, pt)
}

func decodeIndexObject(name string, b []byte) ([]indexPack, error) {
	ps, err := decodeIndex(b)
	if err != nil {
		return nil, corrupt(name, err)
	}
	return ps, nil
}

// writeIndex stores index objects naming ps (split to bound their
// size) and returns their names.
func (r *Repo) writeIndex(ctx context.Context, ps []indexPack) ([]string, error) {
	var names []string
	for len(ps) > 0 {
		n, entries := 0, 0
		for n < len(ps) && (n == 0 || entries+len(ps[n].Blobs) <= maxIndexEntries) {
			entries += len(ps[n].Blobs)
			n++
		}
		name := indexObject(newPackID())
		if err := r.put(ctx, kindRecord, name, encodeIndex(ps[:n]), true, false); err != nil {
			return names, err
		}
		names = append(names, name)
		ps = ps[n:]
	}
	return names, nil
}
