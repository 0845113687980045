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
// FetchCommit rebuilds the stream from the blobs, so a clone lands on
// whatever backend the receiving node runs.
//
// # Layout in the repository
//
// (The implementation documents here the records, refs and tree
// encoding it writes: kinds, names, bodies, and how a commit stays
// invisible until Finish moves a branch ref to it.)
//
// # Writers
//
// Transfers hold a shared repository lock from their first write until
// Close; GC takes the exclusive one, so it never deletes what a running
// push needs. Branch heads move by compare-and-swap on their refs: of
// two writers pushing one branch at once one wins and the other gets a
// divergence or conflict error, as against a node.
package bucketremote
