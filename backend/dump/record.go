package dump

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/dotmesh-io/dotmesh/backend/dump/cas"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// commitRecord is the small file that makes a commit exist. It is written
// last, after every object it needs is durable.
type commitRecord struct {
	Version  int    `json:"version"`
	Manifest string `json:"manifest"` // root hash of the manifest
	Files    int64  `json:"files"`
	Dirs     int64  `json:"dirs"`
	Symlinks int64  `json:"symlinks"`
	Bytes    int64  `json:"bytes"` // content bytes of all files
}

const (
	recordVersion = 1
	// maxRecordSize bounds a record read from disk or from a stream.
	maxRecordSize = 64 << 10
)

func (r *commitRecord) root() (cas.Hash, error) {
	if r.Version != recordVersion {
		return cas.Hash{}, fmt.Errorf("%w: commit record version %d is not supported (want %d)", dotmesh.ErrCorrupt, r.Version, recordVersion)
	}
	h, err := cas.ParseHash(r.Manifest)
	if err != nil {
		return cas.Hash{}, fmt.Errorf("%w: commit record: %w", dotmesh.ErrCorrupt, err)
	}
	return h, nil
}

func recordFor(root cas.Hash, m *Manifest) commitRecord {
	r := commitRecord{Version: recordVersion, Manifest: root.String()}
	for i := range m.Entries {
		switch e := &m.Entries[i]; e.Type {
		case TypeFile:
			r.Files++
			r.Bytes += e.Size
		case TypeDir:
			r.Dirs++
		case TypeSymlink:
			r.Symlinks++
		}
	}
	return r
}

func parseRecord(data []byte, what string) (*commitRecord, error) {
	if len(data) > maxRecordSize {
		return nil, fmt.Errorf("%w: %s: record is %d bytes, over the %d limit", dotmesh.ErrCorrupt, what, len(data), maxRecordSize)
	}
	var r commitRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%w: %s: unreadable record: %v", dotmesh.ErrCorrupt, what, err)
	}
	if _, err := r.root(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return &r, nil
}

// readRecord loads the record of commit c; ErrNotFound when c has none.
func (b *Backend) readRecord(c dotmesh.CommitRef) (*commitRecord, cas.Hash, error) {
	p := b.recordPath(c)
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, cas.Hash{}, fmt.Errorf("%w: commit %s is not stored on this node", dotmesh.ErrNotFound, c)
	}
	if err != nil {
		return nil, cas.Hash{}, fmt.Errorf("read commit %s: %w", c, err)
	}
	if data, err = b.openFile(recordKind(c), data); err != nil {
		return nil, cas.Hash{}, fmt.Errorf("commit %s: %w", c, err)
	}
	r, err := parseRecord(data, "commit "+c.String())
	if err != nil {
		return nil, cas.Hash{}, err
	}
	root, _ := r.root()
	return r, root, nil
}

// recordKind binds a sealed commit record to its commit id.
func recordKind(c dotmesh.CommitRef) string { return "commit record " + string(c.ID) }

// writeRecord makes commit c exist, durably.
func (b *Backend) writeRecord(c dotmesh.CommitRef, r commitRecord) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	dir := b.commitsDir(c.BranchRef)
	if err := os.MkdirAll(dir, privateDir); err != nil {
		return fmt.Errorf("create commit directory of %s: %w", c.BranchRef, err)
	}
	if err := writeFileAtomic(dir, string(c.ID), b.sealFile(recordKind(c), data), true); err != nil {
		return fmt.Errorf("write commit record %s: %w", c, err)
	}
	return nil
}

// The synced state of a branch is the root of the manifest its working
// tree was last made equal to (by Commit, Rollback or CreateBranch), with
// this node's stat data. It drives the change cache and is a GC root.
// Losing it only costs speed: the next commit reads every file.

func (b *Backend) readSynced(br dotmesh.BranchRef) (cas.Hash, bool) {
	data, err := os.ReadFile(b.syncedPath(br))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			b.log.Warn("cannot read the synced state; the next commit reads every file", "branch", br, "err", err)
		}
		return cas.Hash{}, false
	}
	data, err = b.openFile("synced state", data)
	var h cas.Hash
	if err == nil {
		h, err = cas.ParseHash(strings.TrimSpace(string(data)))
	}
	if err != nil {
		b.log.Warn("ignoring a damaged synced state; the next commit reads every file", "branch", br, "err", err)
		return cas.Hash{}, false
	}
	return h, true
}

// loadSynced returns the synced manifest of br, or nil when there is none
// or it cannot be read (the cache is an optimisation, never a requirement).
func (b *Backend) loadSynced(br dotmesh.BranchRef) *storedManifest {
	root, ok := b.readSynced(br)
	if !ok {
		return nil
	}
	sm, err := loadManifest(b.store, root)
	if err != nil {
		b.log.Warn("ignoring an unreadable synced manifest; the next commit reads every file", "branch", br, "err", err)
		return nil
	}
	return sm
}

// syncedIter opens the synced manifest of br for reading in order, or
// returns nil as loadSynced does.
func (b *Backend) syncedIter(br dotmesh.BranchRef) *manifestIter {
	root, ok := b.readSynced(br)
	if !ok {
		return nil
	}
	it, err := iterManifest(b.store, root)
	if err != nil {
		b.log.Warn("ignoring an unreadable synced manifest; the next commit reads every file", "branch", br, "err", err)
		return nil
	}
	return it
}

// syncedCursor is syncedIter as a manifestCursor: empty when there is
// no readable synced manifest.
func (b *Backend) syncedCursor(ctx context.Context, br dotmesh.BranchRef) *manifestCursor {
	c, err := newManifestCursor(b.syncedIter(br))
	if err != nil {
		b.log.WarnContext(ctx, "ignoring an unreadable synced manifest; the next commit reads every file", "branch", br, "err", err)
		c = &manifestCursor{}
	}
	return c
}

// seekOrDrop is seek on a synced manifest's cursor, which is only a
// cache: damage found on the way is logged and ends it.
func (c *manifestCursor) seekOrDrop(ctx context.Context, b *Backend, br dotmesh.BranchRef, p string) *Entry {
	e, err := c.seek(p, nil)
	if err != nil {
		b.log.WarnContext(ctx, "ignoring the rest of an unreadable synced manifest; those files are read", "branch", br, "err", err)
		*c = manifestCursor{}
	}
	return e
}

func (b *Backend) writeSynced(br dotmesh.BranchRef, root cas.Hash) error {
	if err := writeFileAtomic(b.branchDir(br), "synced", b.sealFile("synced state", []byte(root.String()+"\n")), false); err != nil {
		return fmt.Errorf("record synced state of %s: %w", br, err)
	}
	return nil
}

// writeFileAtomic replaces dir/name with data: temp file, fsync, rename,
// and (when syncDir) fsync of the directory so the new name survives a
// power cut.
func writeFileAtomic(dir, name string, data []byte, syncDir bool) error {
	tmp := filepath.Join(dir, tmpPrefix+name+"-"+randomSuffix())
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, privateFile)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		os.Remove(tmp)
		return err
	}
	if syncDir {
		return syncDirectory(dir)
	}
	return nil
}

func syncDirectory(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// tmpPrefix starts the names of every temporary file or directory the
// backend makes; leftovers from a crash are removed by Open (outside
// working trees) or by the next restore (inside them).
const tmpPrefix = ".dmtmp-"

func randomSuffix() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return hex.EncodeToString(b[:])
}
