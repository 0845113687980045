package dotmesh

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"
)

// MaxFileRead bounds Files.Read: a browser shows small files, and a
// transfer, not a read, moves big ones.
const MaxFileRead = 64 << 20

// maxTreePath bounds a path given to Files, as the dump manifest does.
const maxTreePath = 4096

// ValidateTreePath checks a path inside a commit's tree: "" (the root) or
// slash-separated, relative and clean, without "." or ".." parts or NUL
// bytes, so it can never name anything outside the tree. ErrInvalidArgument
// otherwise.
func ValidateTreePath(p string) error {
	if p == "" {
		return nil
	}
	bad := len(p) > maxTreePath || strings.IndexByte(p, 0) >= 0 || strings.HasPrefix(p, "/") || path.Clean(p) != p
	if !bad {
		for part := range strings.SplitSeq(p, "/") {
			if part == "." || part == ".." {
				bad = true
				break
			}
		}
	}
	if bad {
		return fmt.Errorf("%w: path %q is not a path inside the commit; give a relative path like db/base/1, without a leading '/', '.', '..', doubled or trailing slashes", ErrInvalidArgument, truncate(p))
	}
	return nil
}

// fileCommit resolves ref on dot's branch, with the backend holding it.
func (n *Node) fileCommit(ctx context.Context, dot DotName, branch, ref string) (*Dot, StorageBackend, *Commit, error) {
	d, b, _, err := n.resolveBranch(ctx, dot, branch)
	if err != nil {
		return nil, nil, nil, err
	}
	c, err := n.resolve(ctx, d, b, ref)
	if err != nil {
		return nil, nil, nil, err
	}
	be, err := n.backendOf(d)
	if err != nil {
		return nil, nil, nil, err
	}
	return d, be, c, nil
}

func (n *Node) listFiles(ctx context.Context, dot DotName, branch, ref, dir, after string, limit int) (*FilesPage, error) {
	if err := ValidateTreePath(dir); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, fmt.Errorf("%w: list limit %d; give a positive number of entries", ErrInvalidArgument, limit)
	}
	d, be, c, err := n.fileCommit(ctx, dot, branch, ref)
	if err != nil {
		return nil, err
	}
	t, err := n.openTree(ctx, d, be, c)
	if err != nil {
		return nil, err
	}
	defer t.close()
	if dir != "" {
		i, ok := t.index[dir]
		if !ok {
			return nil, fmt.Errorf("%w: directory %s is not in commit %s", ErrNotFound, dir, c.ID)
		}
		if !t.entries[i].Mode.IsDir() {
			return nil, fmt.Errorf("%w: %s is not a directory in commit %s", ErrInvalidArgument, dir, c.ID)
		}
	}
	page := &FilesPage{Entries: []FileEntry{}}
	var names []string
	var entries []FileEntry
	for _, e := range t.entries {
		if parentDir(e.Path) != dir {
			continue
		}
		name := path.Base(e.Path)
		if name > after {
			names = append(names, name)
			entries = append(entries, e.FileEntry)
		}
	}
	// Paths sort with '/' inside them; names alone sort plainly.
	idx := make([]int, len(names))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(i, j int) bool { return names[idx[i]] < names[idx[j]] })
	for _, i := range idx[:min(limit, len(idx))] {
		page.Entries = append(page.Entries, entries[i])
	}
	if len(idx) > limit {
		page.Next = names[idx[limit-1]]
	}
	return page, nil
}

func (n *Node) readFile(ctx context.Context, dot DotName, branch, ref, p string, max int64) ([]byte, bool, error) {
	if err := ValidateTreePath(p); err != nil {
		return nil, false, err
	}
	if p == "" {
		return nil, false, fmt.Errorf("%w: the root of a commit is a directory; give the path of a file", ErrInvalidArgument)
	}
	if max <= 0 || max > MaxFileRead {
		return nil, false, fmt.Errorf("%w: read limit %d; give 1 to %d bytes", ErrInvalidArgument, max, MaxFileRead)
	}
	d, be, c, err := n.fileCommit(ctx, dot, branch, ref)
	if err != nil {
		return nil, false, err
	}
	if tr, ok := be.(TreeReader); ok {
		// One lookup in the backend's records, not the whole tree.
		return tr.ReadCommitFile(ctx, c.Ref(), p, max)
	}
	t, err := n.openTree(ctx, d, be, c)
	if err != nil {
		return nil, false, err
	}
	defer t.close()
	i, ok := t.index[p]
	if !ok {
		return nil, false, fmt.Errorf("%w: %s is not in commit %s", ErrNotFound, p, c.ID)
	}
	if m := t.entries[i].Mode; !m.IsRegular() {
		return nil, false, notRegular(p, m)
	}
	return t.read(p, max)
}

// Change kinds of FileChange.
const (
	ChangeAdded    = "added"
	ChangeRemoved  = "removed"
	ChangeModified = "modified"
)

func (n *Node) fileChanges(ctx context.Context, dot DotName, branch, ref string, limit int) ([]FileChange, bool, error) {
	if limit <= 0 {
		return nil, false, fmt.Errorf("%w: change limit %d; give a positive number of paths", ErrInvalidArgument, limit)
	}
	d, be, c, err := n.fileCommit(ctx, dot, branch, ref)
	if err != nil {
		return nil, false, err
	}
	t, err := n.openTree(ctx, d, be, c)
	if err != nil {
		return nil, false, err
	}
	defer t.close()
	// A first or pruned commit (its parent is not here) adds everything.
	old := &commitTree{index: map[string]int{}}
	if c.Parent != "" {
		p, err := n.reg.commit(ctx, d.ID, c.Parent)
		if err != nil {
			return nil, false, err
		}
		if p != nil {
			if old, err = n.openTree(ctx, d, be, p); err != nil {
				return nil, false, err
			}
			defer old.close()
			// c descends from p: files unchanged since are proven so.
			if err := n.proveByInodes(ctx, d, be, old, t, p, c, nil); err != nil {
				return nil, false, err
			}
		}
	}
	return diffTrees(ctx, old, t, limit)
}

// diffTrees lists the paths that differ from a to b, by path, at most
// limit of them, and whether there are more. A path whose kind changed
// is "modified" here (FileChange knows three kinds).
func diffTrees(ctx context.Context, a, b *commitTree, limit int) ([]FileChange, bool, error) {
	out := []FileChange{}
	more := false
	err := compareTrees(ctx, a, b, nil, func(ch treeChange) (bool, error) {
		if len(out) == limit {
			more = true
			return false, nil
		}
		fc := FileChange{Path: ch.path(), Kind: ch.kind}
		if fc.Kind == ChangeTypeChanged {
			fc.Kind = ChangeModified
		}
		if ch.old != nil {
			fc.OldSize = ch.old.Size
		}
		if ch.new != nil {
			fc.NewSize = ch.new.Size
		}
		out = append(out, fc)
		return true, nil
	})
	if err != nil {
		return nil, false, err
	}
	return out, more, nil
}
