package refs

import (
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func TestValidate(t *testing.T) {
	good := dotmesh.CommitRef{BranchRef: dotmesh.BranchRef{Dot: dotmesh.NewDotID(), Branch: "master"}, ID: dotmesh.NewCommitID()}
	bad := good
	bad.ID = "../x"
	badBranch := good.BranchRef
	badBranch.Branch = "a/b"
	for _, tc := range []struct {
		ref    interface{ Validate() error }
		commit *dotmesh.CommitRef
		ok     bool
	}{
		{good, nil, true},
		{good, &good, true},
		{good.BranchRef, &good, true},
		{good.BranchRef, nil, true},
		{bad, nil, false},
		{good, &bad, false},
		{badBranch, &good, false},
		{badBranch, nil, false},
	} {
		if err := Validate(tc.ref, tc.commit); (err == nil) != tc.ok {
			t.Errorf("Validate(%v, %v) = %v", tc.ref, tc.commit, err)
		}
	}
}
