package dotmesh

import (
	"context"
	"io"
)

// StorageBackend keeps the data of dots: one writable working state per
// branch, and immutable commits of it.
//
// Lifecycle of a branch's storage, driven by the Node:
//
//	CreateBranch(b, nil)        empty working state (a dot's first branch)
//	CreateBranch(b, &c)         working state equal to commit c, which may
//	                            live on another branch of the same dot
//	SubdotPath(b, s)            where a frontend mounts subdot s; created on
//	                            first use. RootSubdot is the whole tree.
//	Commit(c)                   atomic snapshot of every subdot of c.Branch
//	Rollback(b, c)              working state := commit c (discarding
//	                            uncommitted changes); c is an ancestor of the
//	                            branch head and may live on another branch
//	DeleteCommit(c)             forget a commit nothing refers to any more
//	DeleteBranch(b)             remove the working state and the branch's
//	                            own commits
//
// The Node keeps all metadata (names, parents, messages) in the ClusterStore
// (and copies of it with backends that are RecordKeepers, for a rebuild)
// and serialises operations on one branch; a backend only stores data, keyed
// by dot id, branch name and commit id, which it must treat as opaque but
// validated path components (see BranchRef.Validate).
//
// Crash safety: each mutating call but Rollback either completes or leaves
// the previous state, so after a SIGKILL the Node can reconcile what
// Branches and Commits report with the store. In particular a commit is
// never listed by Commits until all of its data is durable. Rollback may
// be cut short in any state but must then succeed when repeated: the Node
// journals restores and repeats an interrupted one when it starts
// (restore.go).
//
// Errors wrap the sentinels in this package (ErrNotFound, ErrAlreadyExists,
// ErrUnavailable, ErrCorrupt, ...), classified by the backend itself.
type StorageBackend interface {
	// Name is the key the backend is registered under ("dump", "zfs"...);
	// a dot records it at creation.
	Name() string

	// CreateBranch makes the working state of b: empty when from is nil,
	// otherwise a writable copy of commit *from. ErrAlreadyExists if b exists.
	CreateBranch(ctx context.Context, b BranchRef, from *CommitRef) error
	// DeleteBranch removes b's working state and the commits stored on b.
	// Deleting a missing branch is not an error.
	DeleteBranch(ctx context.Context, b BranchRef) error
	// Branches lists every branch whose storage exists, for reconciliation.
	Branches(ctx context.Context) ([]BranchRef, error)

	// SubdotPath returns the host path of subdot's working directory in b,
	// creating the directory if needed. RootSubdot returns the whole tree.
	SubdotPath(ctx context.Context, b BranchRef, subdot string) (string, error)
	// Subdots lists the subdots present in b's working state.
	Subdots(ctx context.Context, b BranchRef) ([]string, error)
	// Usage reports size and dirtiness of b relative to head (nil before
	// the first commit).
	Usage(ctx context.Context, b BranchRef, head *CommitRef) (Usage, error)

	// Commit snapshots every subdot of c.Branch atomically as commit c.ID
	// and returns backend facts to record with it (may be nil). Everything
	// in the working tree is committed, also files outside any subdot
	// directory. ErrAlreadyExists if the id is taken.
	Commit(ctx context.Context, c CommitRef) (map[string]string, error)
	// Commits lists the commits whose data is stored on b; ErrNotFound if
	// b has no storage at all.
	Commits(ctx context.Context, b BranchRef) ([]CommitID, error)
	// Rollback replaces b's working state with commit c. A backend may drop
	// b's commits newer than c on the way (as `zfs rollback -r` does), but
	// never one that another branch was made from: the Node deletes what is
	// unreachable itself, and tolerates commits that are already gone.
	Rollback(ctx context.Context, b BranchRef, c CommitRef) error
	// DeleteCommit removes a commit's data. The Node only asks for commits
	// that no branch head, ancestry or origin refers to.
	DeleteCommit(ctx context.Context, c CommitRef) error

	// Send writes commit target as a stream: complete, or incremental from
	// base (a commit the receiver already holds) when base is not nil.
	Send(ctx context.Context, target CommitRef, base *CommitRef, w io.Writer) error
	// Receive reads a stream made by Send of the same backend kind and
	// stores it as commit target on target.Branch, creating storage for
	// that branch's commits if needed. It makes no working state: the Node
	// calls CreateBranch(b, &target) or Rollback for that. Nothing becomes
	// visible unless the whole stream arrived intact (ErrCorrupt otherwise).
	Receive(ctx context.Context, target CommitRef, base *CommitRef, r io.Reader) error

	// Close releases resources; the backend is not used afterwards.
	Close() error
}

