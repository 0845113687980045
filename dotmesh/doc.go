// Package dotmesh is the dotmesh engine: application state with a git-like
// life. A dot is a named, versioned unit of state made of subdots (one per
// service: a directory, or with the dump backend a live database); a branch
// is a line of commits with its own writable working state; a commit is an
// atomic point-in-time state of every subdot of a branch.
//
// The package knows no concrete storage, store or frontend. A Node
// implements every operation (CreateDot, Commit, Log, CreateBranch,
// Checkout, Reset, Push/Pull/Clone...) on top of three interfaces:
//
//   - StorageBackend keeps the data: working states and commits, keyed by
//     dot id, branch and commit id (backend/zfs, backend/btrfs,
//     backend/dump). Optional capabilities, such as GarbageCollector, are
//     small separate interfaces checked with a type assertion.
//   - ClusterStore keeps all metadata: names, dots, branches, one key per
//     commit, users, API keys, sharing, the audit, mounts (cluster/bbolt for one node, cluster/etcd for
//     many). Its contract is written on the interface and checked by
//     cluster/storetest.
//   - Transport moves commits between nodes for Push, Pull and Clone;
//     the node on its far side answers through Node.TransferPeer.
//
// What is not about dots, branches and commits sits behind small handles
// a Node returns: Mounts (which frontends use which subdots), Sources
// (databases bound to subdots), Cluster (nodes, replication, moving a
// branch's master), Users, APIKeys, Access (roles and sharing), Audit,
// TransferPeer (the receiving side of
// transfers, with the incoming transfers to list or abort) and
// FrontendRecords (records a frontend keeps in the registry, in a
// namespace of its own), and Policies (schedules with a retention grid:
// set and list them, Prune by a grid, and RunDue/Run, the passes that
// commit what is due; the daemon runs Run beside the API).
//
// Crash safety follows one rule: data first, then one registry
// transaction. A node killed in between leaves data the registry does not
// know, which NewNode's reconciliation removes, so every dot is at its old
// state or at the complete new one. Rewriting a working state from a
// commit (reset, a transfer moving a branch) is the exception that cannot
// be undone: it is journalled in the branch record and rolled forward
// by reconciliation (restore.go).
//
// Cluster mode (Options.Cluster): nodes share one ClusterStore. Every node
// replicates every commit in the background; each branch has one master
// node with its working state, and a write on another node moves the
// branch there (Release, then a compare-and-swap of the master), committing
// uncommitted changes on the way. A branch whose master died is moved with
// Cluster.TakeOver. Standalone or clustered is one strategy chosen at
// NewNode (placement.go); the engine never tests for cluster mode. See
// cluster.go, replicate.go and handover.go.
//
// Errors wrap the sentinels in errors.go (ErrNotFound, ErrConflict,
// ErrDirty, ErrUnavailable...) with %w, so callers test them with
// errors.Is and frontends map them to exit codes and HTTP statuses. Where
// a caller can act on what went wrong, the error is typed and carries it
// as data (NotFoundError, DirtyError...; see errors.go): the library's
// messages advise in its own terms, and a frontend words its own advice.
//
// Long operations (commit, checkout, reset, gc, verify, a transfer's
// finish) report their phases and bytes to the function a context
// carries (WithProgress); backends report through StartProgress and
// ReportPhase and never learn who listens. See progress.go.
//
// Built with the dmlight tag (the light dm, which runs no node) the
// package leaves out the engine's neutral transfers and text diffs and
// so their dependencies' package inits; see light.go.
package dotmesh
