package zfs

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

var _ dotmesh.RecordKeeper = (*Backend)(nil)

// The registry's records live as user properties of a filesystem of
// their own per dot, R/records/<dot id> (canmount=off, never mounted), so
// they vanish with the dot's container (prune removes both):
//
//	io.dotmesh:rec.<hex key>      <n>:<crc32 hex>:<base64 part 0>
//	io.dotmesh:rec.<hex key>.<i>  <base64 part i>, 0 < i < n
//
// User property names only allow lowercase letters, hence the hex key;
// values are at most 8 KiB, hence the parts; the CRC of the whole record
// tells a record torn by a crash between two parts.
//
// Not on the dot's container R/<dot id>, where they were kept before:
// user properties are inherited, and zfs hands a dataset's properties,
// inherited ones included, to every command that opens it, so every zfs
// command on a working state or snapshot of the dot carried all of its
// records. With 40 records of ~1 KiB on the parent, an incremental `zfs
// receive` took 4.5 ms longer on zfs-fuse, with 200 records 12.7 ms, and
// a dot keeps one record per commit. Records an older version left on a
// container are moved at the first record kept for the dot
// (migrateRecords); until then Records reads them there.

const (
	recPropPrefix = "io.dotmesh:rec."
	recPartSize   = 6000
)

func recProp(key string, part int) string {
	p := recPropPrefix + hex.EncodeToString([]byte(key))
	if part > 0 {
		p += "." + strconv.Itoa(part)
	}
	return p
}

func isRecProp(p string) bool { return strings.HasPrefix(p, recPropPrefix) }

// KeepRecords implements dotmesh.RecordKeeper. The records are written
// behind the caller, one `zfs set` each, in the order of their latest
// update (a record updated again before it was written is written once,
// with its latest value): the Node keeps a copy after every registry
// transaction, and a transfer's receive and Finish make three, which on
// zfs-fuse cost more than the incremental stream itself. With the
// command lock of zfs-fuse they wait for a quiet moment (no other
// command for quietFor, at most quietMax), so that they do not hold the
// lock when the next commit comes. Records, and Close, wait until every
// record given before is written, without waiting for quiet. A crash can
// so leave copies a few updates behind rather than one (up to quietMax
// of them while commands never pause), which a rebuild (the only
// reader) takes as it takes one: it restores what the data still backs.
func (b *Backend) KeepRecords(ctx context.Context, dot dotmesh.DotID, recs map[string][]byte) error {
	keys := make([]string, 0, len(recs))
	for k := range recs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	q := &b.recs
	q.mu.Lock()
	defer q.mu.Unlock()
	now := time.Now()
	for _, k := range keys {
		at := now
		q.queue = slices.DeleteFunc(q.queue, func(w recWrite) bool {
			if w.dot == dot && w.key == k {
				at = w.at
				return true
			}
			return false
		})
		q.queue = append(q.queue, recWrite{dot: dot, key: k, val: recs[k], at: at})
	}
	if !q.running && len(q.queue) > 0 {
		q.running = true
		b.bg.Add(1)
		go b.writeRecords(context.WithoutCancel(ctx))
	}
	return nil
}

// recQueue is the records KeepRecords took and writeRecords has not
// written yet.
type recQueue struct {
	mu      sync.Mutex
	queue   []recWrite
	running bool // writeRecords runs
	hurry   int  // flushRecords waits: no waiting for a quiet moment
	// moved lists the dots whose container holds no records any more
	// (migrateRecords); only writeRecords uses it.
	moved map[dotmesh.DotID]bool
}

// recordsRoot is the parent of the records filesystems.
func (b *Backend) recordsRoot() dataset { return dataset{b.root.name + "/records"} }

// recordsFS is the filesystem that keeps dot's records.
func (b *Backend) recordsFS(dot dotmesh.DotID) dataset {
	return dataset{b.recordsRoot().name + "/" + string(dot)}
}

// makeRecordsFS creates dot's records filesystem, if the dot has storage
// (its container): records of a dot without storage are not kept.
func (b *Backend) makeRecordsFS(ctx context.Context, dot dotmesh.DotID) error {
	if _, err := b.z.get(ctx, false, []string{"type"}, b.container(dot)); err != nil {
		return err
	}
	for _, d := range []dataset{b.recordsRoot(), b.recordsFS(dot)} {
		if err := b.z.create(ctx, d, mustProp("canmount", "off")); err != nil && !errors.Is(err, ErrExists) {
			return err
		}
	}
	return nil
}

