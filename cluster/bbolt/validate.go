package bboltstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"runtime/debug"

	bolt "go.etcd.io/bbolt"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// A damaged bbolt file can crash the process that maps it: a file shorter
// than its pages gives SIGBUS, a page of garbage an assertion panic or a
// wild pointer. Validate reads the file with plain reads first (meta pages
// and their checksums, the size against the high-water page id, every page
// reachable from the root, the order of their keys), so that bbolt only
// ever maps a file whose pages are all inside it and in which its own
// walks find nothing to report, and then runs bbolt's own consistency
// check with panics turned into errors.

// The on-disk format of bbolt (version 2), native byte order.
const (
	boltMagic   = 0xED0CDAED
	boltVersion = 2

	pageHeaderSize = 16 // id u64 | flags u16 | count u16 | overflow u32
	elemSize       = 16 // branch: pos, ksize u32, pgid u64; leaf: flags, pos, ksize, vsize u32
	metaSumOffset  = 56 // bytes of the meta covered by its checksum

	branchPageFlag   = 0x01
	leafPageFlag     = 0x02
	metaPageFlag     = 0x04
	freelistPageFlag = 0x10
	bucketLeafFlag   = 0x01

	noFreelist = ^uint64(0)
	// maxPages bounds what a damaged meta can make the walk allocate.
	maxPageSize = 1 << 16
)

var nativeEndian = binary.NativeEndian

type boltMeta struct {
	pageSize uint32
	root     uint64
	freelist uint64
	pgid     uint64 // high-water mark: pages [0, pgid) are in use or free
	txid     uint64
}

// parseMeta reads the meta page at the start of buf; ok is false when its
// magic, version or checksum is wrong.
func parseMeta(buf []byte, id uint64) (m boltMeta, ok bool) {
	if len(buf) < pageHeaderSize+metaSumOffset+8 {
		return m, false
	}
	h, d := buf[:pageHeaderSize], buf[pageHeaderSize:]
	if nativeEndian.Uint64(h) != id || nativeEndian.Uint16(h[8:])&metaPageFlag == 0 {
		return m, false
	}
	if nativeEndian.Uint32(d) != boltMagic || nativeEndian.Uint32(d[4:]) != boltVersion {
		return m, false
	}
	sum := fnv.New64a()
	sum.Write(d[:metaSumOffset])
	if sum.Sum64() != nativeEndian.Uint64(d[metaSumOffset:]) {
		return m, false
	}
	m = boltMeta{
		pageSize: nativeEndian.Uint32(d[8:]),
		root:     nativeEndian.Uint64(d[16:]),
		freelist: nativeEndian.Uint64(d[32:]),
		pgid:     nativeEndian.Uint64(d[40:]),
		txid:     nativeEndian.Uint64(d[48:]),
	}
	if m.pageSize < 512 || m.pageSize > maxPageSize || m.pageSize&(m.pageSize-1) != 0 {
		return m, false
	}
	return m, true
}

// DamagedError says what is wrong with a registry file; it wraps
// dotmesh.ErrCorrupt.
type DamagedError struct {
	Path   string
	Reason string
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("%v: registry %s is damaged: %s", dotmesh.ErrCorrupt, e.Path, e.Reason)
}

func (e *DamagedError) Unwrap() error { return dotmesh.ErrCorrupt }

// corrupt makes the error Validate returns: the file, what is wrong.
func corrupt(path, format string, args ...any) error {
	return &DamagedError{Path: path, Reason: fmt.Sprintf(format, args...)}
}

// Validate checks that the bbolt file at path is whole and its pages
// consistent, without letting a damaged file crash the process (Open then
// also checks the records in those pages). A missing file is
// valid (a new registry); an empty one is not. Errors wrap
// dotmesh.ErrCorrupt, or dotmesh.ErrUnavailable when the file cannot be
// read.
func Validate(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: registry %s: %w", dotmesh.ErrUnavailable, path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%w: registry %s: %w", dotmesh.ErrUnavailable, path, err)
	}
	if !fi.Mode().IsRegular() {
		return corrupt(path, "not a regular file")
	}
	return validatePages(f, fi.Size(), path)
}

