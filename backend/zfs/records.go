package zfs

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

var _ dotmesh.RecordKeeper = (*Backend)(nil)

// The registry's records live as user properties of the dot's container
// dataset, so they travel with the pool and vanish with the dot:
//
//	io.dotmesh:rec.<hex key>      <n>:<crc32 hex>:<base64 part 0>
//	io.dotmesh:rec.<hex key>.<i>  <base64 part i>, 0 < i < n
//
// User property names only allow lowercase letters, hence the hex key;
// values are at most 8 KiB, hence the parts; the CRC of the whole record
// tells a record torn by a crash between two parts.
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
		b.z.lock.waitQuiet(ctx, oldest.Add(quietMax), func() bool {
			q.mu.Lock()
			defer q.mu.Unlock()
			return q.hurry > 0
		})
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
	target := b.container(dot).String()
	var props []propRow // the container's properties, read once for removals
	for k, v := range recs {
		if v == nil {
			if props == nil {
				var err error
				if props, err = b.z.get(ctx, false, []string{"all"}, b.container(dot)); errors.Is(err, ErrNoDataset) {
					return nil // no storage, no records
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
			if err := b.z.set(ctx, target, prop{recProp(k, i), val}); err != nil {
				return fmt.Errorf("keeping record %s of dot %s: %w", k, dot, err)
			}
		}
	}
	return nil
}

// Records implements dotmesh.RecordKeeper.
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
		props, err := b.z.get(ctx, false, []string{"all"}, dataset{r.name})
		if err != nil {
			return nil, fmt.Errorf("reading the records of dot %s: %w", rest, err)
		}
		recs, err := decodeRecProps(props)
		if err != nil {
			return nil, fmt.Errorf("%w: records of dot %s: %w", dotmesh.ErrCorrupt, rest, err)
		}
		out[dotmesh.DotID(rest)] = recs
	}
	return out, nil
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
