// Package bucketremote makes an object-storage bucket a dotmesh remote:
// a Remote is a dotmesh.Transport over a bucket/repo repository, so
// Node.Push, Pull and Clone move any backend's dot to and from a bucket
// as they do to another node, and its maintenance methods (List, Log, GC,
// Verify) answer for what the bucket holds.
//
// A dot travels in the backend-neutral stream (transport/neutral): a
// Remote's State names the backend "bucket", so the engine always picks
// FormatNeutral. SendCommit cuts every file with the repository's chunker
// (the dump backend's content-defined chunks, internal/cdc) and stores
// each chunk the repository lacks as a blob, so a bucket deduplicates
// across commits, dots and backends, and a 1% change uploads about 1%.
// From a files-backend node in this process (a push) the file chunks
// come ready-made instead (offer.go): the dump backend offers each
// file's chunks, cut with the same chunker, and each chunk with its
// checked zstd frame, which the bucket seals as it is; such a file's
// bytes are skipped in the stream, not cut, hashed or compressed again.
// FetchCommit rebuilds the stream from the blobs, so a clone lands on
// whatever backend the receiving node runs.
//
// State sets AcceptsNeutralBase: a push of a commit whose base the
// bucket holds comes as a neutral delta stream (delta.go), merged into
// the base's stored tree so that only changed files are chunked; asked
// with a base, FetchCommit sends a delta computed from the two stored
// trees' chunk lists (no blob of an unchanged file read).
//
// # Layout in the repository
//
// Names are repo record and ref names (the repository hides them in
// the bucket); <ns>/<dot> is the dot's namespace and name (format.go):
//
//	record commit <ns>/<dot>/<commit id>   JSON CommitRecord: the commit as sent, its tree's blobs, counts
//	ref <ns>/<dot>/b/<branch>               JSON BranchRef: the head, when created and moved
//	ref <ns>/<dot>/tags                     JSON TagsRef: all tags of the dot
//	blobs                                   file chunks (the repository's chunker) and tree chunks, in packs
//
// A commit's tree is one stream of entries in the neutral stream's order
// (kind, path sharing its prefix with the previous one, mode, mtime; a
// file's size and chunks as BLAKE3-256 hash and length; a symlink's
// target), versioned ("DMT" 1), ended by the entry count; see
// TreeEncoder. The stream is cut into blobs with the repository's
// chunker, so an unchanged part of a tree deduplicates across commits.
//
// SendCommit stores the file chunks, then the tree's blobs, flushes
// their packs and index (repo.Flush), and only once the neutral stream's
// trailer checked out writes the commit record: a cut or corrupt stream
// leaves blobs (flushed, so the next attempt skips them) but no commit.
// FetchCommit reads chunks in batches (repo.GetBlobs) that end where the
// chunks move to another pack (4 to 20 MiB), so chunks stored side by
// side come in one ranged read, a whole pack for a tree stored in order,
// and reads up to 48 MiB of chunks ahead of the stream's writer (two or
// three batches under way while the tree is written). GC removes unused
// blobs with repo.Prune (packs dropped or repacked). A commit record is not yet part of anything: State lists
// it in Have (a re-run skips it) but a branch shows it only once
// Finish moved the branch's ref to it (compare-and-swap from the
// version read). Records and refs are JSON with a version field "v";
// every decoder refuses what it does not know. The repository takes
// names of at most repo.MaxRecordName bytes, so a namespace, dot and
// branch of 64 characters each do not fit together: such a transfer is
// refused with ErrInvalidName before anything is written.
//
// # Writers
//
// Transfers hold a shared repository lock from their first write until
// Close (so close a Remote once its transfer is done: gc is refused
// while it is held); GC takes the exclusive one, so it never deletes
// what a running push needs. A lock lost meanwhile (removed as stale)
// fails the transfer's later writes. Branch heads move by compare-and-swap on their refs: of
// two writers pushing one branch at once one wins and the other gets a
// divergence or conflict error, as against a node.
package bucketremote
