package dump

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/dotmesh-io/dotmesh/backend/dump/cas"
)

// A tree of 500,000 small files has a manifest of about 60 MB encoded
// and three times that decoded into Entries. Storing one and reading the
// synced one for the change cache therefore go as streams: the encoding
// is made a few entries at a time as the chunker asks for it, and the
// synced manifest is decoded one piece at a time while the commit's scan,
// in the same tree order, walks along it.

// manifestWriter encodes a manifest entry by entry, as a commit's walk
// finds them, and stores it at the end. The encoding starts with the
// entry count, known only at the end, so the entries' encoding waits in
// memory up to manifestSpill bytes and in an unlinked temporary file
// beyond: about 120 bytes a file on disk instead of the decoded Entry
// (about 200 bytes with its path and chunk list) in memory.
type manifestWriter struct {
	dir  string // where the spill file goes
	rec  commitRecord
	n    int
	prev string // the last path, to check tree order
	mem  []byte
	f    *os.File // nil until the encoding outgrows mem
	w    *bufio.Writer
}

// manifestSpill is how much encoding a manifestWriter keeps in memory.
const manifestSpill = 4 << 20

func newManifestWriter(dir string) *manifestWriter {
	return &manifestWriter{dir: dir}
}

// add appends e, which must come after every entry added before in tree
// order.
func (w *manifestWriter) add(e *Entry) error {
	if w.n > 0 && !lessPath(w.prev, e.Path) {
		return fmt.Errorf("manifest: %q is out of order or repeated after %q", e.Path, w.prev)
	}
	w.prev = e.Path
	w.n++
	switch e.Type {
	case TypeFile:
		w.rec.Files++
		w.rec.Bytes += e.Size
	case TypeDir:
		w.rec.Dirs++
	case TypeSymlink:
		w.rec.Symlinks++
	}
	if w.f == nil {
		w.mem = appendEntry(w.mem, e)
		if len(w.mem) <= manifestSpill {
			return nil
		}
		f, err := os.CreateTemp(w.dir, tmpPrefix+"manifest-")
		if err != nil {
			return fmt.Errorf("spill manifest: %w", err)
		}
		// Unlinked at once: a crash leaves nothing behind.
		if err := os.Remove(f.Name()); err != nil {
			f.Close()
			return fmt.Errorf("spill manifest: %w", err)
		}
		w.f, w.w = f, bufio.NewWriterSize(f, manifestReadAhead)
		_, err = w.w.Write(w.mem)
		w.mem = w.mem[:0]
		return err
	}
	w.mem = appendEntry(w.mem[:0], e)
	if _, err := w.w.Write(w.mem); err != nil {
		return fmt.Errorf("spill manifest: %w", err)
	}
	return nil
}

// store writes the manifest through batch and returns its root hash and
// the commit record that names it.
func (w *manifestWriter) store(batch *cas.Batch) (cas.Hash, commitRecord, error) {
	var body io.Reader = bytes.NewReader(w.mem)
	if w.f != nil {
		if err := w.w.Flush(); err != nil {
			return cas.Hash{}, commitRecord{}, fmt.Errorf("spill manifest: %w", err)
		}
		if _, err := w.f.Seek(0, io.SeekStart); err != nil {
			return cas.Hash{}, commitRecord{}, fmt.Errorf("spill manifest: %w", err)
		}
		body = w.f
	}
	root, err := storeEncoded(batch, io.MultiReader(bytes.NewReader(appendHeader(nil, w.n)), body))
	if err != nil {
		return cas.Hash{}, commitRecord{}, err
	}
	rec := w.rec
	rec.Version, rec.Manifest = recordVersion, root.String()
	return root, rec, nil
}

// close releases the spill file.
func (w *manifestWriter) close() {
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
}

// manifestReader is the encoding of a manifest (Encode's bytes), made on
// demand a few entries at a time.
type manifestReader struct {
	m   *Manifest
	i   int // next entry to encode
	buf []byte
	off int // read up to here in buf
}

// manifestReadAhead is how many bytes of encoding manifestReader makes
// at a time (one entry at least).
const manifestReadAhead = 64 << 10

func newManifestReader(m *Manifest) *manifestReader {
	return &manifestReader{m: m, buf: appendHeader(make([]byte, 0, manifestReadAhead), len(m.Entries))}
}

func (r *manifestReader) Read(p []byte) (int, error) {
	for r.off == len(r.buf) {
		if r.i == len(r.m.Entries) {
			return 0, io.EOF
		}
		r.buf, r.off = r.buf[:0], 0
		for r.i < len(r.m.Entries) && len(r.buf) < manifestReadAhead {
			r.buf = appendEntry(r.buf, &r.m.Entries[r.i])
			r.i++
		}
	}
	n := copy(p, r.buf[r.off:])
	r.off += n
	return n, nil
}

