package dotmesh

import (
	"context"
	"io/fs"
	"time"
)

// Files reads the tree of a commit without touching any working state:
// what a browser shows and what "what changed" compares. Backends with
// the TreeReader capability (dump) answer from their own records; those
// with CommitViewer (btrfs) show the commit's read-only snapshot; for the
// others (zfs) the Node reads a scratch branch made from the commit (a
// clone), which it keeps for the next read of that commit until a minute
// idle, Close, or a deletion in the dot (reconcile removes it after a
// crash).

// FileEntry is one entry of a commit's tree. Path is slash-separated and
// relative to the tree's root, whose top-level directories are the
// subdots ("__default__" for files outside any named subdot).
type FileEntry struct {
	Path    string      `json:"path"`
	Size    int64       `json:"size"`
	Mode    fs.FileMode `json:"mode"`
	ModTime time.Time   `json:"mod_time,omitempty"`
	Target  string      `json:"target,omitempty"` // a symlink's target
}

// FileChange is one path that differs between a commit and its parent.
type FileChange struct {
	Path    string `json:"path"`
	Kind    string `json:"kind"` // "added", "removed", "modified"
	OldSize int64  `json:"old_size,omitempty"`
	NewSize int64  `json:"new_size,omitempty"`
}

// FilesPage is one page of a directory listing.
type FilesPage struct {
	Entries []FileEntry `json:"entries"`
	Next    string      `json:"next,omitempty"` // pass as After for the next page
}

// Files is a handle on commit trees.
type Files struct{ n *Node }

// Files returns the node's reader of commit trees.
func (n *Node) Files() *Files { return &Files{n: n} }

// List returns the entries directly inside dir ("" is the root) of
// commit ref (any ref ResolveRef accepts) on dot's branch, by name,
// at most limit of them after the name after. ErrNotFound for a missing
// dot, commit or directory.
func (f *Files) List(ctx context.Context, dot DotName, branch, ref, dir, after string, limit int) (*FilesPage, error) {
	return f.n.listFiles(ctx, dot, branch, ref, dir, after, limit)
}

// Read returns the first max bytes of a regular file of the commit, and
// whether the file is longer than that.
func (f *Files) Read(ctx context.Context, dot DotName, branch, ref, path string, max int64) ([]byte, bool, error) {
	return f.n.readFile(ctx, dot, branch, ref, path, max)
}

// Changes lists the paths that differ between commit ref and its parent
// (everything is "added" for a first or pruned commit), by path, at most
// limit of them, and whether there were more.
func (f *Files) Changes(ctx context.Context, dot DotName, branch, ref string, limit int) ([]FileChange, bool, error) {
	return f.n.fileChanges(ctx, dot, branch, ref, limit)
}
