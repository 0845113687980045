// Package recordfiles keeps the registry records of a dotmesh.RecordKeeper
// as files beside a backend's data, outside every working tree:
// DIR/<dot id>/<record key>. Each record is written to a temporary file
// and renamed into place, so a process killed at any point leaves it
// whole, old or new.
//
// A Dir from New syncs each file and the directory before KeepRecords
// returns, so a record is durable when the call returns. One from
// NewSyncBehind (btrfs, where writing the files of a commit's records
// cost a fifth of the node's time for the commit, and their fsyncs more
// than its snapshot) writes them behind the caller: KeepRecords queues
// them and returns, one goroutine writes and renames them in the order
// given (a record updated again before it was written is written once,
// with its latest value), and the whole filesystem is synced once, a
// moment after the last write of a burst. Records and Close first wait
// for what was queued. A process killed before the writer wrote its
// queue leaves those copies a few updates behind; until the syncfs, or
// any other transaction commit of the filesystem (the next snapshot,
// the commit interval), a power loss or kernel crash can take the
// records of that moment back to their older contents, or leave a new
// one missing or empty: a registry rebuild, their only reader, then
// restores the state a few updates behind (see dotmesh.RecordKeeper) or
// names the empty record as corrupt. That needs the registry lost as
// well, within a fraction of a second of the write.
package recordfiles

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/internal/durable"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

const tmpPrefix = ".tmp-"

// Dir keeps records under one directory.
type Dir struct {
	path string
	// behind, when set, syncs in the background this long after the
	// last write instead of before KeepRecords returns.
	behind time.Duration
	log    *slog.Logger

	mu      sync.Mutex
	pending bool // written, not yet synced
	timer   *time.Timer
	syncing sync.WaitGroup
	closed  bool

	// The records KeepRecords queued (behind) and the writer has not
	// taken yet; writing while the writer runs; drained is signalled
	// when it stops.
	queue   []queued
	writing bool
	drained *sync.Cond
}

// queued is one record waiting to be written: val nil removes it.
type queued struct {
	dot dotmesh.DotID
	key string
	val []byte
}

// New keeps records under path, made (mode 0700) on the first write, each
// durable when KeepRecords returns.
func New(path string) *Dir { return &Dir{path: path} }

// NewSyncBehind keeps records under path like New, but makes them durable
// with one syncfs, delay after the last write of a burst (see the
// package doc). Close syncs what is pending.
func NewSyncBehind(path string, delay time.Duration, log *slog.Logger) *Dir {
	d := &Dir{path: path, behind: delay, log: log}
	d.drained = sync.NewCond(&d.mu)
	return d
}

