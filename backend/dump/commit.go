package dump

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/dump/cas"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Commit implements dotmesh.StorageBackend: one manifest of the whole tree
// (every subdot), new chunks staged and synced, then the record.
func (b *Backend) Commit(ctx context.Context, c dotmesh.CommitRef) (map[string]string, error) {
	br := c.BranchRef
	if err := b.needTree(br); err != nil {
		return nil, err
	}
	if _, err := os.Lstat(b.recordPath(c)); err == nil {
		return nil, fmt.Errorf("%w: commit %s exists already", dotmesh.ErrAlreadyExists, c)
	}
	defer b.useStore()()
	start := time.Now()

	batch, err := b.store.NewBatch()
	if err != nil {
		return nil, err
	}
	defer batch.Abort()
	// Sources stream their dumps into the batch; see sources.go.
	srcFacts, placed, states, err := b.dumpSources(ctx, br, batch)
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", c, err)
	}
	root, rec, st, err := b.snapshot(ctx, c, batch, placed)
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", c, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	tSync := time.Now()
	dotmesh.ReportPhase(ctx, "syncing")
	if err := batch.Commit(); err != nil {
		return nil, fmt.Errorf("commit %s: %w", c, err)
	}
	st.sync = time.Since(tSync)
	if err := b.writeRecord(c, rec); err != nil {
		return nil, err
	}
	if err := b.writeSynced(br, root); err != nil {
		// The commit is complete; only the change cache falls behind.
		b.log.WarnContext(ctx, "commit stored but the change cache was not updated", "commit", c, "err", err)
	}
	if len(states) > 0 {
		if err := b.saveSourceStates(br, states); err != nil {
			b.log.WarnContext(ctx, "commit stored but the sources' fingerprints were not", "commit", c, "err", err)
		}
	}
	if st.skipped > 0 {
		b.log.WarnContext(ctx, "commit skipped special files (only files, directories and symlinks are stored) or files deleted during the walk", "commit", c, "count", st.skipped)
	}

	objects, stored, plain := batch.Stats()
	elapsed := time.Since(start)
	b.log.DebugContext(ctx, "committed", "commit", c, "files", rec.Files, "bytes", rec.Bytes, "read", st.read,
		"new_chunks", objects, "new_bytes_stored", stored, "took", elapsed, "reading", st.reading, "syncing", st.sync)
	facts := map[string]string{
		"files":                strconv.FormatInt(rec.Files, 10),
		"dirs":                 strconv.FormatInt(rec.Dirs, 10),
		"symlinks":             strconv.FormatInt(rec.Symlinks, 10),
		"bytes":                strconv.FormatInt(rec.Bytes, 10),
		"bytes_read":           strconv.FormatInt(st.read, 10),
		"new_chunks":           strconv.FormatInt(objects, 10),
		"new_bytes":            strconv.FormatInt(plain, 10),
		"new_bytes_stored":     strconv.FormatInt(stored, 10),
		dotmesh.InfoAddedBytes: strconv.FormatInt(stored, 10),
		"manifest":             root.String(),
		"duration_ms":          strconv.FormatInt(elapsed.Milliseconds(), 10),
	}
	if st.skipped > 0 {
		facts["skipped"] = strconv.Itoa(st.skipped)
	}
	maps.Copy(facts, srcFacts)
	return facts, nil
}

type snapshotStats struct {
	read          int64 // file bytes read
	skipped       int   // special files, and files gone before they were read
	reading, sync time.Duration
}

// walkBatch is how many entries the walk of a commit hands on at a
// time: it bounds the entries held (a few batches) whatever the tree.
const walkBatch = 4096

// entryBatch is a run of entries in tree order whose files are being read.
type entryBatch struct {
	entries []Entry
	reading sync.WaitGroup // files of entries not yet read
}

