// Package neutral is the backend-neutral stream of dotmesh transfers: one
// commit's whole tree, carried between nodes whose backends differ (ZFS in
// production, files on a laptop). It knows nothing of dots or backends;
// the engine writes a commit's directory with Write and unpacks an
// incoming stream into a fresh working state with Read, or a delta into
// a working state holding its base with ApplyDelta. Consumers and
// producers without a directory (a bucket remote, which chunks files as
// they pass and rebuilds streams from chunks) use the same records
// through Scan and Writer, which hold the format's encoding and checks.
//
// The format:
//
//	"DMN1"
//	records in walk order (filepath.WalkDir's: depth first, names in byte
//	order, a directory before what it holds), each path once, each:
//	  kind   byte     'd' directory, 'f' file, 'l' symlink
//	  path   uvarint length + bytes: slash-separated, relative, clean
//	  mode   uvarint  permission bits (0777)
//	  mtime  varint   Unix nanoseconds
//	  'f':   uvarint size + content;  'l': uvarint length + target
//	'e' and the SHA-256 of every byte before the 'e'
//
// A delta stream carries what changed from a base commit the receiver
// holds, so that a 1% change sends ~1%:
//
//	"DMD1"
//	base   uvarint length + bytes: the base commit's id (printable ASCII)
//	records in walk order, each path once, each the path's full record
//	  as above where the new tree's entry is new or differs from the
//	  base's in kind, mode, mtime, size, target or content, or:
//	  'r'    uvarint length + path: the base's entry there is gone (a
//	         directory with everything below it)
//	  'p'    a file that was a file in the base too, as a patch against
//	         the base's (patch.go): only in deltas read by ApplyDelta,
//	         to which a sender sends them only when the receiver says so
//	'e' and the SHA-256 of every byte before the 'e'
//
// Unchanged directories are left out, so a record's parent may be
// absent; nothing may come below a removed path or a non-directory
// record. A record replaces what the base had at its path (a directory
// that stays a directory keeps its contents; only mode and mtime change).
// The magic keeps the two kinds apart: Scan and Read refuse a delta and
// ScanDelta a whole stream. A delta is applied by its receiver, which
// must refuse one whose base it lacks, whose removal names a missing path
// or whose record's parent is not a directory after the base and delta.
//
// Sockets and devices are not carried. Read writes through os.Root (no
// path or symlink leads outside its directory) and succeeds only when the
// trailer matches, so the caller commits nothing of a truncated or
// corrupted stream.
package neutral

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"sync"
	"time"
)

// ErrCorrupt is wrapped by every error Read and Scan return for a
// malformed or damaged stream (as opposed to a failing disk). Its text is the engine's
// ErrCorrupt's, which the engine adds when it receives a stream.
var ErrCorrupt = errors.New("corrupt data")

const (
	neutralMagic = "DMN1"
	deltaMagic   = "DMD1"
)

const maxNeutralPath = 4096

// neutralReadBuffer is the receiver's read buffer. It was 1 MiB, allocated
// (and zeroed) for every stream however short: a tiny or cut-off stream
// cost ~0.8 ms, which made fuzzing stall in minimization (thousands of
// calls per input). 64 KiB keeps large files streaming as fast.
const neutralReadBuffer = 64 << 10

// uncheckedReaders are the read buffers of streams within one process
// (UncheckedReader), uncheckedReadBuffer bytes each, reused across
// streams so that a short one allocates nothing.
var uncheckedReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, uncheckedReadBuffer) }}

const uncheckedReadBuffer = 1 << 20

type hashWriter struct {
	w io.Writer
	h hash.Hash
}

func (hw hashWriter) Write(p []byte) (int, error) {
	if hw.h != nil {
		hw.h.Write(p)
	}
	return hw.w.Write(p)
}

// UncheckedWriter and UncheckedReader mark the two ends of a stream
// that never leaves this process (a pipe between a node's sender and a
// receiver it runs itself): a stream written to UncheckedWriter(w) has
// no checksum (its trailer holds zeros), and Scan, ScanDelta, Read and
// ApplyDelta reading UncheckedReader(r) check none; every other check
// stays. The checksum guards bytes that cross a process or a network;
// in memory it would be computed twice over the same bytes for nothing.
// Mark both ends or neither: a checked reader refuses an unchecked
// stream as damaged.
func UncheckedWriter(w io.Writer) io.Writer { return uncheckedWriter{w} }

// UncheckedReader: see UncheckedWriter.
func UncheckedReader(r io.Reader) io.Reader { return uncheckedReader{r} }

type uncheckedWriter struct{ w io.Writer }

func (u uncheckedWriter) Write(p []byte) (int, error) { return u.w.Write(p) }

type uncheckedReader struct{ r io.Reader }

func (u uncheckedReader) Read(p []byte) (int, error) { return u.r.Read(p) }

// writerHash unwraps an UncheckedWriter; the hash is nil for one.
func writerHash(w io.Writer) (io.Writer, hash.Hash) {
	if u, ok := w.(uncheckedWriter); ok {
		return u.w, nil
	}
	return w, sha256.New()
}

// Write writes the tree at dir as a neutral stream.
func Write(dir string, w io.Writer) error {
	sw, err := NewWriter(w)
	if err != nil {
		return err
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := Entry{Path: filepath.ToSlash(rel), Mode: info.Mode().Perm(), MTime: ClampTime(info.ModTime())}
		switch {
		case info.IsDir():
			e.Kind = KindDir
		case info.Mode().IsRegular():
			e.Kind, e.Size = KindFile, info.Size()
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			// A file that grew since its stat is sent as it was long.
			return sw.Add(e, io.LimitReader(f, e.Size))
		case info.Mode()&fs.ModeSymlink != 0:
			e.Kind = KindSymlink
			if e.Target, err = os.Readlink(p); err != nil {
				return err
			}
		default:
			return nil // sockets, devices: not state a commit keeps
		}
		return sw.Add(e, nil)
	})
	if err != nil {
		return fmt.Errorf("writing the neutral stream of %s: %w", dir, err)
	}
	return sw.Close()
}

