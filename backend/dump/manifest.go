package dump

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/dotmesh-io/dotmesh/backend/dump/cas"
)

// EntryType is the kind of a tree entry.
type EntryType uint8

// Entry types. Other file types (fifos, sockets, devices) are not recorded.
const (
	TypeFile    EntryType = 1
	TypeDir     EntryType = 2
	TypeSymlink EntryType = 3
)

func (t EntryType) String() string {
	switch t {
	case TypeFile:
		return "file"
	case TypeDir:
		return "dir"
	case TypeSymlink:
		return "symlink"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Chunk is one piece of a file's content.
type Chunk struct {
	Hash cas.Hash
	Size uint32
}

// Entry is one file, directory or symlink of a tree.
type Entry struct {
	// Path is slash-separated and relative to the tree root ("db/base/1").
	Path   string
	Type   EntryType
	Mode   uint32 // permission bits with setuid, setgid and sticky (07777)
	UID    uint32
	GID    uint32
	MTime  int64  // unix nanoseconds
	Size   int64  // files only: content length
	Target string // symlinks only
	Chunks []Chunk

	// The change cache: what the file looked like on the node that last
	// wrote this entry. A file whose size, mtime, ctime and inode still
	// match is not read again. Zero means unknown (never matches).
	Dev   uint64
	Inode uint64
	CTime int64
}

// Manifest is the complete state of a tree, entries in tree order (see
// lessPath): every directory before its contents.
type Manifest struct {
	Entries []Entry
}

// Limits enforced when decoding, so that a hostile manifest (manifests
// arrive from peers) can neither escape the tree nor exhaust memory.
const (
	maxPathLen    = 4096
	maxNameLen    = 255
	maxTargetLen  = 4096
	manifestMagic = "DMMF\x01"
)

// lessPath orders paths component by component: "a/b" < "a.b" because '/'
// sorts first. This is depth-first order with sorted names, the order a
// sorted walk produces, and it puts every directory right before its
// contents.
func lessPath(a, b string) bool { return comparePath(a, b) < 0 }

func comparePath(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		ca, cb := a[i], b[i]
		if ca == cb {
			continue
		}
		if ca == '/' {
			return -1
		}
		if cb == '/' {
			return 1
		}
		if ca < cb {
			return -1
		}
		return 1
	}
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	}
	return 0
}

// parentOf returns the directory part of a path ("" for top-level).
func parentOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return ""
}

// Encode serializes m deterministically: the same tree state always
// gives the same bytes, so an unchanged manifest deduplicates.
func (m *Manifest) Encode() []byte {
	size := len(manifestMagic) + binary.MaxVarintLen64
	for i := range m.Entries {
		size += entrySizeBound(&m.Entries[i])
	}
	buf := appendHeader(make([]byte, 0, size), len(m.Entries))
	for i := range m.Entries {
		buf = appendEntry(buf, &m.Entries[i])
	}
	return buf
}

func appendHeader(buf []byte, entries int) []byte {
	buf = append(buf, manifestMagic...)
	return binary.AppendUvarint(buf, uint64(entries))
}

func entrySizeBound(e *Entry) int {
	return len(e.Path) + len(e.Target) + 12*binary.MaxVarintLen64 + len(e.Chunks)*(cas.HashSize+binary.MaxVarintLen32)
}

// appendEntry appends the encoding of one entry (see Encode).
func appendEntry(buf []byte, e *Entry) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(e.Path)))
	buf = append(buf, e.Path...)
	buf = append(buf, byte(e.Type))
	buf = binary.AppendUvarint(buf, uint64(e.Mode))
	buf = binary.AppendUvarint(buf, uint64(e.UID))
	buf = binary.AppendUvarint(buf, uint64(e.GID))
	buf = binary.AppendVarint(buf, e.MTime)
	buf = binary.AppendUvarint(buf, e.Dev)
	buf = binary.AppendUvarint(buf, e.Inode)
	buf = binary.AppendVarint(buf, e.CTime)
	switch e.Type {
	case TypeFile:
		buf = binary.AppendUvarint(buf, uint64(e.Size))
		buf = binary.AppendUvarint(buf, uint64(len(e.Chunks)))
		for _, c := range e.Chunks {
			buf = append(buf, c.Hash[:]...)
			buf = binary.AppendUvarint(buf, uint64(c.Size))
		}
	case TypeSymlink:
		buf = binary.AppendUvarint(buf, uint64(len(e.Target)))
		buf = append(buf, e.Target...)
	}
	return buf
}

// minEntrySize is the fewest bytes an encoded entry takes (a directory
// with a one-byte path and every number a one-byte varint: 2 + 8), which
// bounds a manifest's entry count, and so its allocation, by its size.
const minEntrySize = 10

// errManifest marks decoding failures; callers wrap it with ErrCorrupt
// and the object that held the manifest.
var errManifest = errors.New("malformed manifest")

// DecodeManifest parses and validates an encoded manifest. Paths must be
// clean, relative, unique, in tree order, and have a directory entry as
// parent, so restoring one can never write outside the tree or through a
// symlink.
func DecodeManifest(data []byte) (*Manifest, error) {
	d := decoder{buf: data}
	if !d.expect(manifestMagic) {
		return nil, fmt.Errorf("%w: bad magic or unsupported version", errManifest)
	}
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.buf))/minEntrySize {
		return nil, fmt.Errorf("%w: entry count %d does not fit in %d bytes", errManifest, n, len(data))
	}
	m := &Manifest{Entries: make([]Entry, 0, n)}
	var chk entryChecker
	for i := uint64(0); i < n; i++ {
		var e Entry
		if err := decodeEntry(&d, &e, i); err != nil {
			return nil, err
		}
		if err := chk.check(&e, i); err != nil {
			return nil, err
		}
		m.Entries = append(m.Entries, e)
	}
	if len(d.buf) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", errManifest, len(d.buf))
	}
	return m, nil
}

