// Package dump is the embedded default dotmesh.StorageBackend: plain
// directories as working state, commits as deduplicated, compressed,
// content-addressed snapshots. It needs no root, no kernel feature and no
// server.
//
// # Names
//
// The backend has two names. Name ("dump") is the key it is registered
// under and that every dot records (in the registry and the backend's
// own records), so it never changes: `dm init`, `dm dot show` and the
// API show it. UserName ("files") is what users call it: `dm serve --backend`,
// `dm cluster init`, the API's CreateDotRequest.Backend and Docker's
// `--opt backend=` accept it for Name (the daemon's alias table), and it
// is the default backend of new dots.
//
// # Layout
//
// Everything lives under the directory given to Open:
//
//	lock                                 flock: one Backend per directory
//	store.key                            an encrypted store's key slots (below)
//	branches/<dot>/<branch>/tree/        the working state; subdot s is
//	                                     tree/s/, the root subdot tree/ itself
//	branches/<dot>/<branch>/commits/<id> commit record (JSON): manifest root
//	                                     hash and counts; written last and
//	                                     durably, so a listed commit is whole
//	branches/<dot>/<branch>/synced       root of the manifest the tree was
//	                                     last made equal to (change cache)
//	store/packs/<id>.pack, <id>.idx      objects shared by all dots, in packs
//	                                     with their indexes (package cas)
//	store/staging/<id>.pack              the pack of a commit in progress
//	records/<dot>/<key>                  copies of the registry's records of
//	                                     the dot (dotmesh.RecordKeeper), for
//	                                     `dm registry rebuild`
//	tmp/                                 trees being built by CreateBranch
//	trash/                               deleted branches being removed
//
// A branch exists when it has a tree or a commits directory: one that
// only received commits is listed by Branches and Commits, and
// CreateBranch gives it a tree.
//
// # Commits
//
// A commit walks the tree in a fixed order and records every file,
// directory and symlink in one manifest, so it is atomic across subdots.
// Regular files are split by a content-defined chunker (package
// internal/cdc: a FastCDC-style gear hash with a fixed table, ~512 KiB
// chunks; see chunk.go), each chunk stored
// once under the BLAKE3 hash of its plaintext, compressed with zstd after
// chunking. Special files (fifos, sockets, devices) are skipped; hard
// links are stored, and restored, as separate files; extended attributes
// are not kept.
//
// Files are not read again when their size, mtime, ctime and inode match
// the branch's synced manifest (the manifest of its last Commit, Rollback
// or CreateBranch, with this node's stat data). AdoptWorkingState renames
// a tree to another branch with its synced manifest, so that a received
// tree becomes a branch's working state without being written again. Commits and restores wait
// for the filesystem clock to tick once before trusting stat data, so that
// a later write can never leave size, mtime and ctime as they were; files
// changed during a commit are "racily clean", keep no cache data and are
// read again next time.
//
// The walk, the reading of files and the manifest's encoding run along
// together a few thousand entries apart (commit.go): the encoding waits
// for its entry count in an unlinked temporary file beyond 4 MiB
// (manifestWriter), and the synced manifest is read piece by piece beside
// the walk (manifestIter), so what grows with the number of files in a
// commit's memory is the object store's index and the batch's state, an
// entry per object each. A restore records its synced manifest the same
// way.
//
// The manifest itself is serialized deterministically and stored through
// the same chunker, so an unchanged tree adds nothing. New objects are
// appended to one pack per commit (its writeback started as it grows, so
// the disk works while chunks are computed), which is fsynced and published
// with its index, and only then is the commit record written: after a
// crash a commit either does not exist or is complete, and no torn object
// is ever found by deduplication. (syncfs would be one call, but it
// flushes every dirty byte of the filesystem, such as a working tree just
// copied in.) Garbage collection rewrites the packs that hold garbage.
// Commit.Info's added_bytes (dotmesh.InfoAddedBytes) is the bytes of new
// objects stored, compressed; an unchanged tree adds 0.
//
// The manifest is also how a commit's tree is browsed (tree.go,
// dotmesh.TreeReader): entries, sizes and modes without restoring, a
// file's bytes from its chunks, and equal chunk lists for equal content.
//
// It also says which subdots of a commit are databases (a directory
// holding only a source's dump file), so the backend compares their
// states (diffsources.go, dotmesh.SourceDiffer): whether they changed, by
// the dumps' chunk lists or a source's fingerprint, and their schema and
// row changes, by package source/rowdiff reading two dumps as streams (a
// commit's from the store, a live database's dumped to scratch space).
//
// # Restores
//
// Rollback and CreateBranch make a tree equal to a commit: contents, modes,
// mtimes, symlinks, empty directories, owners when running as root, and
// deletion of everything else. Unchanged files (by the synced manifest)
// are left alone. A Rollback patches a file the synced manifest vouches
// for in place when less than half of it differs, writing only the chunks
// that differ at their offsets (the synced state is removed, durably,
// before the first such write, so a crash can only leave a dirty tree,
// which the Node's restore journal has restored again at its next start);
// other files are written under a temporary name and renamed.
// CreateBranch builds the tree under a temporary name and renames it into
// place; Rollback works in place so that mounts of the tree stay valid.
//
// # Streams
//
// Send writes a commit as a self-checking stream (see stream.go): header,
// the objects the receiver lacks (all, or those not in the base commit),
// the commit record and a trailer with counts and a BLAKE3 checksum of
// the stream. An incremental stream sends a changed chunk as a delta
// against the base commit's chunks at the same offsets of the same file
// when that is clearly smaller (delta.go); the receiver rebuilds and
// stores it whole, so storage stays chunk-granular and only the wire
// shrinks. Receive verifies each object's hash, stages them, checks the
// trailer and that every object of the commit is present, and only then
// publishes objects and record. Anything else wraps dotmesh.ErrCorrupt
// and leaves no trace.
//
// # Encryption at rest
//
// With Options.Encrypt a new directory becomes an encrypted store:
// store.key (written first, see storekey.go) holds a random master key
// sealed under Argon2id from the password, in key slots (package
// internal/seal, as bucket repositories). The object store seals each
// object and its pack indexes and names records by keyed hashes
// (cas.Sealing); commit records, synced states, transfer pins and source
// settings are sealed files bound to what they are. The working trees,
// the registry's record copies (records/) and streams sent to peers are
// not sealed. A store opens only in the mode it was made in.
//
// # Garbage collection
//
// DeleteCommit only removes the record. CollectGarbage marks every object
// reachable from a commit record or a synced manifest and removes the rest,
// holding every other store user off meanwhile. Check re-reads and
// verifies every object.
package dump