func validatePages(r io.ReaderAt, size int64, path string) error {
	if size == 0 {
		return corrupt(path, "the file is empty")
	}
	head := make([]byte, min(size, maxPageSize*2))
	if _, err := r.ReadAt(head, 0); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: registry %s: %w", dotmesh.ErrUnavailable, path, err)
	}
	var metas []boltMeta
	m0, ok0 := parseMeta(head, 0)
	if ok0 {
		metas = append(metas, m0)
	}
	// Meta 1 sits one page further: the page size meta 0 names, or, when
	// meta 0 is damaged, one of the sizes bbolt uses.
	sizes := []uint32{4096, 8192, 16384, 32768, 65536}
	if ok0 {
		sizes = []uint32{m0.pageSize}
	}
	for _, ps := range sizes {
		if int64(ps) < int64(len(head)) {
			if m1, ok := parseMeta(head[ps:], 1); ok && m1.pageSize == ps {
				metas = append(metas, m1)
				break
			}
		}
	}
	if len(metas) == 0 {
		return corrupt(path, "no valid meta page (not a bbolt file, or both meta pages damaged)")
	}
	m := metas[0]
	for _, o := range metas[1:] {
		if o.txid > m.txid {
			m = o
		}
	}
	ps := int64(m.pageSize)
	if m.pgid < 2 || m.pgid > uint64(size/ps)+1 || int64(m.pgid)*ps > size {
		return corrupt(path, "the file has %d bytes but its pages reach %d×%d bytes (truncated?)", size, m.pgid, ps)
	}
	w := &pageWalk{r: r, path: path, meta: m, seen: make(map[uint64]bool)}
	if m.freelist != noFreelist {
		if err := w.freelist(m.freelist); err != nil {
			return err
		}
	}
	_, err := w.tree(m.root, nil, nil)
	return err
}

// pageWalk reads every page reachable from the root with plain reads and
// checks that it is inside the file, of the right kind, marked with its
// own id, and reached once.
type pageWalk struct {
	r    io.ReaderAt
	path string
	meta boltMeta
	seen map[uint64]bool
}

func (w *pageWalk) page(id uint64, want uint16) ([]byte, error) {
	if id < 2 || id >= w.meta.pgid {
		return nil, corrupt(w.path, "page %d is out of bounds (high-water mark %d)", id, w.meta.pgid)
	}
	if w.seen[id] {
		return nil, corrupt(w.path, "page %d is reached twice", id)
	}
	ps := int64(w.meta.pageSize)
	hdr := make([]byte, pageHeaderSize)
	if _, err := w.r.ReadAt(hdr, int64(id)*ps); err != nil {
		return nil, corrupt(w.path, "page %d: %v", id, err)
	}
	overflow := uint64(nativeEndian.Uint32(hdr[12:]))
	if nativeEndian.Uint64(hdr) != id {
		return nil, corrupt(w.path, "page %d is marked as page %d (overwritten?)", id, nativeEndian.Uint64(hdr))
	}
	// Exactly one type flag, one of those wanted: bbolt asserts that on
	// every page it reads (Page.FastCheck), also while it rebuilds the
	// free list at open in a goroutine of its own, where the assertion's
	// panic reaches no recover and ends the process (found by
	// FuzzValidate: flags 0xa02 passed a check of the leaf bit alone).
	if flags := nativeEndian.Uint16(hdr[8:]); flags&want == 0 || flags&(flags-1) != 0 {
		return nil, corrupt(w.path, "page %d has type %#x where %#x belongs", id, flags, want)
	}
	if id+overflow >= w.meta.pgid {
		return nil, corrupt(w.path, "page %d with %d overflow pages reaches past the high-water mark %d", id, overflow, w.meta.pgid)
	}
	for i := id; i <= id+overflow; i++ {
		w.seen[i] = true
	}
	buf := make([]byte, int64(1+overflow)*ps)
	if _, err := w.r.ReadAt(buf, int64(id)*ps); err != nil {
		return nil, corrupt(w.path, "page %d: %v", id, err)
	}
	return buf, nil
}

