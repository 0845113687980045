// Package repo is the repository format that dotmesh keeps in a
// bucket.Store: deduplicated blobs (the content-defined chunks of dots),
// named records (commit records, manifests), refs that several writers
// may race on, and locks, all sealed client-side so that the bucket holds
// nothing readable without a key.
//
// # Use
//
// Init makes a repository in an empty store, Open opens one (a wrong
// password is ErrWrongPassword, at once). A writer takes Lock (shared to
// add, exclusive to delete), asks HasBlobs which of its chunks the
// repository lacks (BlobID maps the chunks' BLAKE3 hashes), stores them
// with PutBlob (into packs; PutHashedBlobFrame takes a chunk's hash and
// the zstd frame a chunk store keeps, so nothing is compressed again),
// calls Flush, then writes records (PutRecord:
// commit records, manifests) and moves a ref with SetRef from the version
// GetRef gave. GetBlob, GetBlobs (adjacent blobs of a pack in one ranged
// read) and GetRecord never return what fails its seal or ID: a
// CorruptError names the object. Check verifies every object and every
// pack's header, and blobs (all or a sample of packs) with ReadData;
// Prune removes unused blobs under the exclusive lock. Errors wrap the
// dotmesh sentinels. Unlock held locks before Close.
//
// # Keys
//
// A repository has one random 32-byte master key. Each keys/ object
// holds it sealed under a key derived from a password (a key file's
// bytes count as a password) with Argon2id or scrypt; its parameters and
// salt are stored beside it, so several passwords open one repository.
// From the master key HKDF-SHA256 derives the subkeys: "seal" (the AEAD
// key of every object), "name" (keyed hashes of blob names), "record-mac"
// and "record-enc" (record and ref names), "config" (the config's MAC).
// The primitives (key slots, KDFs, AEADs, HKDF, keyed hashes) are
// package internal/seal's, shared with the dump backend's encrypted store.
//
// # Objects
//
//	name                               kind    what
//	config                             -       JSON: version, id, encrypted, cipher, chunker, config MAC
//	keys/<16 random bytes, hex>        -       JSON: KDF name and parameters, salt, sealed master key
//	packs/<2 hex>/<64 hex>             -       many sealed blobs and their sealed header (below); the name is random
//	index/<64 hex>                     record  which blobs each pack holds, where (below); the name is random
//	data/<2 hex>/<64 hex>              blob    a loose blob (repositories written before packs); the name is its ID
//	records/<kind>/<token>.r           record  a named record of a kind ("commit", "manifest", ...)
//	refs/<token>/v<20-digit version>   ref     one version of a ref (a branch head)
//	locks/<16 random bytes, hex>       lock    JSON: scope, exclusive, time, host, pid, user
//
// A blob's ID is keyed BLAKE3-256 (under the "name" subkey) of the
// BLAKE3-256 hash of its plaintext, the hash the dump backend's chunk
// store already keys chunks by, so a writer holding that hash asks which
// blobs a repository lacks without reading them (BlobID). Names never
// show content hashes. In a repository without encryption the ID is the
// plain BLAKE3-256 hash itself.
//
// Record and ref names are slash-separated segments ("ns/dot/branch").
// A token names one in the store without showing it: per segment, hex of
// a synthetic IV (HMAC-SHA256 under "record-mac" of the kind and the
// name up to that segment, 16 bytes) and the segment encrypted with
// AES-256-CTR under "record-enc" at that IV; segments' tokens are joined
// by slashes. It is deterministic (a name has one token, which
// compare-and-swap needs), authenticated (decoding recomputes the IVs),
// and a prefix of segments has the prefix of tokens, so records and refs
// list by prefix ("all commits of ns/dot"); the listing shows how names
// nest, not what they are. Without encryption a segment's token is its
// hex. Tokens are hex, so the ".r" and "v" leaves never collide with a
// folder (a directory store cannot keep "a" and "a/b" both).
//
// Every object but config, keys/ and packs/ (whose blobs and header
// each have it) has this layout:
//
//	sealed: "DMR" | version 0x01 | kind | 0x01 | nonce | AEAD(encoding | body)
//	plain:  "DMR" | version 0x01 | kind | 0x00 | encoding | body | SHA-256(header | name | encoding | body)
//
// kind is 1 blob, 2 record, 3 ref, 4 lock. The AEAD is
// XChaCha20-Poly1305 (24-byte nonce) or AES-256-GCM (12-byte nonce), as
// the config says; its associated data is the 6-byte header and the
// object's name, so an object renamed, swapped for another or moved to
// another kind fails to open, as does a changed or truncated one. The
// plain layout's checksum covers the same. encoding is 0 raw or 1 zstd;
// a blob is also checked against its ID after opening. A ref's body
// starts with 0 (a value follows) or 1 (deleted).
//
// Objects are small by design: blobs and records hold at most
// MaxObjectSize bytes (a chunk is at most 4 MiB; big things are chunked),
// so each is sealed in one piece and memory stays bounded by a few
// objects in flight.
//
// # Packs and the index
//
// Blobs are stored many to an object, as restic does: an S3 server's
// cost is per object, and a clone reads a file's chunks in few requests.
// A pack is
//
//	blob | blob | ... | header | uint32 LE length of the header | "DMPK"
//
// Each blob in it is sealed on its own exactly as a loose blob would be
// (kind blob, bound to the name data/<2 hex>/<ID>), so a ranged read
// opens one blob and checks it against its ID. The header is a record
// sealed under the name "<pack object>#header" (bound to its pack):
// version 1, a uvarint count, then per blob its ID (32 bytes), offset and
// stored length (uvarints); the blobs tile the pack from byte 0 to the
// header, so a pack alone rebuilds its part of the index. A pack stays
// under PackSize (DefaultPackSize, under bucket/s3's PartSize: one PUT),
// unless one blob is bigger; a writer spools it to an unlinked temporary
// file and holds at most PacksInFlight at once, so its heap stays small.
//
// An index object is a record: version 1, then per pack its ID and the
// same entries as its header. A writer stores a pack, then an index
// object naming it (after every few packs, and at Flush); a blob is
// present (HasBlobs) only once both are stored, so a writer killed
// between leaves a pack no index names: garbage that no reader sees,
// whose blobs the next run stores again, and that Prune removes. A
// Repo reads all index objects (and lists data/ for loose blobs) on
// first use and after each Lock. Repositories written before packs keep
// their loose blobs, read and pruned as before; new blobs go into packs
// (the format version stays 1: packs and index objects are new names).
//
// Prune keeps the blobs a caller says are used: packs holding none go,
// packs whose unused bytes exceed MaxUnused (DefaultMaxUnused) of them
// are repacked. Its steps keep every used blob reachable: new packs, then
// index objects naming everything that stays, then the old index objects
// go, then the old packs; a crash leaves duplicates or garbage, never a
// missing blob.
//
// # Writers
//
// Blobs are immutable and written with Put (the same name always holds
// the same plaintext). A ref is a list of versions: a swap from version
// n checks that n is the newest, then writes n+1 with Store.Create,
// which exactly one writer wins; the others get dotmesh.ErrConflict.
// Versions are removed only by CompactRefs under the exclusive lock, so
// a version number is never created twice. On stores without
// conditional writes the swap runs under an exclusive "refs" lock. Locks follow restic: an object
// per holder, refreshed while held, stale after a while without refresh;
// shared locks for writers that only add (push), an exclusive one for
// what deletes (gc). The set of blobs a Repo knows (its index) is
// reloaded when a lock is taken, so a blob skipped as present cannot be
// deleted under a lock holder.
//
// The format is versioned: the config's version and every object's
// version byte. A reader refuses versions it does not know.
package repo
