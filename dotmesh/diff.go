package dotmesh

import (
	"context"
	"io/fs"
)

// Changes compares states of a dot: two commits, or a commit and the
// working state, down to files, text lines and, for database subdots of
// backends that keep dumps (SourceDiffer), schema and rows. The CLI
// (`dm diff`, `dm status`, `dm show`), the HTTP API and the web UI all
// ask it, so they give the same answer on every backend.
//
// Trees are compared from the backend's records where it has them
// (TreeReader: the dump manifests, so unchanged files are never read),
// from read-only commit directories (CommitViewer), or else from scratch
// branches made from the commits (kept for the next diff, see Files); the
// working state is read where it is. Between a commit and its descendant,
// or a commit and the working state descending from it, on an
// InodeKeeper (zfs, btrfs), files with the same inode and ctime on both
// sides are not read; the others are read several at a time.

// Change kinds of FileDiff (FileChange uses the first three).
const (
	// ChangeTypeChanged is a path whose kind changed (a file replaced by
	// a symlink, a directory by a file...).
	ChangeTypeChanged = "type_changed"
)

// DiffOptions selects what Changes.Diff compares and how much it says.
type DiffOptions struct {
	// Branch is the branch whose HEAD, relative refs and working state
	// are meant; empty for the dot's current branch.
	Branch string
	// From is the old side: any ref (HEAD, a branch or tag name, a commit
	// id or prefix, with ^ and ~N); empty means HEAD.
	From string
	// To is the new side: a ref, or empty for the working state of Branch.
	To string
	// Parent compares To (a ref; From must be empty) with its parent, or
	// with an empty tree when it has none here (a first commit, or one
	// whose parent gc removed: Commit.Pruned), so everything in it shows
	// as added, as git show of a root commit. For `dm show`.
	Parent bool
	// Paths limits the comparison to these subdots or tree paths
	// (slash-separated, as in FileEntry.Path: "db", "web/index.html");
	// empty compares everything.
	Paths []string
	// Content adds unified diffs of text files (FileDiff.Patch).
	Content bool
	// Context is the number of unchanged lines around each change in a
	// patch; 0 means 3. Negative is invalid.
	Context int
	// Rows adds the schema and row changes of database subdots.
	Rows bool
	// MaxRows bounds the rows listed per table (the counts are always
	// complete); 0 means DefaultMaxRows.
	MaxRows int
	// MaxFiles bounds the paths listed (the stat counts are always
	// complete); 0 means DefaultMaxFiles.
	MaxFiles int
	// MaxPatchBytes bounds the patch text kept per file; 0 means
	// DefaultMaxPatchBytes.
	MaxPatchBytes int
}

// Defaults of DiffOptions.
const (
	DefaultMaxRows       = 20
	DefaultMaxFiles      = 10000
	DefaultMaxPatchBytes = 1 << 20
)

// DiffSide names one side of a Diff.
type DiffSide struct {
	// Ref is the ref as given (or "HEAD"); empty for the working state.
	Ref string `json:"ref,omitempty"`
	// Commit is the commit it resolved to; empty for the working state.
	Commit CommitID `json:"commit,omitempty"`
	// Branch is the branch of a working state.
	Branch string `json:"branch,omitempty"`
}

// Diff is what changed from one state of a dot to another.
type Diff struct {
	Dot  DotName  `json:"dot"`
	From DiffSide `json:"from"`
	To   DiffSide `json:"to"`
	// Files lists the changed paths (directories, regular files and
	// symlinks) in path order, at most MaxFiles of them. The dump files
	// of database subdots are not listed here but in Databases.
	Files []FileDiff `json:"files"`
	// FilesTruncated says Files stops at MaxFiles.
	FilesTruncated bool `json:"files_truncated,omitempty"`
	// Databases lists the database subdots that changed, by subdot.
	Databases []DatabaseDiff `json:"databases,omitempty"`
	// Stat sums up every change, also those beyond the listed ones.
	Stat DiffStat `json:"stat"`
}

// DiffStat sums up a Diff.
type DiffStat struct {
	Added        int   `json:"added"`
	Removed      int   `json:"removed"`
	Modified     int   `json:"modified"`
	TypeChanged  int   `json:"type_changed"`
	BytesAdded   int64 `json:"bytes_added"`   // sizes of added files, and growth of modified ones
	BytesRemoved int64 `json:"bytes_removed"` // sizes of removed files, and shrinkage of modified ones
	// Insertions and Deletions count text lines, with DiffOptions.Content.
	Insertions int `json:"insertions"`
	Deletions  int `json:"deletions"`
	// Databases counts changed database subdots.
	Databases int `json:"databases"`
}

// FileDiff is one changed path.
type FileDiff struct {
	Path      string      `json:"path"`
	Kind      string      `json:"kind"` // ChangeAdded, ChangeRemoved, ChangeModified, ChangeTypeChanged
	OldSize   int64       `json:"old_size,omitempty"`
	NewSize   int64       `json:"new_size,omitempty"`
	OldMode   fs.FileMode `json:"old_mode,omitempty"`
	NewMode   fs.FileMode `json:"new_mode,omitempty"`
	OldTarget string      `json:"old_target,omitempty"` // symlinks
	NewTarget string      `json:"new_target,omitempty"`
	// Binary is set, with DiffOptions.Content, for regular files that
	// are not text (a NUL byte or invalid UTF-8 in their first 8 KiB);
	// they get no patch. Without Content no file is read, so it is unset.
	Binary bool `json:"binary,omitempty"`
	// Insertions and Deletions count the text lines of the patch.
	Insertions int `json:"insertions,omitempty"`
	Deletions  int `json:"deletions,omitempty"`
	// Patch is the unified diff of a text file (with --- and +++ lines
	// naming a/PATH and b/PATH), with DiffOptions.Content.
	Patch string `json:"patch,omitempty"`
	// PatchTruncated says Patch stops at MaxPatchBytes.
	PatchTruncated bool `json:"patch_truncated,omitempty"`
}