func (w *pageWalk) freelist(id uint64) error {
	p, err := w.page(id, freelistPageFlag)
	if err != nil {
		return err
	}
	n, start := uint64(nativeEndian.Uint16(p[10:])), uint64(pageHeaderSize)
	if n == 0xFFFF { // the count overflowed into the first element
		if len(p) < pageHeaderSize+8 {
			return corrupt(w.path, "freelist page %d is cut short", id)
		}
		n, start = nativeEndian.Uint64(p[pageHeaderSize:]), pageHeaderSize+8
	}
	if n > uint64(len(p)) || start+n*8 > uint64(len(p)) {
		return corrupt(w.path, "freelist page %d lists %d pages, more than fit", id, n)
	}
	for i := uint64(0); i < n; i++ {
		if pg := nativeEndian.Uint64(p[start+i*8:]); pg < 2 || pg >= w.meta.pgid {
			return corrupt(w.path, "freelist page %d frees page %d, out of bounds", id, pg)
		}
	}
	return nil
}

// tree walks the B+tree of a bucket rooted at page id whose keys must lie
// in [lo, hi) (nil: unbounded), and returns the greatest key in it.
//
// Its checks are a superset of bbolt's own (tx_check.go), keys included:
// bbolt walks the tree at open to rebuild the free list (the file stores
// none) in a goroutine of its own, and at the first complaint the opener
// panics (recovered by openBolt) and closes the transaction while that
// goroutine walks on, into a closed transaction or an unmapped file: a
// crash no recover reaches. So Validate must leave bbolt nothing to
// complain about (found by FuzzValidate: keys out of order).
func (w *pageWalk) tree(id uint64, lo, hi []byte) ([]byte, error) {
	p, err := w.page(id, branchPageFlag|leafPageFlag)
	if err != nil {
		return nil, err
	}
	return w.nodePage(p, id, lo, hi)
}

// nodePage checks a branch or leaf page (also an inline bucket's page,
// id 0) and walks what it refers to; lo, hi and the result as for tree.
// A page's type is exactly branch or leaf: tree's page checks it, and
// an inline page is checked for leaf here.
func (w *pageWalk) nodePage(p []byte, id uint64, lo, hi []byte) ([]byte, error) {
	if len(p) < pageHeaderSize {
		return nil, corrupt(w.path, "page %d is cut short", id)
	}
	flags, n := nativeEndian.Uint16(p[8:]), int(nativeEndian.Uint16(p[10:]))
	inline := id == 0
	if inline && flags != leafPageFlag {
		return nil, corrupt(w.path, "an inline bucket has page type %#x", flags)
	}
	if pageHeaderSize+n*elemSize > len(p) {
		return nil, corrupt(w.path, "page %d has %d elements, more than fit", id, n)
	}
	// Every element's key and value first: a branch's next key bounds the
	// subtree before it.
	keys, values := make([][]byte, n), make([][]byte, n)
	for i := range n {
		at := pageHeaderSize + i*elemSize
		e := p[at : at+elemSize]
		pos, ksize, vsize := uint64(nativeEndian.Uint32(e[4:])), uint64(nativeEndian.Uint32(e[8:])), uint64(nativeEndian.Uint32(e[12:]))
		if flags == branchPageFlag {
			pos, ksize, vsize = uint64(nativeEndian.Uint32(e)), uint64(nativeEndian.Uint32(e[4:])), 0
		}
		end := uint64(at) + pos + ksize + vsize
		if end > uint64(len(p)) {
			return nil, corrupt(w.path, "page %d: element %d lies outside the page", id, i)
		}
		keys[i] = p[uint64(at)+pos : uint64(at)+pos+ksize]
		values[i] = p[uint64(at)+pos+ksize : end]
	}
	prev, greatest := lo, []byte(nil)
	for i, key := range keys {
		var err error
		if err = w.keyInOrder(id, i, key, prev, hi); err != nil {
			return nil, err
		}
		if flags == branchPageFlag {
			next := hi
			if i+1 < n {
				next = keys[i+1]
			}
			e := p[pageHeaderSize+i*elemSize:]
			if greatest, err = w.tree(nativeEndian.Uint64(e[8:]), key, next); err != nil {
				return nil, err
			}
			prev = greatest
			continue
		}
		prev, greatest = key, key
		if nativeEndian.Uint32(p[pageHeaderSize+i*elemSize:])&bucketLeafFlag == 0 {
			continue
		}
		if inline { // bbolt inlines only buckets without sub-buckets
			return nil, corrupt(w.path, "an inline bucket holds a bucket")
		}
		v := values[i]
		if len(v) < 16 {
			return nil, corrupt(w.path, "page %d: bucket element %d is cut short", id, i)
		}
		if root := nativeEndian.Uint64(v); root != 0 {
			if _, err := w.tree(root, nil, nil); err != nil {
				return nil, err
			}
		} else if _, err := w.nodePage(v[16:], 0, nil, nil); err != nil { // inline bucket
			return nil, err
		}
	}
	return greatest, nil
}