// GarbageCollector is an optional capability: backends with a shared
// content store reclaim space that no commit or working state uses.
type GarbageCollector interface {
	CollectGarbage(ctx context.Context) (GCStats, error)
}

// GCStats reports what a garbage collection removed.
type GCStats struct {
	ObjectsRemoved int64 `json:"objects_removed"`
	BytesRemoved   int64 `json:"bytes_removed"`
}

// ReceiveDiscarder is an optional capability of backends that keep what
// an interrupted Receive stored outside any commit, for a re-run to
// resume (the dump backend's object pins): DiscardReceives lets go of
// what is kept for receives onto b, so that garbage collection frees it.
// The Node calls it when an incoming transfer is aborted or expires.
type ReceiveDiscarder interface {
	DiscardReceives(ctx context.Context, b BranchRef) error
}

// Checker is an optional capability: verify every stored object's integrity.
type Checker interface {
	Check(ctx context.Context) error
}

// ObjectNegotiator is an optional capability of backends whose native
// stream is a set of content-addressed objects (dump): before a commit is
// sent, the sender lists the objects its stream would carry, the receiver
// says which of them it holds already, and the stream leaves those out
// ("chunk have/want"). That makes a re-run after an interruption send
// only what did not arrive, and an incremental push send only the chunks
// the receiver lacks, even without a common base commit.
//
// Backends without it (zfs, btrfs) are sent whole streams, unchanged.
type ObjectNegotiator interface {
	// StreamObjects lists, in stream order and without duplicates, the
	// objects Send(target, base) would write.
	StreamObjects(ctx context.Context, target CommitRef, base *CommitRef) ([]ObjectID, error)
	// HaveObjects reports, for each of ids, whether the backend holds
	// that object, and keeps the held ones from garbage collection until
	// target has been received or the reservation expires: a stream that
	// leaves them out must still find them. ids are valid (ValidateObjectID)
	// and at most MaxObjectBatch.
	HaveObjects(ctx context.Context, target CommitRef, ids []ObjectID) ([]bool, error)
	// SendWithout is Send leaving out the objects in have (the receiver
	// holds them). Receive of the same backend accepts such a stream; it
	// still checks that every object the commit needs is present.
	SendWithout(ctx context.Context, target CommitRef, base *CommitRef, have []ObjectID, w io.Writer) error
}

// TreeReader is an optional capability of backends that know a commit's
// tree from their own records (dump: the commit's manifest), so that
// Node.Files answers without restoring anything. For the others the Node
// reads a scratch branch made from the commit (a clone or snapshot).
type TreeReader interface {
	// CommitTree returns every entry of commit c's tree (directories,
	// regular files, symlinks) in any order. ErrNotFound if c has no data
	// here.
	CommitTree(ctx context.Context, c CommitRef) ([]TreeEntry, error)
	// ReadCommitFile returns the first max bytes of the regular file at
	// path (clean, relative, as CommitTree reports it) of commit c, and
	// whether the file is longer. ErrNotFound for a missing path,
	// ErrInvalidArgument for a directory or symlink.
	ReadCommitFile(ctx context.Context, c CommitRef, path string, max int64) ([]byte, bool, error)
}

// TreeFileOpener is an optional capability of TreeReaders that stream a
// commit's file rather than hand it out whole: a neutral stream of a
// large file then takes bounded memory.
type TreeFileOpener interface {
	// OpenCommitFile opens the regular file at path of commit c, with
	// the errors of ReadCommitFile. The caller closes it.
	OpenCommitFile(ctx context.Context, c CommitRef, path string) (io.ReadCloser, error)
}

