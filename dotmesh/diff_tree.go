package dotmesh

import (
	"bytes"
	"context"
	"io"
	"math"
	"sort"
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
// to stop early.
func compareTrees(ctx context.Context, a, b *commitTree, keep func(p string) bool, fn func(treeChange) (bool, error)) error {
	i, j := 0, 0
	for i < len(a.entries) || j < len(b.entries) {
		if err := ctx.Err(); err != nil {
			return err
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
			if ea.Mode.Type() != eb.Mode.Type() {
				ch = treeChange{kind: ChangeTypeChanged, old: ea, new: eb}
				break
			}
			same, err := sameEntry(a, b, ea, eb)
			if err != nil {
				return err
			}
			if same {
				continue
			}
			ch = treeChange{kind: ChangeModified, old: ea, new: eb}
		}
		if keep != nil && !keep(ch.path()) {
			continue
		}
		more, err := fn(ch)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// sameEntry says whether two entries at the same path are equal: kind,
// permissions, symlink target and a file's bytes. Modification times
// alone are no change (restores and transfers keep them anyway); bytes
// are compared by the backends' content ids where both sides have one
// (unchanged files of the dump store are never read), else read.
func sameEntry(a, b *commitTree, ea, eb *TreeEntry) (bool, error) {
	if keptMode(ea.Mode) != keptMode(eb.Mode) || ea.Target != eb.Target || ea.Size != eb.Size {
		return false, nil
	}
	if !ea.Mode.IsRegular() {
		return true, nil
	}
	if ea.Content != "" && eb.Content != "" {
		return ea.Content == eb.Content, nil
	}
	if sameByInodes(a, b, ea.Path) {
		return true, nil
	}
	return sameBytes(a, b, ea.Path)
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
