//go:build linux && cgo

package btrfs

import (
	"context"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// TestCommitIsCrashConsistent: a btrfs commit is one snapshot of the
// branch's subvolume, and says so in its info, whether made outright or
// by CommitIfChanged.
func TestCommitIsCrashConsistent(t *testing.T) {
	ctx := context.Background()
	b := openShared(t)
	br := newBranch(dotmesh.NewDotID(), "master")
	must(t, b.CreateBranch(ctx, br, nil))
	defer b.DeleteBranch(ctx, br)
	writeFile(t, subdot(t, b, br, dotmesh.DefaultSubdot)+"/a", "one")
	c1 := commitRef(br)
	info, err := b.Commit(ctx, c1)
	must(t, err)
	if info[dotmesh.InfoConsistency] != dotmesh.ConsistencyCrash {
		t.Errorf("Commit info %v: want %s=%s", info, dotmesh.InfoConsistency, dotmesh.ConsistencyCrash)
	}
	writeFile(t, subdot(t, b, br, dotmesh.DefaultSubdot)+"/a", "two")
	info, changed, err := b.CommitIfChanged(ctx, commitRef(br), c1)
	must(t, err)
	if !changed || info[dotmesh.InfoConsistency] != dotmesh.ConsistencyCrash {
		t.Errorf("CommitIfChanged: changed %v, info %v", changed, info)
	}
}