// keyInOrder applies bbolt's key order rules to element i of page id:
// the first key not below the bound its parent gives (prev), each later
// one above the one before it (or the greatest key of the subtree before
// it), every key below hi.
func (w *pageWalk) keyInOrder(id uint64, i int, key, prev, hi []byte) error {
	switch c := bytes.Compare(prev, key); {
	case i == 0 && prev != nil && c > 0:
		return corrupt(w.path, "page %d: its first key sorts before its parent's", id)
	case i > 0 && c >= 0:
		return corrupt(w.path, "page %d: key %d is out of order", id, i)
	case hi != nil && bytes.Compare(key, hi) >= 0:
		return corrupt(w.path, "page %d: key %d is not below its parent's next key", id, i)
	}
	return nil
}

// openBolt is bolt.Open with panics and memory faults turned into errors.
func openBolt(path string, o *bolt.Options) (db *bolt.DB, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, corrupt(path, "bbolt open: %v", r)
		}
	}()
	return bolt.Open(path, 0o600, o)
}

// checkOpen runs bbolt's consistency check on an open database, turning
// panics and memory faults into errors.
func checkOpen(db *bolt.DB, path string) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = corrupt(path, "bbolt check: %v", r)
		}
	}()
	return db.View(func(tx *bolt.Tx) error {
		for cerr := range tx.Check() {
			if err == nil {
				err = corrupt(path, "%v", cerr)
			}
		}
		if err != nil {
			return err
		}
		return checkRecords(tx, path)
	})
}

// checkRecords checks that every record the store will decode has its
// fixed-size parts: a page tree can be sound while a record in it was
// damaged, and the store must refuse such a file at Open rather than fail
// (or panic in its lease goroutine) later.
func checkRecords(tx *bolt.Tx, path string) error {
	checks := []struct {
		bucket       []byte
		keyLen       func(int) bool
		valueLen     func(int) bool
		what, expect string
	}{
		{bucketMeta, func(int) bool { return true }, func(int) bool { return true }, "meta record", ""},
		{bucketKV, func(int) bool { return true }, func(n int) bool { return n >= recordHeader },
			"registry record", "its 16-byte header"},
		{bucketLeases, func(n int) bool { return n == 8 }, func(n int) bool { return n == 16 },
			"lease", "an 8-byte id and a 16-byte value"},
		{bucketLeaseKeys, func(n int) bool { return n >= 8 }, func(int) bool { return true },
			"lease key", "an 8-byte lease id"},
	}
	for _, c := range checks {
		b := tx.Bucket(c.bucket)
		if b == nil {
			if k, _ := tx.Cursor().Seek(c.bucket); bytes.Equal(k, c.bucket) {
				return corrupt(path, "%q is a record where the store's bucket belongs", c.bucket)
			}
			continue // Open creates it empty
		}
		err := b.ForEach(func(k, v []byte) error {
			if b.Bucket(k) != nil {
				return corrupt(path, "%s %q is a bucket where a record belongs", c.what, k)
			}
			if !c.keyLen(len(k)) || !c.valueLen(len(v)) {
				return corrupt(path, "%s %q has a %d-byte key and a %d-byte value; want %s", c.what, k, len(k), len(v), c.expect)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
