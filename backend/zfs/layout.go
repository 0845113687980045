package zfs

import (
	"crypto/rand"
	"encoding/hex"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Dataset layout under the root R (see doc.go):
//
//	R                              mountpoint=<Mountpoint>, canmount=off
//	R/<dot id>                     container, canmount=off
//	R/records/<dot id>             canmount=off; its io.dotmesh:rec.* user
//	                               properties keep the registry's records
//	                               (records.go: not on the container,
//	                               whose properties every dataset of the
//	                               dot inherits). "records" is no dot id.
//	R/<dot id>/<branch>.<gen>      a working state of a branch; its
//	                               io.dotmesh:state says which role
//	R/<dot id>/<branch>.recv-<hex> a complete stream being received
//
// States (io.dotmesh:state on the filesystem):
//
//	live    the branch's working state, mounted at
//	        <Mountpoint>/<dot id>/<branch> (an explicit mountpoint, so the
//	        path stays the same when a rollback swaps filesystems), or
//	        with mountpoint none until first used when a rollback or
//	        receive switched it in (SubdotPath and Usage mount it). When a
//	        crash left two, the higher generation wins.
//	staged  a rollback's or receive's new working state before the switch
//	recv    a receive in progress, unverified
//	old     a holder: a retired working state kept, unmounted, only for
//	        its snapshots; destroyed when it has none left
//	del     a branch being deleted
//
// Filesystems are never renamed once they may have clones: zfs-fuse
// refuses to rename a filesystem while a clone of it is mounted ("dataset
// is busy"), which would make one branch's rollback depend on every other
// branch being unmounted. Generations make the switch to a new working
// state one atomic property change (or, for a received complete stream,
// one rename of a clone-less filesystem).
//
// Branch names never contain '.', so names cannot collide. Snapshots are
// named by commit id (or "dm-..." for short-lived internal ones).
const (
	stateLive   = "live"
	stateStaged = "staged"
	stateRecv   = "recv"
	stateOld    = "old"
	stateDel    = "del"

	suffixLen = 8 // hex digits of the random part of receive staging names

	tempSnapPrefix = "dm-"
)

// stateProp holds a branch filesystem's state.
const stateProp = "io.dotmesh:state"

// pristineProp marks a working state cloned from a commit unmounted (by
// Rollback or CreateBranch) with that commit, until something changes its
// data (first of all mounting it): while marked it cannot differ from the
// commit, so a dirty check needs no snapshot (see fsInfo.pristineAt).
const pristineProp = "io.dotmesh:pristine"

func (b *Backend) container(dot dotmesh.DotID) dataset {
	return dataset{b.root.name + "/" + string(dot)} // dot ids are validated hex
}

// genDataset names generation gen of ref's working state.
func (b *Backend) genDataset(ref dotmesh.BranchRef, gen int) dataset {
	return dataset{b.container(ref.Dot).name + "/" + ref.Branch + "." + strconv.Itoa(gen)}
}

// recvDataset names a fresh receive staging filesystem.
func (b *Backend) recvDataset(ref dotmesh.BranchRef) dataset {
	return dataset{b.container(ref.Dot).name + "/" + ref.Branch + ".recv-" + randHex(suffixLen)}
}

// livePath is where ref's live working state is mounted.
func (b *Backend) livePath(ref dotmesh.BranchRef) string {
	return filepath.Join(b.mnt, string(ref.Dot), ref.Branch)
}

func randHex(n int) string {
	buf := make([]byte, (n+1)/2)
	_, _ = rand.Read(buf)
	return hex.EncodeToString(buf)[:n]
}

// maxGen bounds generation numbers so they always parse.
const maxGen = 1 << 40

// parseLeaf splits a dataset leaf below a dot container into its branch
// and generation (0 for a receive staging name); ok is false for names
// this backend did not make.
func parseLeaf(leaf string) (branch string, gen int, ok bool) {
	branch, rest, found := strings.Cut(leaf, ".")
	if !found || dotmesh.ValidateName("branch", branch) != nil {
		return "", 0, false
	}
	if suffix, isRecv := strings.CutPrefix(rest, "recv-"); isRecv {
		if len(suffix) != suffixLen || dotmesh.ValidateID("suffix", suffix, true) != nil {
			return "", 0, false
		}
		return branch, 0, true
	}
	gen, err := strconv.Atoi(rest)
	if err != nil || gen < 1 || gen > maxGen || strconv.Itoa(gen) != rest {
		return "", 0, false
	}
	return branch, gen, true
}
