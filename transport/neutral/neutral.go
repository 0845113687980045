// Package neutral is the backend-neutral stream of dotmesh transfers: one
// commit's whole tree, carried between nodes whose backends differ (ZFS in
// production, files on a laptop). It knows nothing of dots or backends;
// the engine writes a restored commit's directory with Write and unpacks
// an incoming stream into a fresh working state with Read.
//
// The format:
//
//	"DMN1"
//	records, parents before children, each:
//	  kind   byte     'd' directory, 'f' file, 'l' symlink
//	  path   uvarint length + bytes: slash-separated, relative, clean
//	  mode   uvarint  permission bits (0777)
//	  mtime  varint   Unix nanoseconds
//	  'f':   uvarint size + content;  'l': uvarint length + target
//	'e' and the SHA-256 of every byte before the 'e'
//
// Sockets and devices are not carried. Read writes through os.Root (no
// path or symlink leads outside its directory) and succeeds only when the
// trailer matches, so the caller commits nothing of a truncated or
// corrupted stream.
package neutral

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// ErrCorrupt is wrapped by every error Read returns for a malformed or
// damaged stream (as opposed to a failing disk). Its text is the engine's
// ErrCorrupt's, which the engine adds when it receives a stream.
var ErrCorrupt = errors.New("corrupt data")

const neutralMagic = "DMN1"

const maxNeutralPath = 4096

// neutralReadBuffer is the receiver's read buffer. It was 1 MiB, allocated
// (and zeroed) for every stream however short: a tiny or cut-off stream
// cost ~0.8 ms, which made fuzzing stall in minimization (thousands of
// calls per input). 64 KiB keeps large files streaming as fast.
const neutralReadBuffer = 64 << 10

type hashWriter struct {
	w io.Writer
	h hash.Hash
}

func (hw hashWriter) Write(p []byte) (int, error) {
	hw.h.Write(p)
	return hw.w.Write(p)
}

// Write writes the tree at dir as a neutral stream.
func Write(dir string, w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	hw := hashWriter{bw, sha256.New()}
	if _, err := io.WriteString(hw, neutralMagic); err != nil {
		return err
	}
	var num [binary.MaxVarintLen64]byte
	uv := func(v uint64) error { _, err := hw.Write(num[:binary.PutUvarint(num[:], v)]); return err }
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
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
		var kind byte
		switch {
		case info.IsDir():
			kind = 'd'
		case info.Mode().IsRegular():
			kind = 'f'
		case info.Mode()&fs.ModeSymlink != 0:
			kind = 'l'
		default:
			return nil // sockets, devices: not state a commit keeps
		}
		name := filepath.ToSlash(rel)
		if _, err := hw.Write([]byte{kind}); err != nil {
			return err
		}
		if err := uv(uint64(len(name))); err != nil {
			return err
		}
		if _, err := io.WriteString(hw, name); err != nil {
			return err
		}
		if err := uv(uint64(info.Mode().Perm())); err != nil {
			return err
		}
		if _, err := hw.Write(num[:binary.PutVarint(num[:], info.ModTime().UnixNano())]); err != nil {
			return err
		}
		switch kind {
		case 'f':
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := uv(uint64(info.Size())); err != nil {
				return err
			}
			n, err := io.Copy(hw, io.LimitReader(f, info.Size()))
			if err == nil && n != info.Size() {
				err = fmt.Errorf("%s changed size while being sent", name)
			}
			return err
		case 'l':
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := uv(uint64(len(target))); err != nil {
				return err
			}
			_, err = io.WriteString(hw, target)
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("writing the neutral stream of %s: %w", dir, err)
	}
	sum := hw.h.Sum(nil)
	if _, err := bw.Write(append([]byte{'e'}, sum...)); err != nil {
		return err
	}
	return bw.Flush()
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
	br := bufio.NewReaderSize(r, neutralReadBuffer)
	h := sha256.New()
	tr := io.TeeReader(br, h)
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("%w: neutral stream: "+format, append([]any{ErrCorrupt}, args...)...)
	}
	var magic [4]byte
	if _, err := io.ReadFull(tr, magic[:]); err != nil || string(magic[:]) != neutralMagic {
		return corrupt("does not start with %q", neutralMagic)
	}
	byteR := readerByte{tr}
	type dirTime struct {
		name string
		t    time.Time
	}
	var dirTimes []dirTime
	for {
		// The trailer marker is read outside the hash.
		kind, err := br.ReadByte()
		if err != nil {
			return corrupt("ends early: %v", err)
		}
		if kind == 'e' {
			want := h.Sum(nil)
			got := make([]byte, len(want))
			if _, err := io.ReadFull(br, got); err != nil {
				return corrupt("trailer: %v", err)
			}
			if !bytes.Equal(got, want) {
				return corrupt("checksum mismatch: the stream was damaged in transit")
			}
			if _, err := br.ReadByte(); err != io.EOF {
				return corrupt("data after the trailer")
			}
			for i := len(dirTimes) - 1; i >= 0; i-- {
				_ = root.Chtimes(dirTimes[i].name, dirTimes[i].t, dirTimes[i].t)
			}
			return nil
		}
		h.Write([]byte{kind})
		n, err := binary.ReadUvarint(byteR)
		if err != nil || n == 0 || n > maxNeutralPath {
			return corrupt("bad path length")
		}
		nb := make([]byte, n)
		if _, err := io.ReadFull(tr, nb); err != nil {
			return corrupt("ends early in a path")
		}
		name := string(nb)
		if !fs.ValidPath(name) || name == "." || path.Clean(name) != name || strings.Contains(name, "\\") {
			return corrupt("invalid path %q", name)
		}
		mode, err := binary.ReadUvarint(byteR)
		if err != nil || mode > 0777 {
			return corrupt("bad mode for %q", name)
		}
		perm := fs.FileMode(mode & 0777)
		mt, err := binary.ReadVarint(byteR)
		if err != nil {
			return corrupt("bad time for %q", name)
		}
		mtime := time.Unix(0, mt)
		switch kind {
		case 'd':
			if err := root.Mkdir(name, 0o700); err != nil {
				return corrupt("directory %q: %v", name, err)
			}
			if err := root.Chmod(name, perm); err != nil {
				return err
			}
			dirTimes = append(dirTimes, dirTime{name, mtime})
		case 'f':
			size, err := binary.ReadUvarint(byteR)
			if err != nil || size > 1<<62 {
				return corrupt("bad size for %q", name)
			}
			f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return corrupt("file %q: %v", name, err)
			}
			_, err = io.CopyN(f, tr, int64(size))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if errors.Is(err, io.EOF) {
				return corrupt("ends early in %q", name)
			} else if err != nil {
				return err
			}
			if err := root.Chmod(name, perm); err != nil {
				return err
			}
			if err := root.Chtimes(name, mtime, mtime); err != nil {
				return err
			}
		case 'l':
			n, err := binary.ReadUvarint(byteR)
			if err != nil || n == 0 || n > maxNeutralPath {
				return corrupt("bad symlink length for %q", name)
			}
			target := make([]byte, n)
			if _, err := io.ReadFull(tr, target); err != nil {
				return corrupt("ends early in a symlink")
			}
			if err := root.Symlink(string(target), name); err != nil {
				return corrupt("symlink %q: %v", name, err)
			}
		default:
			return corrupt("unknown record kind %q", kind)
		}
	}
}

type readerByte struct{ r io.Reader }

func (b readerByte) ReadByte() (byte, error) {
	var p [1]byte
	_, err := io.ReadFull(b.r, p[:])
	return p[0], err
}