// TreeEntry is one entry of a commit's tree as a TreeReader reports it.
type TreeEntry struct {
	FileEntry
	// Content identifies a regular file's bytes: two entries with the
	// same non-empty Content hold the same bytes, and different Content
	// means different bytes. Empty when the backend cannot tell.
	Content string
}

// WorkingStateAdopter is an optional capability of backends that can
// hand one branch's working state to another without writing it again
// (dump: a rename). When a transfer makes a branch at the commit it has
// just received, the working state of the receiving storage, from which
// that commit was made, becomes the branch's instead of a second copy
// restored from the commit. zfs and btrfs have no need of it: their
// CreateBranch from a commit is a clone or snapshot already.
type WorkingStateAdopter interface {
	// AdoptWorkingState makes the working state of from, unchanged since
	// commit c was made from it (or it was restored from c), the working
	// state of to, which has none; from is left with no working state,
	// its commits stay. ErrAlreadyExists if to has a working state;
	// ErrConflict, changing nothing, if from has none or the backend
	// cannot tell that it equals c (the caller then uses CreateBranch).
	// Crash safety as CreateBranch's: to has no working state or all of
	// it, from keeps its own until to has it.
	AdoptWorkingState(ctx context.Context, from, to BranchRef, c CommitRef) error
}

// CommitViewer is an optional capability of backends whose commits are
// readable directories already (btrfs read-only snapshots): Node.Files
// reads a commit there rather than making a scratch branch of it.
type CommitViewer interface {
	// CommitDir returns the read-only directory holding commit c's whole
	// tree, as SubdotPath(RootSubdot) of a branch made from c would. It
	// stays valid until DeleteCommit(c). ErrNotFound if c has no data here.
	CommitDir(ctx context.Context, c CommitRef) (string, error)
}

// InodeKeeper is an optional capability of backends whose commits of one
// dot are snapshots of one filesystem history (zfs, btrfs): a file keeps
// its inode number through snapshots and clones, and every change of its
// data or metadata sets its ctime, which users cannot set. Node.Diff then
// takes equal (inode, ctime, size, mtime, mode) in a commit and its
// descendant as proof that a file is unchanged and reads no bytes of it.
type InodeKeeper interface {
	// KeepsInodes reports whether the commits' trees keep inode numbers
	// and ctimes as above, as read through CommitDir or a scratch branch.
	KeepsInodes() bool
}

// ChangeCommitter is an optional capability of backends that tell
// whether anything changed since head more cheaply as part of a commit
// than the DirtyChecker does (zfs: the increment of the new snapshot is
// inspected, where Dirty needs a snapshot of its own; btrfs: generations
// only, without estimating bytes). CommitIfChanged commits c as Commit
// does, unless its data would equal head's: then it leaves no commit and
// reports changed false, and the Node refuses the empty commit.
type ChangeCommitter interface {
	CommitIfChanged(ctx context.Context, c CommitRef, head CommitRef) (info map[string]string, changed bool, err error)
}

// CommitJournal is an optional capability of backends that make a small
// record durable with the next commit's data (btrfs: an xattr set before
// the snapshot, whose ioctl commits the transaction it joined). A
// standalone Node journals a commit's registry records there and answers
// before its registry transaction (journal.go).
type CommitJournal interface {
	// JournalCommit stores rec for commit c, durable no later than the
	// data of c that the next Commit or CommitIfChanged of c makes. With
	// head, c counts only if its data differs from head's (the commit is
	// a CommitIfChanged): Journaled does not report as stored a c that a
	// crash left before its unchanged data was deleted. An error stores
	// nothing, and the Node records the commit as usual. Called again
	// for a c whose data is made, it replaces the record, durable with
	// the backend's next transaction (btrfs: its next commit of the file
	// system's transaction); the Node does so after a conflict.
	JournalCommit(ctx context.Context, c CommitRef, head *CommitRef, rec []byte) error
	// Journaled lists the records stored and not dropped.
	Journaled(ctx context.Context) ([]JournaledCommit, error)
	// DropJournal removes c's record, without a sync; a missing one is
	// no error. A record whose removal was not durable yet (btrfs) may
	// be listed again: the Node replays a record only while the branch
	// is at the revision it names.
	DropJournal(ctx context.Context, c CommitRef) error
}