// migrateRecords moves the records an older version kept on dot's
// container to its records filesystem, once per dot and process, before
// any record of the dot is written: copied first (later parts before the
// first, as keepRecords writes them), then removed from the container.
// Until both are done Records reads the container's copies as well, and
// a crash in between leaves them for the next process to move; as no
// record of the dot was written in between, they are still current.
func (b *Backend) migrateRecords(ctx context.Context, dot dotmesh.DotID) error {
	if b.recs.moved[dot] {
		return nil
	}
	rows, err := b.z.get(ctx, false, []string{"all"}, b.container(dot))
	if err != nil && !errors.Is(err, ErrNoDataset) {
		return fmt.Errorf("reading the records of dot %s on its container: %w", dot, err)
	}
	var old []propRow
	for _, r := range rows {
		if isRecProp(r.prop) {
			old = append(old, r)
		}
	}
	if len(old) > 0 {
		b.log.InfoContext(ctx, "moving the kept registry records of a dot off its container", "dot", dot, "properties", len(old))
		// Later parts (names with a part number) before first parts.
		slices.SortStableFunc(old, func(x, y propRow) int {
			return -strings.Compare(x.prop, y.prop)
		})
		if err := b.makeRecordsFS(ctx, dot); err != nil {
			return fmt.Errorf("moving the records of dot %s: %w", dot, err)
		}
		target := b.recordsFS(dot).String()
		for _, r := range old {
			if err := b.z.set(ctx, target, prop{r.prop, r.value}); err != nil {
				return fmt.Errorf("moving record property %s of dot %s: %w", r.prop, dot, err)
			}
		}
		for _, r := range old {
			if err := b.z.inherit(ctx, b.container(dot).String(), r.prop); err != nil && !errors.Is(err, ErrNoDataset) {
				return fmt.Errorf("moving record property %s of dot %s: %w", r.prop, dot, err)
			}
		}
	}
	if b.recs.moved == nil {
		b.recs.moved = map[dotmesh.DotID]bool{}
	}
	b.recs.moved[dot] = true
	return nil
}

type recWrite struct {
	dot dotmesh.DotID
	key string
	val []byte    // nil: remove
	at  time.Time // when first queued: written within quietMax of it
}

// writeRecords writes queued records until none is left.
func (b *Backend) writeRecords(ctx context.Context) {
	defer b.bg.Done()
	q := &b.recs
	for {
		q.mu.Lock()
		if len(q.queue) == 0 {
			q.running = false
			q.mu.Unlock()
			return
		}
		oldest := q.queue[0].at
		for _, w := range q.queue {
			if w.at.Before(oldest) {
				oldest = w.at
			}
		}
		q.mu.Unlock()
		// After the operations that made the records (a commit, then
		// maybe the next one), which need the command lock more: a
		// record is a copy for a rebuild only.
		b.z.lock.waitQuiet(ctx, quietFor, oldest.Add(quietMax), func() bool {
			q.mu.Lock()
			defer q.mu.Unlock()
			return q.hurry > 0
		}, nil)
		q.mu.Lock()
		if len(q.queue) == 0 {
			q.mu.Unlock()
			continue // the loop's top ends it
		}
		w := q.queue[0]
		q.queue = q.queue[1:]
		q.mu.Unlock()
		if err := b.keepRecords(behind(ctx), w.dot, map[string][]byte{w.key: w.val}); err != nil {
			b.log.WarnContext(ctx, "keeping a copy of a registry record with the data; a registry rebuild would miss it", "dot", w.dot, "record", w.key, "err", err)
		}
	}
}

