// Package journalrec is the value a backend stores for a journaled
// commit (dotmesh.CommitJournal): the dot, the branch, the head the
// commit must differ from (or nothing) and the Node's record, the first
// three ended by a zero byte. btrfs keeps it in an xattr, zfs (base64)
// in a property of the commit's snapshot.
package journalrec

import (
	"bytes"
	"fmt"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Encode returns the value for commit c's record rec; head, when given,
// is the head c must differ from, of the same branch.
func Encode(c dotmesh.CommitRef, head *dotmesh.CommitRef, rec []byte) ([]byte, error) {
	var h dotmesh.CommitID
	if head != nil {
		if head.BranchRef != c.BranchRef {
			return nil, fmt.Errorf("%w: journaling commit %s against head %s of another branch", dotmesh.ErrInvalidArgument, c, head)
		}
		h = head.ID
	}
	v := make([]byte, 0, len(c.Dot)+len(c.Branch)+len(h)+3+len(rec))
	v = append(append(append(append(append(append(v, c.Dot...), 0), c.Branch...), 0), h...), 0)
	return append(v, rec...), nil
}

// Decode reads the value v of commit id's record: the record, whose
// Commit names the dot and branch v holds, and the head ("" when none).
// ok is false for a malformed value.
func Decode(id dotmesh.CommitID, v []byte) (j dotmesh.JournaledCommit, head dotmesh.CommitID, ok bool) {
	parts := bytes.SplitN(v, []byte{0}, 4)
	if len(parts) != 4 {
		return j, "", false
	}
	c := dotmesh.CommitRef{BranchRef: dotmesh.BranchRef{Dot: dotmesh.DotID(parts[0]), Branch: string(parts[1])}, ID: id}
	return dotmesh.JournaledCommit{Commit: c, Record: parts[3]}, dotmesh.CommitID(parts[2]), true
}