// DatabaseDiff is what changed in one database subdot.
type DatabaseDiff struct {
	Subdot string `json:"subdot"`
	// Kind is the source kind: "postgresql", "mysql", "sqlite", "redis".
	Kind string `json:"kind"`
	// Changed says whether the database differs at all; the rest is
	// filled with DiffOptions.Rows.
	Changed bool `json:"changed"`
	// Schema lists changed tables, columns and other objects, before rows.
	Schema []SchemaChange `json:"schema,omitempty"`
	// Tables lists, by table name, the tables whose rows changed.
	Tables []TableDiff `json:"tables,omitempty"`
}

// Schema change kinds and row change kinds.
const (
	SchemaAdded   = "added"
	SchemaDropped = "dropped"
	SchemaChanged = "changed"

	RowInserted = "inserted"
	RowDeleted  = "deleted"
	RowUpdated  = "updated"
)

// SchemaChange is one added, dropped or changed schema object.
type SchemaChange struct {
	Kind string `json:"kind"` // SchemaAdded, SchemaDropped, SchemaChanged
	// Object is "table", "column", "index", "constraint", "view",
	// "sequence", "function", "trigger", "type" or another kind the
	// engine has.
	Object string `json:"object"`
	Table  string `json:"table,omitempty"` // the table of a column, index, constraint or trigger
	Name   string `json:"name"`
	Old    string `json:"old,omitempty"` // the definition before, as the dump states it
	New    string `json:"new,omitempty"`
}

// TableDiff is the row changes of one table (a Redis database for Redis:
// "db0", "db1", ... with Key ["key"]).
type TableDiff struct {
	Table string `json:"table"`
	// Columns names the values of RowChange.Old and New.
	Columns []string `json:"columns,omitempty"`
	// Key names the primary key columns; empty when the table has none
	// and was compared as a multiset of rows (then updates show as a
	// delete and an insert).
	Key      []string `json:"key,omitempty"`
	Inserted int64    `json:"inserted"`
	Deleted  int64    `json:"deleted"`
	Updated  int64    `json:"updated"`
	// Rows lists at most MaxRows changes, by key (by value without one).
	Rows []RowChange `json:"rows,omitempty"`
	// RowsTruncated says Rows stops at MaxRows.
	RowsTruncated bool `json:"rows_truncated,omitempty"`
}

// RowChange is one inserted, deleted or updated row. Values are SQL
// literals as the engine's dump writes them ('text', 42, NULL), a
// Redis value as its type and contents.
type RowChange struct {
	Kind string   `json:"kind"` // RowInserted, RowDeleted, RowUpdated
	Key  []string `json:"key,omitempty"`
	Old  []string `json:"old,omitempty"` // deleted and updated rows
	New  []string `json:"new,omitempty"` // inserted and updated rows
	// Changed names the columns an update changed.
	Changed []string `json:"changed,omitempty"`
}

// StatusOptions selects what Changes.Status says.
type StatusOptions struct {
	// Branch is the branch to describe; empty for the current one.
	Branch string
	// Rows counts changed rows per table of database subdots (which
	// dumps each database: slower).
	Rows bool
}

// Status is what the working state of a branch has that its head lacks.
type Status struct {
	Dot    DotName  `json:"dot"`
	Branch string   `json:"branch"`
	Head   CommitID `json:"head,omitempty"` // empty before the first commit
	// Clean is true when nothing differs from the head.
	Clean bool `json:"clean"`
	// Subdots lists every subdot of the working state or the head, by name.
	Subdots []SubdotStatus `json:"subdots"`
}

// SubdotStatus is the state of one subdot relative to the head.
type SubdotStatus struct {
	Subdot string `json:"subdot"`
	// Kind is "files", or the source kind of a database subdot.
	Kind string `json:"kind"`
	// Changed says whether anything in the subdot differs from the head.
	Changed bool `json:"changed"`
	// Files lists its changed paths (no patches).
	Files []FileDiff `json:"files,omitempty"`
	// Database describes a database subdot; with StatusOptions.Rows its
	// Tables carry the counts (no rows listed).
	Database *DatabaseDiff `json:"database,omitempty"`
}

// Changes is a handle on comparisons of a dot's states.
type Changes struct{ n *Node }

// Changes returns the node's comparer of states.
func (n *Node) Changes() *Changes { return &Changes{n: n} }

// Diff compares two states of dot (see DiffOptions). ErrNotFound for a
// missing dot, branch, ref or path; ErrInvalidArgument for bad options.
func (c *Changes) Diff(ctx context.Context, dot DotName, opts DiffOptions) (*Diff, error) {
	return c.n.diff(ctx, dot, opts)
}

// Status describes the working state of a branch against its head, per
// subdot.
func (c *Changes) Status(ctx context.Context, dot DotName, opts StatusOptions) (*Status, error) {
	return c.n.workingStatus(ctx, dot, opts)
}
