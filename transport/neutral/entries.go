package neutral

import (
	"errors"
	"io"
	"io/fs"
	"time"
)

// Kind is the kind of a record of a neutral stream.
type Kind byte

// The record kinds, as written in the stream.
const (
	KindDir     Kind = 'd'
	KindFile    Kind = 'f'
	KindSymlink Kind = 'l'
)

// Entry is one record of a neutral stream: a directory, a regular file
// or a symlink of the tree, parents before children.
type Entry struct {
	Kind Kind
	// Path is slash-separated, relative and clean ("db/base/1").
	Path string
	// Mode holds the permission bits (0777) only.
	Mode fs.FileMode
	// MTime is the modification time, to the nanosecond.
	MTime time.Time
	// Size is a file's length in bytes (KindFile only).
	Size int64
	// Target is a symlink's target (KindSymlink only).
	Target string
}

// Scan reads a neutral stream record by record, for consumers that do
// not unpack it into a directory (a bucket remote chunks files as they
// come). fn gets each entry in stream order; for a file, content yields
// exactly Size bytes, and whatever fn leaves unread is skipped. Scan
// checks every record as Read does (paths, sizes, order) and returns nil
// only when the trailer matches: until then everything seen is
// provisional, and the caller must make nothing of it visible. Malformed
// or damaged streams give an error wrapping ErrCorrupt; an error from fn
// stops the scan and is returned as is.
func Scan(r io.Reader, fn func(e Entry, content io.Reader) error) error {
	return errors.New("neutral.Scan: not implemented yet")
}

// Writer writes a neutral stream record by record, for producers that do
// not have the tree in a directory (a bucket remote rebuilding a commit
// from its chunks). Entries must come parents before children, as Scan
// and Read expect.
type Writer struct {
	w io.Writer
}

// NewWriter starts a stream on w (it writes the magic).
func NewWriter(w io.Writer) (*Writer, error) {
	return nil, errors.New("neutral.NewWriter: not implemented yet")
}

// Add writes one record; for a file, content must yield exactly e.Size
// bytes (fewer or more is an error, and the stream is then unusable).
func (w *Writer) Add(e Entry, content io.Reader) error {
	return errors.New("neutral.Writer.Add: not implemented yet")
}

// Close writes the trailer and flushes; it does not close the
// underlying writer.
func (w *Writer) Close() error {
	return errors.New("neutral.Writer.Close: not implemented yet")
}