// flushRecords waits until every record KeepRecords took is written.
func (b *Backend) flushRecords(ctx context.Context) error {
	b.recs.mu.Lock()
	b.recs.hurry++
	b.recs.mu.Unlock()
	defer func() {
		b.recs.mu.Lock()
		b.recs.hurry--
		b.recs.mu.Unlock()
	}()
	for {
		b.recs.mu.Lock()
		busy := b.recs.running || len(b.recs.queue) > 0
		b.recs.mu.Unlock()
		if !busy {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// keepRecords writes records of dot now.
func (b *Backend) keepRecords(ctx context.Context, dot dotmesh.DotID, recs map[string][]byte) error {
	if err := b.migrateRecords(ctx, dot); err != nil {
		return err
	}
	fs := b.recordsFS(dot)
	target := fs.String()
	var props []propRow // the records' properties, read once for removals
	for k, v := range recs {
		if v == nil {
			if props == nil {
				var err error
				if props, err = b.z.get(ctx, false, []string{"all"}, fs); errors.Is(err, ErrNoDataset) {
					props = []propRow{} // none kept: nothing to remove
				} else if err != nil {
					return fmt.Errorf("removing records of dot %s: %w", dot, err)
				}
			}
			// Every part: a record that shrank leaves parts its header
			// no longer counts.
			for _, r := range props {
				if r.prop == recProp(k, 0) || strings.HasPrefix(r.prop, recProp(k, 0)+".") {
					if err := b.z.inherit(ctx, target, r.prop); err != nil && !errors.Is(err, ErrNoDataset) {
						return fmt.Errorf("removing record %s of dot %s: %w", k, dot, err)
					}
				}
			}
			continue
		}
		enc := base64.StdEncoding.EncodeToString(v)
		var parts []string
		for len(enc) > recPartSize {
			parts, enc = append(parts, enc[:recPartSize]), enc[recPartSize:]
		}
		parts = append(parts, enc)
		// Later parts first: part 0 with the count and CRC makes a record.
		for i := len(parts) - 1; i >= 0; i-- {
			val := parts[i]
			if i == 0 {
				val = fmt.Sprintf("%d:%08x:%s", len(parts), crc32.ChecksumIEEE(v), val)
			}
			err := b.z.set(ctx, target, prop{recProp(k, i), val})
			if errors.Is(err, ErrNoDataset) { // the dot's first record
				if err = b.makeRecordsFS(ctx, dot); err == nil {
					err = b.z.set(ctx, target, prop{recProp(k, i), val})
				}
			}
			if err != nil {
				return fmt.Errorf("keeping record %s of dot %s: %w", k, dot, err)
			}
		}
	}
	return nil
}

// Records implements dotmesh.RecordKeeper. A dot's records are read from
// its records filesystem and, while an older version's copies wait to be
// moved (migrateRecords), from its container, the former winning. A
// records filesystem whose dot has no container (a crash between the
// two's removal) is not read; Open removes it.
func (b *Backend) Records(ctx context.Context) (map[dotmesh.DotID]map[string][]byte, error) {
	if err := b.flushRecords(ctx); err != nil {
		return nil, err
	}
	rows, err := b.z.get(ctx, true, []string{"type"}, b.root)
	if err != nil {
		return nil, fmt.Errorf("listing dots: %w", err)
	}
	out := make(map[dotmesh.DotID]map[string][]byte)
	for _, r := range rows {
		rest, ok := strings.CutPrefix(r.name, b.root.name+"/")
		if !ok || strings.ContainsAny(rest, "/@") || dotmesh.ValidateID("dot", rest, false) != nil {
			continue
		}
		dot := dotmesh.DotID(rest)
		recs := make(map[string][]byte)
		for _, d := range []dataset{{r.name}, b.recordsFS(dot)} {
			props, err := b.z.get(ctx, false, []string{"all"}, d)
			if errors.Is(err, ErrNoDataset) && d != (dataset{r.name}) {
				continue
			} else if err != nil {
				return nil, fmt.Errorf("reading the records of dot %s: %w", rest, err)
			}
			got, err := decodeRecProps(props)
			if err != nil {
				return nil, fmt.Errorf("%w: records of dot %s: %w", dotmesh.ErrCorrupt, rest, err)
			}
			maps.Copy(recs, got)
		}
		out[dot] = recs
	}
	return out, nil
}

// strayRecords lists the records filesystems, in rows of a listing of
// the root, whose dot has no container.
func (b *Backend) strayRecords(rows []propRow) []dataset {
	containers := map[string]bool{}
	var fss []string
	prefix := b.recordsRoot().name + "/"
	for _, r := range rows {
		if dot, ok := strings.CutPrefix(r.name, prefix); ok && !strings.ContainsAny(dot, "/@") {
			fss = append(fss, r.name)
		} else if rest, ok := strings.CutPrefix(r.name, b.root.name+"/"); ok && !strings.ContainsAny(rest, "/@") {
			containers[rest] = true
		}
	}
	var stray []dataset
	seen := map[string]bool{}
	for _, name := range fss {
		if dot := strings.TrimPrefix(name, prefix); !containers[dot] && !seen[name] {
			seen[name] = true
			stray = append(stray, dataset{name})
		}
	}
	return stray
}

// decodeRecProps puts records together from their properties.
func decodeRecProps(rows []propRow) (map[string][]byte, error) {
	parts := make(map[string]map[int]string)
	for _, r := range rows {
		if !isRecProp(r.prop) {
			continue
		}
		name, idx, _ := strings.Cut(strings.TrimPrefix(r.prop, recPropPrefix), ".")
		i := 0
		if idx != "" {
			var err error
			if i, err = strconv.Atoi(idx); err != nil || i < 1 {
				return nil, fmt.Errorf("property %s has a bad part number", r.prop)
			}
		}
		if parts[name] == nil {
			parts[name] = make(map[int]string)
		}
		parts[name][i] = r.value
	}
	recs := make(map[string][]byte, len(parts))
	for name, ps := range parts {
		key, err := hex.DecodeString(name)
		if err != nil || dotmesh.ValidateRecordKey(string(key)) != nil {
			return nil, fmt.Errorf("property %s%s names no record", recPropPrefix, name)
		}
		head, ok := ps[0]
		if !ok {
			continue // later parts of a record being removed
		}
		f := strings.SplitN(head, ":", 3)
		n, nerr := strconv.Atoi(f[0])
		if len(f) != 3 || nerr != nil || n < 1 || n > dotmesh.MaxRecordSize/recPartSize+1 {
			return nil, fmt.Errorf("record %s: bad header", key)
		}
		var sb strings.Builder
		sb.WriteString(f[2])
		for i := 1; i < n; i++ {
			p, ok := ps[i]
			if !ok {
				break // torn by a crash; the checksum below drops it
			}
			sb.WriteString(p)
		}
		v, err := base64.StdEncoding.DecodeString(sb.String())
		if err != nil {
			return nil, fmt.Errorf("record %s: %w", key, err)
		}
		if fmt.Sprintf("%08x", crc32.ChecksumIEEE(v)) != f[1] {
			continue // torn by a crash between two parts: the copy is lost
		}
		recs[string(key)] = v
	}
	return recs, nil
}