// snapshot walks the tree of c's branch and stores its manifest through
// batch, returning its root and the commit's record. It reads only files
// that neither placed (files whose chunks are known, with their stat
// data), the synced manifest nor the chunks received for c
// (receivedChunks) vouch for; new chunks go to batch. The walk, the
// reading and the manifest's encoding run along together, a few
// thousand entries apart: nothing holds an entry per file of the tree.
func (b *Backend) snapshot(ctx context.Context, c dotmesh.CommitRef, batch *cas.Batch, placed map[string]*Entry) (cas.Hash, commitRecord, snapshotStats, error) {
	br := c.BranchRef
	var st snapshotStats
	// The clock probe comes before the walk: see forgetRacy and fsTick.
	fsNow, err := fsTick(b.branchDir(br))
	if err != nil {
		return cas.Hash{}, commitRecord{}, st, err
	}
	tree := b.treeDir(br)
	// The synced manifest is read along with the walk, both in tree
	// order, rather than decoded whole and indexed by path.
	cache := b.syncedCursor(ctx, br)
	vouched := func(e *Entry) []Chunk {
		if p := placed[e.Path]; statMatches(p, e) {
			return p.Chunks
		}
		if old := cache.seekOrDrop(ctx, b, br, e.Path); statMatches(old, e) {
			return old.Chunks
		}
		return b.receivedChunks(c, e)
	}

	// The total is unknown until the walk ends: the meter counts up.
	meter := dotmesh.StartProgress(ctx, "hashing", 0)
	start := time.Now()
	files := b.startReading(ctx, tree, batch, meter)
	mw := newManifestWriter(b.branchDir(br))
	defer mw.close()

	// Batches go from the walk to the encoder in order through queue and
	// come back through free for reuse.
	const inFlight = 3
	queue := make(chan *entryBatch, inFlight)
	free := make(chan *entryBatch, inFlight)
	for i := 0; i < inFlight; i++ {
		free <- &entryBatch{entries: make([]Entry, 0, walkBatch)}
	}
	encoded := make(chan error, 1)
	go func() {
		var err error
		for eb := range queue {
			eb.reading.Wait()
			for i := range eb.entries {
				if err != nil {
					break
				}
				e := &eb.entries[i]
				if e.Type == 0 {
					st.skipped++
					continue
				}
				forgetRacyEntry(e, fsNow)
				if err = mw.add(e); err != nil {
					files.s.fail(err) // stops the walk and the readers
				}
			}
			clear(eb.entries)
			eb.entries = eb.entries[:0]
			free <- eb
		}
		encoded <- err
	}()

	cur := <-free
	flush := func() error {
		eb := cur
		for i := range eb.entries {
			e := &eb.entries[i]
			if e.Type != TypeFile {
				continue
			}
			if cs := vouched(e); cs != nil {
				e.Chunks = cs
				continue
			}
			eb.reading.Add(1)
			files.read(e, &eb.reading)
		}
		queue <- eb
		cur = <-free
		if err := files.failed(); err != nil {
			return err
		}
		return ctx.Err()
	}
	err = walkTree(tree, func(e *Entry) error {
		cur.entries = append(cur.entries, *e)
		if len(cur.entries) < walkBatch {
			return nil
		}
		return flush()
	})
	if err == nil && len(cur.entries) > 0 {
		err = flush()
	}
	if err != nil {
		files.s.fail(err)
	}
	close(queue)
	encErr := <-encoded
	read, readErr := files.finish()
	st.read = read
	st.reading = time.Since(start)
	for _, e := range []error{err, readErr, encErr, ctx.Err()} {
		if e != nil {
			return cas.Hash{}, commitRecord{}, st, e
		}
	}
	meter.Done()
	root, rec, err := mw.store(batch)
	return root, rec, st, err
}

// Commits implements dotmesh.StorageBackend: the commits whose record is
// on br, sorted by id.
func (b *Backend) Commits(ctx context.Context, br dotmesh.BranchRef) ([]dotmesh.CommitID, error) {
	if !b.branchExists(br) {
		return nil, fmt.Errorf("%w: branch %s is not stored on this backend", dotmesh.ErrNotFound, br)
	}
	ents, err := os.ReadDir(b.commitsDir(br))
	if errors.Is(err, fs.ErrNotExist) {
		return []dotmesh.CommitID{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list commits of %s: %w", br, err)
	}
	out := []dotmesh.CommitID{}
	for _, e := range ents {
		if e.Type().IsRegular() && dotmesh.ValidateID("commit", e.Name(), false) == nil {
			out = append(out, dotmesh.CommitID(e.Name()))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// DeleteCommit implements dotmesh.StorageBackend: the record goes; its
// objects are reclaimed by CollectGarbage. Missing is not an error.
func (b *Backend) DeleteCommit(ctx context.Context, c dotmesh.CommitRef) error {
	err := os.Remove(b.recordPath(c))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete commit %s: %w", c, err)
	}
	if err := syncDirectory(b.commitsDir(c.BranchRef)); err != nil {
		return fmt.Errorf("delete commit %s: %w", c, err)
	}
	return nil
}