// manifestIter reads the entries of a stored manifest in order, holding
// one piece (and the entry that straddles two) at a time. It checks what
// DecodeManifest checks.
type manifestIter struct {
	get    objectGetter
	root   cas.Hash
	all    []Chunk // every piece of the manifest
	pieces []Chunk // still to read
	win    []byte  // read, not yet decoded
	n, i   uint64  // entries declared, decoded
	chk    entryChecker
}

// iterManifest opens the manifest named by root for reading entry by
// entry. Errors wrap dotmesh.ErrCorrupt, as loadManifest's do.
func iterManifest(get objectGetter, root cas.Hash) (*manifestIter, error) {
	pieces, err := rootPieces(get, root)
	if err != nil {
		return nil, err
	}
	it := &manifestIter{get: get, root: root, all: pieces, pieces: pieces}
	var total uint64
	for _, p := range pieces {
		total += uint64(p.Size)
	}
	for len(it.win) < len(manifestMagic)+10 && len(it.pieces) > 0 {
		if err := it.more(); err != nil {
			return nil, err
		}
	}
	d := decoder{buf: it.win}
	if !d.expect(manifestMagic) {
		return nil, manifestErr(root, fmt.Errorf("%w: bad magic or unsupported version", errManifest))
	}
	it.n = d.uvarint()
	// The same bound as DecodeManifest's: the bytes after the header.
	rest := total - uint64(len(it.win)-len(d.buf))
	if d.err != nil || it.n > rest/minEntrySize {
		return nil, manifestErr(root, fmt.Errorf("%w: entry count %d does not fit in %d bytes", errManifest, it.n, total))
	}
	it.win = d.buf
	return it, nil
}

// more appends the next piece to the window.
func (it *manifestIter) more() error {
	p := it.pieces[0]
	it.pieces = it.pieces[1:]
	data, err := it.get.Get(p.Hash, nil)
	if err != nil {
		return manifestErr(it.root, err)
	}
	if len(data) != int(p.Size) {
		return manifestErr(it.root, fmt.Errorf("%w: piece %s holds %d bytes, root says %d", errManifest, p.Hash, len(data), p.Size))
	}
	if len(it.win) == 0 {
		it.win = data
		return nil
	}
	w := make([]byte, 0, len(it.win)+len(data))
	it.win = append(append(w, it.win...), data...)
	return nil
}

// next decodes the next entry into e; it returns false at the end.
func (it *manifestIter) next(e *Entry) (bool, error) {
	if it.i == it.n {
		if len(it.win) != 0 || len(it.pieces) != 0 {
			return false, manifestErr(it.root, fmt.Errorf("%w: trailing bytes", errManifest))
		}
		return false, nil
	}
	for {
		d := decoder{buf: it.win}
		*e = Entry{}
		err := decodeEntry(&d, e, it.i)
		if err != nil && d.err != nil && len(it.pieces) > 0 {
			// Cut short by the end of the window: read on and retry.
			if err := it.more(); err != nil {
				return false, err
			}
			continue
		}
		if err != nil {
			return false, manifestErr(it.root, err)
		}
		if err := it.chk.check(e, it.i); err != nil {
			return false, manifestErr(it.root, err)
		}
		it.win = d.buf
		it.i++
		return true, nil
	}
}

// manifestCursor follows a stored manifest along a walk of a tree, both
// in tree order: seek finds the entry at a path, if any, holding one
// entry (and the iterator's piece) at a time instead of the manifest
// decoded and indexed by path.
type manifestCursor struct {
	it   *manifestIter // nil once read to the end (or never opened)
	e    Entry         // the entry under the cursor, when have
	have bool
	used bool // e was returned by seek
}

// newManifestCursor starts a cursor on it; a nil it reads as empty.
func newManifestCursor(it *manifestIter) (*manifestCursor, error) {
	c := &manifestCursor{it: it}
	return c, c.advance(nil)
}

// advance moves to the next entry, handing the current one to passed
// (when not nil) unless seek returned it.
func (c *manifestCursor) advance(passed func(*Entry)) error {
	if c.have && !c.used && passed != nil {
		passed(&c.e)
	}
	c.have, c.used = false, false
	if c.it == nil {
		return nil
	}
	ok, err := c.it.next(&c.e)
	if err != nil || !ok {
		c.it = nil
		return err
	}
	c.have = true
	return nil
}

// seek returns the entry at path p, or nil when the manifest has none,
// moving past the entries before p (handed to passed, when not nil).
// Calls must come with paths in increasing tree order. The entry is
// valid until the next call; its Chunks stay valid after.
func (c *manifestCursor) seek(p string, passed func(*Entry)) (*Entry, error) {
	for c.have && comparePath(c.e.Path, p) < 0 {
		if err := c.advance(passed); err != nil {
			return nil, err
		}
	}
	if c.have && c.e.Path == p {
		c.used = true
		return &c.e, nil
	}
	return nil, nil
}

// drain hands the entries not yet returned by seek to passed.
func (c *manifestCursor) drain(passed func(*Entry)) error {
	for c.have {
		if err := c.advance(passed); err != nil {
			return err
		}
	}
	return nil
}