// KeepRecords implements dotmesh.RecordKeeper. The dot id and the record
// keys and sizes were checked by the guard (backend/internal/guard).
func (d *Dir) KeepRecords(ctx context.Context, dot dotmesh.DotID, recs map[string][]byte) error {
	if d.behind == 0 {
		return d.write(ctx, dot, recs)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	keys := make([]string, 0, len(recs))
	for k := range recs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, k := range keys {
		d.queue = slices.DeleteFunc(d.queue, func(q queued) bool { return q.dot == dot && q.key == k })
		var v []byte
		if recs[k] != nil {
			v = append([]byte{}, recs[k]...) // the caller's bytes are its own again
		}
		d.queue = append(d.queue, queued{dot: dot, key: k, val: v})
	}
	if !d.writing && len(d.queue) > 0 {
		d.writing = true
		go d.writeQueued()
	}
	return nil
}

// writeQueued writes what KeepRecords queued until the queue is empty,
// then arms the sync.
func (d *Dir) writeQueued() {
	for {
		d.mu.Lock()
		batch := d.queue
		d.queue = nil
		if len(batch) == 0 {
			d.writing = false
			d.drained.Broadcast()
			d.mu.Unlock()
			return
		}
		d.mu.Unlock()
		for len(batch) > 0 {
			// One dot's run of records at a time, in the order given.
			dot := batch[0].dot
			recs := make(map[string][]byte)
			for len(batch) > 0 && batch[0].dot == dot {
				recs[batch[0].key] = batch[0].val
				batch = batch[1:]
			}
			if err := d.write(context.Background(), dot, recs); err != nil && d.log != nil {
				d.log.Warn("keeping a copy of the registry records with the data; a registry rebuild would miss them", "dot", dot, "err", err)
			}
		}
	}
}

// flush waits until the records queued so far are written.
func (d *Dir) flush() {
	if d.behind == 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for d.writing || len(d.queue) > 0 {
		d.drained.Wait()
	}
}

// write writes recs of dot now: synced before it returns (New), or
// synced later (NewSyncBehind).
func (d *Dir) write(ctx context.Context, dot dotmesh.DotID, recs map[string][]byte) error {
	dir := filepath.Join(d.path, string(dot))
	for k, v := range recs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if v == nil {
			if err := os.Remove(filepath.Join(dir, k)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			continue
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		if err := writeAtomic(dir, k, v, d.behind == 0); err != nil {
			return err
		}
	}
	// A dot whose records are all gone leaves no directory behind.
	if err := os.Remove(dir); err == nil || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if d.behind > 0 {
		d.syncLater()
		return nil
	}
	return syncDir(dir)
}

// syncLater (re)arms the background sync.
func (d *Dir) syncLater() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pending = true
	if d.closed {
		return
	}
	if d.timer == nil {
		d.timer = time.AfterFunc(d.behind, d.syncNow)
		return
	}
	d.timer.Reset(d.behind)
}

// syncNow syncs the filesystem that holds the records, if anything was
// written since the last sync.
func (d *Dir) syncNow() {
	d.mu.Lock()
	if !d.pending {
		d.mu.Unlock()
		return
	}
	d.pending = false
	d.syncing.Add(1)
	d.mu.Unlock()
	defer d.syncing.Done()
	if err := durable.SyncFS(d.path); err != nil {
		d.mu.Lock()
		d.pending = true // Close tries again
		d.mu.Unlock()
		if d.log != nil {
			d.log.Warn("syncing the records kept beside the data", "dir", d.path, "err", err)
		}
	}
}

// Close writes and syncs what a Dir from NewSyncBehind has not written
// or synced yet. It is a no-op for a Dir from New.
func (d *Dir) Close() error {
	d.flush()
	d.mu.Lock()
	d.closed = true
	if d.timer != nil {
		d.timer.Stop()
	}
	pending := d.pending
	d.pending = false
	d.mu.Unlock()
	d.syncing.Wait()
	if !pending {
		return nil
	}
	return durable.SyncFS(d.path)
}

func writeAtomic(dir, name string, data []byte, sync bool) error {
	f, err := os.CreateTemp(dir, tmpPrefix+name+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// Records implements dotmesh.RecordKeeper. Temporary files of writes that
// a crash cut short are left out (and removed).
func (d *Dir) Records(ctx context.Context) (map[dotmesh.DotID]map[string][]byte, error) {
	d.flush()
	out := make(map[dotmesh.DotID]map[string][]byte)
	dots, err := os.ReadDir(d.path)
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	for _, de := range dots {
		if dotmesh.ValidateID("dot", de.Name(), false) != nil || !de.IsDir() {
			return nil, fmt.Errorf("%w: %s is not a dot's records", dotmesh.ErrCorrupt, filepath.Join(d.path, de.Name()))
		}
		dir := filepath.Join(d.path, de.Name())
		files, err := os.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		recs := make(map[string][]byte, len(files))
		for _, f := range files {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			p := filepath.Join(dir, f.Name())
			if strings.HasPrefix(f.Name(), tmpPrefix) {
				os.Remove(p)
				continue
			}
			if dotmesh.ValidateRecordKey(f.Name()) != nil || !f.Type().IsRegular() {
				return nil, fmt.Errorf("%w: %s is not a record", dotmesh.ErrCorrupt, p)
			}
			if fi, err := f.Info(); err != nil {
				return nil, err
			} else if fi.Size() > dotmesh.MaxRecordSize {
				return nil, fmt.Errorf("%w: record %s has %d bytes, more than %d", dotmesh.ErrCorrupt, p, fi.Size(), dotmesh.MaxRecordSize)
			}
			v, err := os.ReadFile(p)
			if err != nil {
				return nil, err
			}
			recs[f.Name()] = v
		}
		out[dotmesh.DotID(de.Name())] = recs
	}
	return out, nil
}
