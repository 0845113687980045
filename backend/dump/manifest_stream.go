package dump

import (
	"fmt"
	"io"

	"github.com/dotmesh-io/dotmesh/backend/dump/cas"
)

// A tree of 500,000 small files has a manifest of about 60 MB encoded
// and three times that decoded into Entries. Storing one and reading the
// synced one for the change cache therefore go as streams: the encoding
// is made a few entries at a time as the chunker asks for it, and the
// synced manifest is decoded one piece at a time while the commit's scan,
// in the same tree order, walks along it.

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
	it := &manifestIter{get: get, root: root, pieces: pieces}
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
	if d.err != nil || it.n > total/12 {
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