// decodeEntry decodes entry i into e. A truncated input leaves d.err set
// (and the error says so): a stream with more input may try again.
func decodeEntry(d *decoder, e *Entry, i uint64) error {
	e.Path = d.str(maxPathLen)
	e.Type = EntryType(d.byte())
	e.Mode = uint32(d.uvarintMax(0o7777))
	e.UID = uint32(d.uvarintMax(1<<32 - 1))
	e.GID = uint32(d.uvarintMax(1<<32 - 1))
	e.MTime = d.varint()
	e.Dev = d.uvarint()
	e.Inode = d.uvarint()
	e.CTime = d.varint()
	switch e.Type {
	case TypeFile:
		e.Size = int64(d.uvarintMax(1<<62 - 1))
		nc := d.uvarint()
		if d.err == nil && nc > uint64(len(d.buf))/(cas.HashSize+1) {
			// Not necessarily malformed in a stream: more may follow.
			d.fail("chunk count %d exceeds the remaining input", nc)
			break
		}
		if nc > 0 {
			e.Chunks = make([]Chunk, nc)
		}
		var total int64
		for j := range e.Chunks {
			copy(e.Chunks[j].Hash[:], d.bytes(cas.HashSize))
			sz := d.uvarintMax(cas.MaxObjectSize)
			if d.err == nil && sz == 0 {
				return fmt.Errorf("%w: %q: empty chunk", errManifest, e.Path)
			}
			e.Chunks[j].Size = uint32(sz)
			total += int64(sz)
		}
		if d.err == nil && total != e.Size {
			return fmt.Errorf("%w: %q: chunks hold %d bytes but the size is %d", errManifest, e.Path, total, e.Size)
		}
	case TypeSymlink:
		e.Target = d.str(maxTargetLen)
		if d.err == nil && (e.Target == "" || strings.IndexByte(e.Target, 0) >= 0) {
			return fmt.Errorf("%w: %q: bad symlink target", errManifest, e.Path)
		}
	case TypeDir:
	default:
		if d.err == nil {
			return fmt.Errorf("%w: %q: unknown entry type %d", errManifest, e.Path, e.Type)
		}
	}
	if d.err != nil {
		return fmt.Errorf("%w: entry %d: %v", errManifest, i, d.err)
	}
	return nil
}

// entryChecker checks that entries come clean, in tree order, unique,
// each with a directory entry as its parent.
type entryChecker struct {
	dirs []string // stack of open directories, innermost last
	prev string
}

func (c *entryChecker) check(e *Entry, i uint64) error {
	if err := checkPath(e.Path); err != nil {
		return fmt.Errorf("%w: entry %d: %v", errManifest, i, err)
	}
	if i > 0 && !lessPath(c.prev, e.Path) {
		return fmt.Errorf("%w: %q is out of order or repeated after %q", errManifest, e.Path, c.prev)
	}
	c.prev = e.Path
	for len(c.dirs) > 0 && !strings.HasPrefix(e.Path, c.dirs[len(c.dirs)-1]+"/") {
		c.dirs = c.dirs[:len(c.dirs)-1]
	}
	parent := ""
	if len(c.dirs) > 0 {
		parent = c.dirs[len(c.dirs)-1]
	}
	if parentOf(e.Path) != parent {
		return fmt.Errorf("%w: %q has no directory entry for its parent", errManifest, e.Path)
	}
	if e.Type == TypeDir {
		c.dirs = append(c.dirs, e.Path)
	}
	return nil
}

// checkPath accepts clean relative slash paths with no empty, "." or ".."
// components and no NUL bytes.
func checkPath(p string) error {
	if p == "" {
		return errors.New("empty path")
	}
	for _, part := range strings.Split(p, "/") {
		switch {
		case part == "" || part == "." || part == "..":
			return fmt.Errorf("path %q is not clean and relative", p)
		case len(part) > maxNameLen:
			return fmt.Errorf("path %q has a component longer than %d bytes", p, maxNameLen)
		case strings.IndexByte(part, 0) >= 0:
			return fmt.Errorf("path %q contains a NUL byte", p)
		}
	}
	return nil
}

// decoder reads varint-framed fields; the first error sticks and later
// reads return zero values.
type decoder struct {
	buf []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
	d.buf = nil
}

func (d *decoder) expect(s string) bool {
	if len(d.buf) < len(s) || string(d.buf[:len(s)]) != s {
		d.fail("expected %q", s)
		return false
	}
	d.buf = d.buf[len(s):]
	return true
}

func (d *decoder) byte() byte {
	if len(d.buf) < 1 {
		d.fail("truncated")
		return 0
	}
	b := d.buf[0]
	d.buf = d.buf[1:]
	return b
}

// Varints must be minimal (no trailing zero byte), so that every value
// has exactly one encoding.
func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.buf)
	if n <= 0 || n > 1 && d.buf[n-1] == 0 {
		d.fail("bad or truncated varint")
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) uvarintMax(max uint64) uint64 {
	v := d.uvarint()
	if v > max {
		d.fail("value %d exceeds %d", v, max)
		return 0
	}
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.buf)
	if n <= 0 || n > 1 && d.buf[n-1] == 0 {
		d.fail("bad or truncated varint")
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) bytes(n int) []byte {
	if len(d.buf) < n {
		d.fail("truncated")
		return make([]byte, n)
	}
	b := d.buf[:n]
	d.buf = d.buf[n:]
	return b
}

func (d *decoder) str(max int) string {
	n := d.uvarintMax(uint64(max))
	if d.err != nil {
		return ""
	}
	return string(d.bytes(int(n)))
}
