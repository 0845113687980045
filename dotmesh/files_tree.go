package dotmesh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"strings"
	"sync"
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
	// whole: open reads the whole file into memory (TreeReader), so
	// files are compared one at a time.
	whole bool
	// stream, when set, opens a file without reading it whole
	// (TreeFileOpener), for neutral streams; comparisons keep open.
	stream func(path string) (io.ReadCloser, error)
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
	t := &commitTree{entries: entries, read: read, open: recordedOpen(read), close: func() {}, whole: true}
	if fo, ok := tr.(TreeFileOpener); ok {
		t.stream = func(p string) (io.ReadCloser, error) { return fo.OpenCommitFile(ctx, c, p) }
	}
	return t, nil
}

// openScratchTree restores c into a scratch branch (a clone on zfs, so
// no copy) or takes the one kept from an earlier read (files_scratch.go),
// and reads it. Reconcile removes a scratch branch the process left.
func (n *Node) openScratchTree(ctx context.Context, d *Dot, be StorageBackend, c *Commit) (*commitTree, error) {
	k := scratchKey{dot: d.ID, commit: c.ID}
	mk := func() (string, func(), error) { return n.scratchCopy(ctx, d, be, c, "_files-") }
	for {
		dir, release, kept, err := n.scratch.acquire(k, mk)
		if err != nil {
			return nil, err
		}
		t, err := openDirTree(ctx, dir, release)
		if err == nil || !kept || ctx.Err() != nil {
			return t, err
		}
		// The kept copy is broken (unmounted or destroyed behind the
		// Node's back): a new one.
		n.log.Warn("a kept scratch copy of a commit is unreadable; making another", "commit", c.ID, "dir", dir, "err", err)
		n.scratch.forget(k, dir)
	}
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
// the inode ids of the regular files, in no particular order. Directories
// are read by up to walkWorkers goroutines at once: on FUSE (zfs-fuse)
// every lookup and stat is a round trip to the daemon, which serves
// several at a time.
func walkRoot(ctx context.Context, root *os.Root) ([]TreeEntry, map[string]inodeID, error) {
	w := &treeWalk{ctx: ctx, ids: map[string]inodeID{}, sem: make(chan struct{}, walkWorkers-1)}
	w.dir(root, "")
	w.wg.Wait()
	return w.entries, w.ids, w.err
}

const walkWorkers = 8

type treeWalk struct {
	ctx context.Context
	sem chan struct{} // a slot per goroutine beyond the caller's
	wg  sync.WaitGroup

	mu      sync.Mutex
	entries []TreeEntry
	ids     map[string]inodeID
	err     error
}

func (w *treeWalk) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
}

func (w *treeWalk) failed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err != nil
}

// dir lists the directory d (tree path prefix, "" at the top) and walks
// its subdirectories, each opened relative to d: one lookup, not one per
// component of its path.
func (w *treeWalk) dir(d *os.Root, prefix string) {
	if err := w.ctx.Err(); err != nil {
		w.fail(err)
		return
	}
	if w.failed() {
		return
	}
	f, err := d.Open(".")
	if err != nil {
		w.fail(err)
		return
	}
	des, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		w.fail(err)
		return
	}
	var out []TreeEntry
	ids := map[string]inodeID{}
	var subdirs []string
	for _, de := range des {
		info, err := de.Info() // in a Root: read with the directory, by fstatat
		if err != nil {
			w.fail(err)
			return
		}
		p := prefix + de.Name()
		e := TreeEntry{FileEntry: FileEntry{Path: p, Mode: keptMode(info.Mode()), ModTime: info.ModTime().UTC()}}
		switch {
		case info.Mode().IsRegular():
			e.Size = info.Size()
			if id, ok := fileInodeID(info); ok {
				ids[p] = id
			}
		case info.Mode()&fs.ModeSymlink != 0:
			if e.Target, err = d.Readlink(de.Name()); err != nil {
				w.fail(err)
				return
			}
		case info.IsDir():
			subdirs = append(subdirs, de.Name())
		default:
			continue
		}
		out = append(out, e)
	}
	w.mu.Lock()
	w.entries = append(w.entries, out...)
	maps.Copy(w.ids, ids)
	w.mu.Unlock()
	for _, name := range subdirs {
		sub, err := d.OpenRoot(name)
		if err != nil {
			w.fail(err)
			return
		}
		select {
		case w.sem <- struct{}{}:
			w.wg.Add(1)
			go func() {
				defer func() { sub.Close(); <-w.sem; w.wg.Done() }()
				w.dir(sub, prefix+name+"/")
			}()
		default:
			w.dir(sub, prefix+name+"/")
			sub.Close()
		}
	}
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

// sameBytes compares the content of regular file p in two trees, both
// read at once, a MiB at a time.
func sameBytes(ctx context.Context, a, b *commitTree, p string) (bool, error) {
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
	bufs := compareBufs.Get().(*[2][]byte)
	defer compareBufs.Put(bufs)
	bufA, bufB := bufs[0], bufs[1]
	for {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		var nb int
		var errB error
		done := make(chan struct{})
		go func() {
			defer close(done)
			nb, errB = io.ReadFull(fb, bufB)
		}()
		na, errA := io.ReadFull(fa, bufA)
		<-done
		endA := errA == io.EOF || errA == io.ErrUnexpectedEOF
		endB := errB == io.EOF || errB == io.ErrUnexpectedEOF
		if errA != nil && !endA {
			return false, errA
		}
		if errB != nil && !endB {
			return false, errB
		}
		if !bytes.Equal(bufA[:na], bufB[:nb]) {
			return false, nil
		}
		if endA || endB {
			return endA && endB, nil
		}
	}
}

var compareBufs = sync.Pool{New: func() any { return &[2][]byte{make([]byte, 1<<20), make([]byte, 1<<20)} }}

// parentDir is the directory part of a tree path ("" at the top).
func parentDir(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return ""
}

// scratchCopy restores commit c into a scratch branch named prefix plus
// random hex (a clone or snapshot on zfs and btrfs, so cheap) and returns
// its root directory and the function that deletes it. Reconcile removes
// a scratch branch left by a process that died before cleanup.
func (n *Node) scratchCopy(ctx context.Context, d *Dot, be StorageBackend, c *Commit, prefix string) (dir string, cleanup func(), err error) {
	tmp := BranchRef{Dot: d.ID, Branch: prefix + randomHex(8)}
	ref := c.Ref()
	if err := be.CreateBranch(ctx, tmp, &ref); err != nil {
		return "", nil, err
	}
	cleanup = func() { n.cleanupBranch(be, tmp) }
	if dir, err = be.SubdotPath(ctx, tmp, RootSubdot); err != nil {
		cleanup()
		return "", nil, err
	}
	return dir, cleanup, nil
}
