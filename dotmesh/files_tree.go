package dotmesh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// commitTree is the tree of one commit, opened for reading: from the
// backend's records (TreeReader), from the commit's own directory
// (CommitViewer), or from a scratch branch made from the commit, which
// close removes.
type commitTree struct {
	entries []TreeEntry // sorted by Path
	index   map[string]int
	read    func(path string, max int64) ([]byte, bool, error)
	open    func(path string) (io.ReadCloser, error)
	close   func()
	// ids are the inode ids of a directory tree's regular files; proof is
	// the tree they prove files unchanged against, for ctimes before
	// proofBefore (proveByInodes).
	ids         map[string]inodeID
	proof       *commitTree
	proofBefore int64
}

// openTree opens the tree of commit c, whose data be holds.
func (n *Node) openTree(ctx context.Context, d *Dot, be StorageBackend, c *Commit) (*commitTree, error) {
	var t *commitTree
	var err error
	if tr, ok := be.(TreeReader); ok {
		t, err = openRecordedTree(ctx, tr, c.Ref())
	} else if cv, ok := be.(CommitViewer); ok {
		var dir string
		if dir, err = cv.CommitDir(ctx, c.Ref()); err == nil {
			t, err = openDirTree(ctx, dir, func() {})
		}
	} else {
		t, err = n.openScratchTree(ctx, d, be, c)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the tree of commit %s: %w", c.ID, err)
	}
	indexTree(t)
	return t, nil
}

func openRecordedTree(ctx context.Context, tr TreeReader, c CommitRef) (*commitTree, error) {
	entries, err := tr.CommitTree(ctx, c)
	if err != nil {
		return nil, err
	}
	read := func(p string, max int64) ([]byte, bool, error) { return tr.ReadCommitFile(ctx, c, p, max) }
	return &commitTree{entries: entries, read: read, open: recordedOpen(read), close: func() {}}, nil
}

// openScratchTree restores c into a scratch branch (a clone or snapshot
// on zfs, so cheap) and reads it. Reconcile removes the scratch branch
// should the process die before close.
func (n *Node) openScratchTree(ctx context.Context, d *Dot, be StorageBackend, c *Commit) (*commitTree, error) {
	dir, cleanup, err := n.scratchCopy(ctx, d, be, c, "_files-")
	if err != nil {
		return nil, err
	}
	return openDirTree(ctx, dir, cleanup)
}

// openDirTree reads the tree under dir through an os.Root, which never
// follows a path out of it; close runs cleanup.
func openDirTree(ctx context.Context, dir string, cleanup func()) (*commitTree, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		cleanup()
		return nil, err
	}
	entries, ids, err := walkRoot(ctx, root)
	if err != nil {
		root.Close()
		cleanup()
		return nil, err
	}
	return &commitTree{
		entries: entries,
		ids:     ids,
		read:    func(p string, max int64) ([]byte, bool, error) { return readRootFile(root, p, max) },
		open:    func(p string) (io.ReadCloser, error) { return openRootFile(root, p) },
		close: func() {
			root.Close()
			cleanup()
		},
	}, nil
}

// walkRoot lists every directory, regular file and symlink under root
// (other kinds of file are not part of a commit on every backend), and
// the inode ids of the regular files.
func walkRoot(ctx context.Context, root *os.Root) ([]TreeEntry, map[string]inodeID, error) {
	var out []TreeEntry
	ids := map[string]inodeID{}
	err := fs.WalkDir(root.FS(), ".", func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		info, err := de.Info()
		if err != nil {
			return err
		}
		e := TreeEntry{FileEntry: FileEntry{Path: p, Mode: keptMode(info.Mode()), ModTime: info.ModTime().UTC()}}
		switch {
		case info.Mode().IsRegular():
			e.Size = info.Size()
			if id, ok := fileInodeID(info); ok {
				ids[p] = id
			}
		case info.Mode()&fs.ModeSymlink != 0:
			if e.Target, err = root.Readlink(p); err != nil {
				return err
			}
		case info.IsDir():
		default:
			return nil
		}
		out = append(out, e)
		return nil
	})
	return out, ids, err
}

// keptMode is the part of a mode a commit keeps: type, permissions,
// setuid, setgid and sticky.
func keptMode(m fs.FileMode) fs.FileMode {
	return m & (fs.ModeType | fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
}

// openRootFile opens the regular file p of root; a symlink or anything
// else is refused rather than followed.
func openRootFile(root *os.Root, p string) (*os.File, error) {
	info, err := root.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s is not in the commit", ErrNotFound, p)
	}
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, notRegular(p, info.Mode())
	}
	f, err := root.Open(p)
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err != nil || !os.SameFile(st, info) {
		f.Close()
		return nil, fmt.Errorf("%w: %s changed while it was opened", ErrConflict, p)
	}
	return f, nil
}

func readRootFile(root *os.Root, p string, max int64) ([]byte, bool, error) {
	f, err := openRootFile(root, p)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	// One byte more than max says whether the file is longer.
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, false, err
	}
	if int64(len(data)) > max {
		return data[:max], true, nil
	}
	return data, false, nil
}

func notRegular(p string, m fs.FileMode) error {
	kind := "special file"
	switch {
	case m.IsDir():
		kind = "directory"
	case m&fs.ModeSymlink != 0:
		kind = "symlink"
	}
	return fmt.Errorf("%w: %s is a %s, not a regular file; only regular files can be read", ErrInvalidArgument, p, kind)
}

// sameBytes compares the content of regular file p in two trees.
func sameBytes(a, b *commitTree, p string) (bool, error) {
	fa, err := a.open(p)
	if err != nil {
		return false, err
	}
	defer fa.Close()
	fb, err := b.open(p)
	if err != nil {
		return false, err
	}
	defer fb.Close()
	bufA, bufB := make([]byte, 256<<10), make([]byte, 256<<10)
	for {
		na, errA := io.ReadFull(fa, bufA)
		nb, errB := io.ReadFull(fb, bufB)
		if !bytes.Equal(bufA[:na], bufB[:nb]) {
			return false, nil
		}
		endA := errA == io.EOF || errA == io.ErrUnexpectedEOF
		endB := errB == io.EOF || errB == io.ErrUnexpectedEOF
		if errA != nil && !endA {
			return false, errA
		}
		if errB != nil && !endB {
			return false, errB
		}
		if endA || endB {
			return endA && endB, nil
		}
	}
}

// parentDir is the directory part of a tree path ("" at the top).
func parentDir(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return ""
}
