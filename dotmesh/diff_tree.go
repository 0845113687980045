package dotmesh

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"sort"
	"sync"
)

// The one tree comparison: Files.Changes, Changes.Diff and Changes.Status
// all walk two sorted trees with compareTrees.

// treeChange is one path that differs between two trees; old is nil for
// an added path, new for a removed one.
type treeChange struct {
	kind     string // ChangeAdded, ChangeRemoved, ChangeModified, ChangeTypeChanged
	old, new *TreeEntry
}

func (c treeChange) path() string {
	if c.new != nil {
		return c.new.Path
	}
	return c.old.Path
}

// compareTrees calls fn, in path order, for every path that differs from
// a to b and that keep accepts (nil keeps every path); fn returns false
// to stop early. The files whose bytes must be read are compared by
// compareWorkers goroutines, up to compareAhead files ahead of fn.
func compareTrees(ctx context.Context, a, b *commitTree, keep func(p string) bool, fn func(treeChange) (bool, error)) error {
	steps, err := mergeTrees(ctx, a, b, keep)
	if err != nil {
		return err
	}
	var jobs []*bytesJob
	for _, st := range steps {
		if st.cmp != nil {
			jobs = append(jobs, st.cmp)
		}
	}
	bc := newByteCompare(ctx, a, b)
	defer bc.stop()
	started, k := 0, 0 // jobs[:started] run; jobs[k] is the next to wait for
	for i := range steps {
		st := &steps[i]
		if st.cmp != nil {
			for ; started < len(jobs) && started <= k+compareAhead; started++ {
				bc.start(jobs[started])
			}
			k++
			same, err := st.cmp.wait()
			if err != nil {
				return err
			}
			if same {
				continue
			}
		}
		more, err := fn(st.ch)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// compareWorkers files are read at once: on FUSE (zfs-fuse) a read is a
// round trip to a daemon that serves several; compareAhead bounds the
// work done past a caller that stops early.
const (
	compareWorkers = 4
	compareAhead   = 32
)

// mergeStep is one path that differs, or, with cmp, one whose bytes
// decide (a modification when they differ).
type mergeStep struct {
	ch  treeChange
	cmp *bytesJob
}

// mergeTrees walks a and b in path order: every path kept that differs,
// and those whose bytes are still to compare.
func mergeTrees(ctx context.Context, a, b *commitTree, keep func(p string) bool) ([]mergeStep, error) {
	var out []mergeStep
	i, j := 0, 0
	for i < len(a.entries) || j < len(b.entries) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var ch treeChange
		switch {
		case j == len(b.entries) || i < len(a.entries) && a.entries[i].Path < b.entries[j].Path:
			ch = treeChange{kind: ChangeRemoved, old: &a.entries[i]}
			i++
		case i == len(a.entries) || b.entries[j].Path < a.entries[i].Path:
			ch = treeChange{kind: ChangeAdded, new: &b.entries[j]}
			j++
		default:
			ea, eb := &a.entries[i], &b.entries[j]
			i++
			j++
			if keep != nil && !keep(ea.Path) {
				continue
			}
			ch = treeChange{kind: ChangeModified, old: ea, new: eb}
			if ea.Mode.Type() != eb.Mode.Type() {
				ch.kind = ChangeTypeChanged
				break
			}
			switch sameEntry(a, b, ea, eb) {
			case entrySame:
				continue
			case entryBytes:
				out = append(out, mergeStep{ch: ch, cmp: &bytesJob{path: ea.Path}})
				continue
			}
		}
		if keep != nil && !keep(ch.path()) {
			continue
		}
		out = append(out, mergeStep{ch: ch})
	}
	return out, nil
}

// What sameEntry knows of two entries at one path.
const (
	entryDiffers = iota
	entrySame
	entryBytes // as far as the trees say: their bytes decide
)

// sameEntry says whether two entries at the same path are equal: kind,
// permissions, symlink target and a file's bytes. Modification times
// alone are no change (restores and transfers keep them anyway); bytes
// are compared by the backends' content ids where both sides have one
// (unchanged files of the dump store are never read), proven equal by
// inode ids (InodeKeeper), or else read (entryBytes).
func sameEntry(a, b *commitTree, ea, eb *TreeEntry) int {
	if keptMode(ea.Mode) != keptMode(eb.Mode) || ea.Target != eb.Target || ea.Size != eb.Size {
		return entryDiffers
	}
	if !ea.Mode.IsRegular() {
		return entrySame
	}
	if ea.Content != "" && eb.Content != "" {
		if ea.Content == eb.Content {
			return entrySame
		}
		return entryDiffers
	}
	if sameByInodes(a, b, ea.Path) {
		return entrySame
	}
	return entryBytes
}

// bytesJob is one file to compare by its bytes; done, made when it
// starts, closes when same or err is set.
type bytesJob struct {
	path string
	done chan struct{}
	same bool
	err  error
}

func (j *bytesJob) wait() (bool, error) {
	<-j.done
	return j.same, j.err
}

// byteCompare runs bytesJobs on two trees, compareWorkers at a time.
type byteCompare struct {
	ctx    context.Context
	cancel context.CancelFunc
	a, b   *commitTree
	sem    chan struct{}
	wg     sync.WaitGroup
}

func newByteCompare(ctx context.Context, a, b *commitTree) *byteCompare {
	ctx, cancel := context.WithCancel(ctx)
	workers := compareWorkers
	if a.whole || b.whole {
		workers = 1
	}
	return &byteCompare{ctx: ctx, cancel: cancel, a: a, b: b, sem: make(chan struct{}, workers)}
}

func (c *byteCompare) start(j *bytesJob) {
	j.done = make(chan struct{})
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer close(j.done)
		select {
		case c.sem <- struct{}{}:
		case <-c.ctx.Done():
			j.err = c.ctx.Err()
			return
		}
		defer func() { <-c.sem }()
		j.same, j.err = sameBytes(c.ctx, c.a, c.b, j.path)
		if j.err != nil {
			j.err = fmt.Errorf("comparing %s: %w", j.path, j.err)
		}
	}()
}

// stop cancels what is still running and waits for it: the trees' files
// are closed before the trees are.
func (c *byteCompare) stop() {
	c.cancel()
	c.wg.Wait()
}

// emptyTree is the tree before the first commit.
func emptyTree() *commitTree {
	return &commitTree{index: map[string]int{}, close: func() {}}
}

// indexTree sorts t's entries by path and indexes them.
func indexTree(t *commitTree) {
	sort.Slice(t.entries, func(i, j int) bool { return t.entries[i].Path < t.entries[j].Path })
	t.index = make(map[string]int, len(t.entries))
	for i, e := range t.entries {
		t.index[e.Path] = i
	}
}

// openWorkingTree reads the working state of b where it is.
func openWorkingTree(ctx context.Context, be StorageBackend, b BranchRef) (*commitTree, error) {
	dir, err := be.SubdotPath(ctx, b, RootSubdot)
	if err != nil {
		return nil, err
	}
	t, err := openDirTree(ctx, dir, func() {})
	if err != nil {
		return nil, err
	}
	indexTree(t)
	return t, nil
}

// recordedOpen opens a file of a TreeReader's commit for comparison: the
// backend hands out whole files only, so it is read into memory.
func recordedOpen(read func(p string, max int64) ([]byte, bool, error)) func(string) (io.ReadCloser, error) {
	return func(p string) (io.ReadCloser, error) {
		data, _, err := read(p, math.MaxInt64)
		if err != nil {
			return nil, err
		}
		return io.NopCloser(bytes.NewReader(data)), nil
	}
}
