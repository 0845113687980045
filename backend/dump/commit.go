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
	m, st, err := b.snapshot(ctx, c, batch, placed)
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", c, err)
	}
	root, err := storeManifest(batch, m)
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
	rec := recordFor(root, m)
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

// snapshot walks the tree of c's branch and returns its manifest, reading
// only files that neither placed (files whose chunks are known, with
// their stat data), the synced manifest nor the chunks received for c
// (receivedChunks) vouch for; new chunks go to batch.
func (b *Backend) snapshot(ctx context.Context, c dotmesh.CommitRef, batch *cas.Batch, placed map[string]*Entry) (*Manifest, snapshotStats, error) {
	br := c.BranchRef
	var st snapshotStats
	// The clock probe comes before the walk: see forgetRacy and fsTick.
	fsNow, err := fsTick(b.branchDir(br))
	if err != nil {
		return nil, st, err
	}
	tree := b.treeDir(br)
	entries, err := scanTree(tree)
	if err != nil {
		return nil, st, err
	}
	// The synced manifest is read along with the scan, both in tree
	// order, rather than decoded whole and indexed by path: for many
	// small files that was most of the node's memory.
	cache := b.syncedIter(br)
	var old Entry
	haveOld := false
	var todo []int
	for i := range entries {
		e := &entries[i]
		if e.Type != TypeFile {
			continue
		}
		if p := placed[e.Path]; statMatches(p, e) {
			e.Chunks = p.Chunks
			continue
		}
		for cache != nil && (!haveOld || comparePath(old.Path, e.Path) < 0) {
			ok, err := cache.next(&old)
			if err != nil {
				b.log.WarnContext(ctx, "ignoring the rest of an unreadable synced manifest; the commit reads those files", "branch", br, "err", err)
				ok = false
			}
			if !ok {
				cache, haveOld = nil, false
				break
			}
			haveOld = true
		}
		if haveOld && old.Path == e.Path && statMatches(&old, e) {
			e.Chunks = old.Chunks
			continue
		}
		if cs := b.receivedChunks(c, e); cs != nil {
			e.Chunks = cs
			continue
		}
		todo = append(todo, i)
	}
	var total int64
	for _, i := range todo {
		total += entries[i].Size
	}
	meter := dotmesh.StartProgress(ctx, "hashing", total)
	start := time.Now()
	if st.read, err = b.readFiles(ctx, tree, entries, todo, batch, meter); err != nil {
		return nil, st, err
	}
	st.reading = time.Since(start)
	meter.Done()
	m := &Manifest{Entries: entries[:0]}
	for _, e := range entries {
		if e.Type == 0 {
			st.skipped++
			continue
		}
		m.Entries = append(m.Entries, e)
	}
	forgetRacy(m.Entries, fsNow)
	return m, st, nil
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
