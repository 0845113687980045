// Package refs holds argument checks that every storage backend makes.
package refs

import "github.com/dotmesh-io/dotmesh/dotmesh"

// Validate checks ref (a BranchRef or CommitRef) and, when it is not nil,
// the commit that goes with it: the origin of a new branch, the base of a
// stream, the head to compare with.
func Validate(ref interface{ Validate() error }, commit *dotmesh.CommitRef) error {
	if err := ref.Validate(); err != nil {
		return err
	}
	if commit != nil {
		return commit.Validate()
	}
	return nil
}