// ClampTime brings a time into the stream's range (1678 to 2262, Unix
// nanoseconds in an int64): a file touched into the far future is sent
// stamped at the range's end rather than failing the transfer.
func ClampTime(t time.Time) time.Time {
	lo, hi := time.Unix(0, math.MinInt64), time.Unix(0, math.MaxInt64)
	switch {
	case t.Before(lo):
		return lo
	case t.After(hi):
		return hi
	}
	return t
}

// Read unpacks a neutral stream into the empty directory dir. Any error
// means the stream was malformed or corrupt (ErrCorrupt) or the disk
// failed; the caller discards dir's contents then.
func Read(r io.Reader, dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	type dirTime struct {
		name string
		t    time.Time
	}
	var dirTimes []dirTime
	err = Scan(r, func(e Entry, content io.Reader) error {
		switch e.Kind {
		case KindDir:
			if err := root.Mkdir(e.Path, 0o700); err != nil {
				return corrupt("directory %q: %v", e.Path, err)
			}
			if err := root.Chmod(e.Path, e.Mode); err != nil {
				return err
			}
			// A directory's time is set last, once nothing is added to it.
			dirTimes = append(dirTimes, dirTime{e.Path, e.MTime})
		case KindFile:
			return writeFile(root, e, content)
		case KindSymlink:
			if err := root.Symlink(e.Target, e.Path); err != nil {
				return corrupt("symlink %q: %v", e.Path, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := len(dirTimes) - 1; i >= 0; i-- {
		_ = root.Chtimes(dirTimes[i].name, dirTimes[i].t, dirTimes[i].t)
	}
	return nil
}

// writeFile creates the file of e, which must not exist yet.
func writeFile(root *os.Root, e Entry, content io.Reader) error {
	f, err := root.OpenFile(e.Path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return corrupt("file %q: %v", e.Path, err)
	}
	_, err = io.Copy(f, content)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := root.Chmod(e.Path, e.Mode); err != nil {
		return err
	}
	return root.Chtimes(e.Path, e.MTime, e.MTime)
}

// ApplyDelta applies a delta stream to dir, which holds the tree of its
// base commit: base gets the stream's base id first and refuses one dir
// does not hold. A removal of a path dir lacks, or a record whose parent
// is not a directory, is ErrCorrupt. Directories keep their times unless
// the delta sets them. On any error dir is part way between base and
// target: the caller discards it (or restores the base) and commits
// nothing.
func ApplyDelta(r io.Reader, dir string, base func(id string) error) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	// The times of the directories changed, to set once nothing more is
	// added to them: their base times or the delta's.
	times := map[string]time.Time{}
	var dirs []string
	keep := func(p string, t time.Time) {
		if _, ok := times[p]; !ok {
			dirs = append(dirs, p)
		}
		times[p] = t
	}
	// isDir says whether p and each directory above it is a directory,
	// not a symlink to one (os.Root would follow it, within dir). A path
	// is checked only after its own record, which is its last change.
	dirOK := map[string]bool{".": true}
	var isDir func(p string) (fs.FileInfo, bool)
	isDir = func(p string) (fs.FileInfo, bool) {
		info, err := root.Lstat(p)
		if err != nil || !info.IsDir() {
			return nil, false
		}
		if !dirOK[p] {
			if _, ok := isDir(path.Dir(p)); !ok {
				return nil, false
			}
			dirOK[p] = true
		}
		return info, true
	}
	// inParent checks e's directory and keeps its time.
	inParent := func(e *Entry) error {
		parent := path.Dir(e.Path)
		pi, ok := isDir(parent)
		if !ok {
			return corrupt("the directory of %q, %q, is in neither the base nor the delta", e.Path, parent)
		}
		if _, ok := times[parent]; !ok {
			keep(parent, pi.ModTime())
		}
		return nil
	}
	if base == nil {
		base = func(string) error { return nil }
	}
	err = scan(r, base, func(e Entry, content io.Reader) error {
		if err := inParent(&e); err != nil {
			return err
		}
		old, err := root.Lstat(e.Path)
		had := err == nil
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if e.Kind == KindRemoved {
			if !had {
				return corrupt("removes %q, which the base does not have", e.Path)
			}
			return root.RemoveAll(e.Path)
		}
		stays := had && old.IsDir() && e.Kind == KindDir
		if had && !stays {
			if err := root.RemoveAll(e.Path); err != nil {
				return err
			}
		}
		switch e.Kind {
		case KindDir:
			if !stays {
				if err := root.Mkdir(e.Path, 0o700); err != nil {
					return err
				}
			}
			keep(e.Path, e.MTime)
			return root.Chmod(e.Path, e.Mode)
		case KindFile:
			return writeFile(root, e, content)
		case KindSymlink:
			return root.Symlink(e.Target, e.Path)
		}
		return nil
	}, func(e Entry, pb *patchBody) error {
		if err := inParent(&e); err != nil {
			return err
		}
		old, err := root.Lstat(e.Path)
		if err != nil || !old.Mode().IsRegular() {
			return corrupt("patches %q, which is not a file in the base", e.Path)
		}
		return applyPatch(root, e, old.Size(), pb)
	})
	if err != nil {
		return err
	}
	for _, d := range dirs {
		if err := root.Chtimes(d, times[d], times[d]); err != nil {
			return err
		}
	}
	return nil
}
