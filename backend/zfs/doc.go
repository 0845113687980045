// Package zfs is the dotmesh StorageBackend on ZFS: a branch is a
// filesystem, a commit is a snapshot of it, a new branch is a clone, and
// transfers are zfs send/receive streams. It works on OpenZFS and on
// zfs-fuse (pool version 23), which the tests run against, using only the
// command forms both accept.
//
// # Pool
//
// Open uses Options.Pool (default "pool"). When it is not imported, the
// file DataDir/dotmesh_data is imported (`zpool import -d DataDir`), or
// created as a sparse file of PoolSize (default 10 GiB) with a pool on it,
// as the original dotmesh did. Missing ZFS tools, or ZFS not running
// ("zfs-fuse is not running: start it with `zfs-fuse` or install
// zfs-fuse"), are errors wrapping dotmesh.ErrUnavailable.
//
// # Layout
//
//	<Root>                          default <Pool>/dmfs; mountpoint=<Mountpoint>,
//	                                canmount=off, atime=off (inherited)
//	<Root>/<dot id>                 one container per dot, canmount=off
//	<Root>/<dot id>/<branch>.<gen>  working states of a branch, generation gen
//	<Root>/<dot id>/<branch>.recv-<hex>  a complete stream being received
//	<Root>/records/<dot id>         the dot's kept registry records, as user
//	                                properties (records.go), canmount=off
//	...@<commit id>                 a commit: one snapshot of the filesystem
//	                                that holds every subdot
//
// Each subdot is a directory of the branch's filesystem (RootSubdot is the
// filesystem itself), so one `zfs snapshot` commits all subdots
// atomically. The live generation of a branch (io.dotmesh:state=live; the
// highest if a crash left two) is mounted at Mountpoint/<dot id>/<branch>
// - an explicit mountpoint, so the path SubdotPath returns stays the same
// when a rollback replaces the filesystem. A live generation made from a
// commit (CreateBranch from a commit, or a rollback or receive of a
// working state nobody had mounted) is left unmounted, with mountpoint
// none, until first used (SubdotPath, Usage mount it): a branch that only
// receives transfers is never mounted. Other generations are holders
// (state old, mountpoint=none) kept only for snapshots something still
// needs. Dot ids, branch names and commit ids are validated before they
// become dataset names; SubdotPath only returns the mountpoint or a real
// directory directly inside it.
//
// With zfs-fuse a commit's snapshot, and a direct push's send and
// receive (SendDirect, ReceiveDirect), go through the daemon's command
// socket (package fusesock, Options.FuseSocket) instead of `zfs
// snapshot`, `zfs send -i` and `zfs receive -F`: starting the zfs command
// cost more than the snapshot itself (12.9 of 22.4 ms), and a dm commit
// went from 36-38 ms to 18-22 ms, quicker than the raw command. Every
// other command runs as before, and so do these with OpenZFS, a daemon
// that does not answer there (Open checks its layout), or a send from
// another file system's snapshot.
//
// Every commit snapshot is tagged io.dotmesh:branch=<branch> when it is
// made (`zfs snapshot -o`, or the same property through the socket), because zfs promote moves snapshots between a
// dot's filesystems: Commits(b) lists the tagged snapshots wherever they
// are, and commit ids are looked up across the dot. A snapshot received
// onto the branch's own filesystem is left untagged (zfs receive cannot
// set it, and a `zfs set` per commit is a txg sync): an untagged commit
// belongs to its filesystem's owner, and every promote first tags the
// snapshots it moves (tagBeforeMove).
//
// One `zfs get -r` lists a dot (inventory). The listing is reused while
// no zfs command that changes anything it shows has run in the process
// since (counted in exec.go; writing a kept registry record does not
// count), for at most a minute; operations that know what their own
// commands changed patch it (patchInventory, also after a dirty check's
// temporary snapshot), so a transfer's State, receive and Finish share
// one listing. Send plans from the last listing whatever its age, as zfs
// send checks the snapshots itself (see Send).
//
// The registry records kept with the data (records.go) are written
// behind the caller, with zfs-fuse at a quiet moment (no other command,
// listings included, for 1 s; at most 30 s late): on zfs-fuse each is a
// `zfs set` of 50-150 ms under the command lock, which the next commit
// would wait for, and a transfer's receive and Finish keep three. A
// switch of working state that a Rollback leaves to finish behind it (an
// unmounted one's clone, a replaced one's destroy) waits likewise, 100 ms
// without a foreground command, holding the dot: the next operation on
// the dot makes it at once.
//
// # Keeping other branches alive
//
// No operation ever destroys a snapshot with clones or uses -r/-R:
//
//   - Rollback(b, c): when c is the latest snapshot of b's live filesystem,
//     `zfs rollback`. Otherwise c (on b's filesystem or any other) is cloned
//     as the next generation and swapped in; the old filesystem becomes a
//     holder, so later commits and branches cloned from them stay intact.
//     When c is b's own history the new generation is promoted, taking c
//     and everything before it over, so the holder keeps only the later
//     snapshots and vanishes when the Node deletes those.
//   - DeleteCommit uses `zfs destroy -d`: a snapshot another branch was
//     cloned from is only marked (defer_destroy, no longer listed) and ZFS
//     destroys it when the last clone goes. Missing is not an error.
//   - DeleteBranch destroys the branch's commits that way, then the
//     filesystem, or keeps it as a holder while such snapshots remain.
//     Holders without snapshots are destroyed whenever a deletion may have
//     emptied one, and with them their own deferred origins: deleting every
//     branch leaves nothing.
//
// zfs-fuse refuses to rename a filesystem while a clone of it is mounted,
// which is why generations switch by a property change rather than by
// renaming the old working state away.
//
// # Dirty detection
//
// zfs-fuse lacks `written`, `logicalused`, `zfs diff` and `zfs list -p`,
// and space accounting cannot see a same-size overwrite or a chmod (nor
// can a snapshot's `used` when the previous snapshot shares its blocks).
// Usage takes a temporary snapshot (which also syncs, so `referenced` is
// current), reads `zfs send -i <head> <temporary>` and reports dirty as
// soon as the stream has a record other than BEGIN, FREE, FREEOBJECTS and
// END: every change visible through the filesystem (data, size, mode,
// owner, times, links, names, directories) rewrites a dnode and so appears
// as an OBJECT or WRITE record. DirtyBytes is the size of those records:
// changed blocks at record granularity plus metadata, like OpenZFS's
// written@head. The cost is proportional to the uncommitted data. The head
// is always an incremental source of the working state (its latest
// snapshot or its origin) under this package's operations. atime is off,
// so reading does not dirty a branch. Before the first commit, a branch is
// dirty when its tree holds anything but directories.
//
// A commit of a mounted working state first asks the change watcher
// (watch.go, package changewatch): a fanotify mark on the branch's mount,
// armed before the previous commit's snapshot. A write seen since that
// snapshot proves the commit changed something, and the commit is its
// `zfs snapshot` alone, without a listing or a stream; with no event
// (none came, or a chmod, rename or delete, which make none on a mount
// mark, or a write through mmap or a bind mount) the check above runs.
// Rollbacks and unmounts forget what the watcher saw.
//
// A working state that was cloned from a commit unmounted and has not
// been mounted since needs none of that: it is marked
// io.dotmesh:pristine=<commit> at the clone, and everything that can
// change its data (mounting, receiving into it, rolling it back) removes
// the mark first; while marked it is clean relative to that commit. So
// the dirty checks of a transfer onto a branch nobody uses cost no zfs
// command beyond the listing.
//
// # Diff
//
// zfs-fuse has no .zfs/snapshot directory and no `zfs diff`, so the Node
// reads a commit through a scratch clone, which it keeps for the next
// read of that commit: making, mounting and destroying two clones costs
// more than walking and comparing their trees. Clones and snapshots keep
// a file's object number (its inode) and ctime, so between a commit and
// its descendant (or the working state) unchanged files are proven so
// without being read (dotmesh.InodeKeeper). zfs-fuse shows ctimes in
// whole seconds, which the Node's proof allows for. OpenZFS's `zfs diff`
// is not used: with the proof only changed files are read already, and
// it cannot be tested here.
//
// # Send and Receive
//
// Send writes `zfs send [-i base]` inside a framing with a BLAKE3 trailer
// (package framing; the format is in stream.go); when base is not an
// incremental source of the target on this node (not an earlier snapshot
// of its filesystem nor its origin), the stream is complete instead.
// Receive keeps the end of the zfs stream, which holds its END record,
// from zfs until the trailer is verified, so a truncated or altered stream
// never completes a snapshot (ErrCorrupt).
// Streams land directly on the live filesystem when their base is its
// latest snapshot (`zfs receive -F`, which ZFS applies to a hidden clone
// and swaps in at END; started before the stream's first byte arrives, so
// its start overlaps the sender's zfs send starting), else in a staging filesystem (made by zfs receive
// for complete and clone streams; a promoted clone of the base otherwise)
// that is swapped in like a rollback. The received commit becomes the
// branch's working state. (The Node receives into a hidden branch and
// moves the real one with Rollback at Finish.) The Node links the stable
// path of a dot a transfer creates without mounting it
// (dotmesh.TreeLocator), so a branch that only receives stays unmounted
// and pristine: its dirty checks cost nothing and Finish's switch runs
// after return (pending.go). Where it is mounted (someone asked for its
// path), the switch retires the old working state after return too.
//
// # Crash safety
//
// Snapshot, clone, create, promote, property changes and renames are each
// atomic. Multi-step operations order them so that every intermediate
// state is recognisable from names and io.dotmesh:state, and Open repairs
// them (recover.go): unverified receives and unswitched rollbacks are
// undone (dissolve hands back snapshots a promote moved), a switch that
// happened is finished, interrupted deletes are completed, temporary
// snapshots are removed and untagged commits tagged, and a working state
// left unmounted at its path is mounted there again. A rollback of an
// unmounted working state returns once its switch is recorded in a
// journal file (pending.go) and makes it after returning, holding the
// dot's lock; Open makes recorded switches a crash cut short. The Node
// then moves any untouched working state (still marked pristine) that a
// crash left at another commit than its branch's head to the head
// (FollowHead), so a crash between a switch and the Node's registry
// update leaves one consistent state.
//
// # zfs-fuse quirks handled
//
//   - the first destroy or unmount of a dataset can answer "dataset is
//     busy": unmount first, retry briefly (busyRetry);
//   - rename needs the dataset unmounted and does not remount it; it fails
//     while a clone is mounted (see above);
//   - clones are mounted at creation even with canmount=noauto, so staged
//     clones are made with mountpoint=none;
//   - no zvols, no xattrs through FUSE (not needed);
//   - it deadlocks or crashes when several commands that change datasets
//     run at once, so with zfs-fuse they take a lock file in turn
//     (Options.CommandLock, cmdlock.go), also across processes; listings
//     and send/receive streams do not.
//
// Commits report no added_bytes (dotmesh.InfoAddedBytes): zfs-fuse lacks
// `written`, and one more command per commit would double its cost.
// Node.Files reads a commit through a scratch branch, a clone of its
// snapshot, which costs no copy.
//
// # Why not github.com/mistifyio/go-zfs
//
// go-zfs v4 reads datasets with `zfs list -Hp -o ...` including
// `written`, `logicalused` and `usedbydataset`; zfs-fuse has no `-p` for
// list and none of those properties, so GetDataset fails there - and
// every go-zfs call that creates something (CreateFilesystem, Snapshot,
// Clone, Rename, ReceiveSnapshot) ends with GetDataset. What would remain
// (Destroy, Rollback, SendSnapshot, SetProperty) takes no context, returns
// untyped errors and uses a global runner. So this package uses only its
// own small exec layer (exec.go, zfscmd.go): plain functions taking a
// context, arguments that are validated types (dataset, snapshot, prop)
// so nothing can turn into an option or a wrong kind of name, typed errors
// parsed from zfs's stderr (CmdError, ErrBusy, ErrNoDataset...), and only
// `zfs get -Hp -o name,property,value` for reading, which gives exact
// numbers on both implementations.
package zfs