// JournaledCommit is one record a CommitJournal holds.
type JournaledCommit struct {
	Commit CommitRef
	Record []byte
	// Stored says the commit's data is stored (and, given a head, differs
	// from head's); then Info holds the facts Commit returned for it.
	Stored bool
	Info   map[string]string
}

// SourceDiffer is an optional capability of backends whose database
// subdots hold dumps made by sources (dump): Node.Changes reads their
// schema and row changes through it. A subdot is a database subdot of a
// commit when a source made its dump; of a working state when a source
// is bound to it.
type SourceDiffer interface {
	// DatabaseSubdots maps the database subdots of commit c, or of b's
	// working state when c is nil, to their source kinds ("postgresql",
	// "mysql", "sqlite", "redis").
	DatabaseSubdots(ctx context.Context, b BranchRef, c *CommitRef) (map[string]string, error)
	// SourceChanged says whether the live database bound to subdot of b
	// differs from its dump in commit head: by the source's fingerprint
	// where it vouches, else by dumping and comparing.
	SourceChanged(ctx context.Context, b BranchRef, subdot string, head CommitRef) (bool, error)
	// DiffDatabase compares the database of subdot on two sides. With
	// opts.Rows false only Changed (and Kind) are filled, cheaply; with
	// it, schema changes, per-table counts and up to opts.MaxRows rows
	// per table.
	DiffDatabase(ctx context.Context, subdot string, from, to DatabaseSide, opts RowDiffOptions) (*DatabaseDiff, error)
}

// DatabaseSide is one side of SourceDiffer.DiffDatabase: the dump in a
// commit, the live database bound to the subdot of a branch (dumped to
// scratch space for the comparison), or, with both nil, no database at
// all (every row inserted or deleted).
type DatabaseSide struct {
	Commit *CommitRef
	Live   *BranchRef
}

// RowDiffOptions tunes SourceDiffer.DiffDatabase.
type RowDiffOptions struct {
	Rows bool
	// MaxRows is the rows listed per table with Rows; 0 lists none (the
	// counts only, as Changes.Status asks).
	MaxRows int
}

// ChunkStager is an optional capability of backends that keep files as
// content-defined chunks (dump). In a receive whose sender runs in this
// process and holds the files as chunks already checked against their
// hashes (a bucket), the sender offers each chunk, compressed when it
// has it so (OfferChunk), and each file's list of chunks (OfferFile).
// The backend stores the chunks as they come, and its commit of the
// received tree takes a file's chunks from the list instead of reading,
// cutting, hashing and compressing the file again.
type ChunkStager interface {
	// StageChunks starts taking chunks for commit c, about to be
	// received onto c's branch and committed there.
	StageChunks(ctx context.Context, c CommitRef) (ChunkSink, error)
}

// ChunkSink takes the chunks of one receive (ChunkStager). Crash safety:
// what Flush stored is kept for the commit (pinned) until Release, or
// until the pin expires when the process dies first.
type ChunkSink interface {
	// PutChunk takes the chunk data whose BLAKE3-256 hash is h, and
	// frame, the zstd frame that the caller has seen decompress to data,
	// or nil. Safe for concurrent use; a chunk the backend has is
	// ignored. Neither slice is kept after the call.
	PutChunk(h [32]byte, data, frame []byte) error
	// PutFile takes the chunks, in order, whose bytes the stream carries
	// for the file at path (slash-separated, from the received tree's
	// root), size bytes in all; chunks is not kept after the call.
	PutFile(path string, size int64, chunks []FileChunk) error
	// Flush stores what the sink took; called once, after the last
	// PutChunk and before the commit.
	Flush() error
	// Release ends the sink (after the commit, or instead of it).
	Release()
}

// FileChunk is one chunk of a file offered to a ChunkSink: the BLAKE3-256
// hash and the length of its bytes.
type FileChunk struct {
	Hash [32]byte
	Size uint32
}
