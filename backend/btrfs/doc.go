// Package btrfs is a dotmesh StorageBackend on btrfs: a branch's working
// state is a subvolume, a commit a read-only snapshot of it, a branch a
// writable snapshot of its origin commit.
//
// # Layout
//
// Under the root (DataDir when it is on btrfs, otherwise the mount point
// DataDir/btrfs of the sparse image DataDir/btrfs.img, made and mounted
// with noatime by Open and unmounted by Close):
//
//	dots/<dot id>/<branch>/live                 working state (subvolume)
//	dots/<dot id>/<branch>/commits/<id>/snap    a commit (read-only snapshot)
//	dots/<dot id>/<branch>/commits/.recv-*/     a receive in progress
//	dots/<dot id>/<branch>/rollback             a rollback in progress
//	records/<dot id>/<key>                      copies of the registry's records
//	                                            (dotmesh.RecordKeeper)
//	trash/                                      being deleted
//	lock                                        one Backend per root; its
//	                                            trusted.dotmesh.commit.<id>
//	                                            xattrs are journaled commits
//	                                            (dotmesh.CommitJournal)
//
// Subdots are directories directly in live; RootSubdot is live itself,
// so one snapshot covers every subdot atomically. Subvolumes a user nests
// inside a working state are not part of its snapshots (btrfs snapshots
// stop at subvolume boundaries).
//
// A commit's read-only snapshot is also where its tree is browsed
// (dotmesh.CommitViewer): nothing is copied. Commits report no
// added_bytes (dotmesh.InfoAddedBytes): without quotas btrfs does not
// count the extents a snapshot does not share. Snapshots keep inode
// numbers and ctimes (dotmesh.InodeKeeper), so a diff of two commits
// reads no unchanged file.
//
// # Crash safety
//
// Every step that makes something visible is one atomic operation: a
// snapshot or subvolume-create ioctl (each a committed transaction), a
// rename, or renameat2(RENAME_EXCHANGE) for a rollback's swap of working
// states. Deletions first rename into the trash. Open removes the trash,
// rollback leftovers and receive staging directories, so after a crash
// every branch is as it was before or after the interrupted call.
//
// A commit's registry records are journaled in an xattr set before its
// snapshot (Backend.JournalCommit): the snapshot ioctl commits the
// transaction the xattr joined, so a standalone Node can answer before
// its registry's own synced transaction and replay the record after a
// crash. JournalCommit replaces the record of a commit it holds (the Node
// journals again at a new registry revision after an outside write).
//
// A commit that must not be empty snapshots first (the ioctl flushes and
// commits the subvolume's writes) and then searches the snapshot for
// items newer than head (Backend.CommitIfChanged): no sync before it, and
// an unchanged snapshot is deleted again. The copies of the registry's
// records are written and renamed behind the answer by one goroutine and
// made durable by one syncfs shortly after (recordfiles.NewSyncBehind),
// not by writes and fsyncs before it: the window that leaves is
// described there.
//
// Only the cgo build has the backend (containerd/btrfs needs cgo); other
// builds get an Open that fails with dotmesh.ErrNotSupported.
package btrfs
