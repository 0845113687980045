package backendtest

import (
	"errors"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// adoptTests check dotmesh.WorkingStateAdopter where a backend has it: a
// working state passes to a branch that has none, equal to the commit
// made from it and clean against it, without its source's commits; what
// cannot pass is refused with ErrConflict (or ErrAlreadyExists) and
// changes nothing.
var adoptTests = []backendTest{
	{"PassesTheTree", func(f *fixture) {
		a, ok := f.adopter()
		if !ok {
			return
		}
		from := f.newBranch()
		v1 := richTree(f.t.TempDir())
		f.write(from, v1)
		c1 := f.commit(from)
		to := dotmesh.BranchRef{Dot: from.Dot, Branch: "adopted"}
		f.fatalIf(a.AdoptWorkingState(f.ctx, from, to, c1), "AdoptWorkingState(%s, %s, %s)", from, to, c1)
		f.assertTree(to, v1)
		f.assertClean(to, &c1, "adopted working state")
		if _, err := f.be.SubdotPath(f.ctx, from, dotmesh.RootSubdot); !errors.Is(err, dotmesh.ErrNotFound) {
			f.t.Errorf("the source keeps a working state after it passed on: SubdotPath = %v, want ErrNotFound", err)
		}
		f.assertCommits(from, c1)
		f.assertCommits(to)

		// Both go on as branches: the source gets a new working state,
		// the adopted one commits and rolls back.
		f.create(from, &c1)
		f.assertTree(from, v1)
		f.write(to, Tree{"db/data.bin": File(0o600, "database pages v2")})
		c2 := f.commit(to)
		f.assertClean(to, &c2, "commit of an adopted working state")
		f.rollback(to, c1)
		f.assertTree(to, v1)
		f.assertCommitTree(c1, v1)
	}},
	{"RefusesWhatItCannotVouchFor", func(f *fixture) {
		a, ok := f.adopter()
		if !ok {
			return
		}
		from := f.newBranch()
		v1 := Tree{"d": Dir(0o755), "d/f": File(0o644, "one")}
		f.write(from, v1)
		c1 := f.commit(from)
		to := dotmesh.BranchRef{Dot: from.Dot, Branch: "adopted"}

		// Changed since the commit.
		f.write(from, Tree{"d/f": File(0o644, "two")})
		wantErr(f.t, "adopting a changed working state", a.AdoptWorkingState(f.ctx, from, to, c1), dotmesh.ErrConflict)
		if _, err := f.be.SubdotPath(f.ctx, to, dotmesh.RootSubdot); !errors.Is(err, dotmesh.ErrNotFound) {
			f.t.Errorf("a refused adoption made a working state: SubdotPath = %v", err)
		}
		f.assertTree(from, Tree{"d": Dir(0o755), "d/f": File(0o644, "two")})

		// Another commit than the one it was made from.
		c2 := f.commit(from)
		wantErr(f.t, "adopting a working state at another commit", a.AdoptWorkingState(f.ctx, from, to, c1), dotmesh.ErrConflict)

		// A target that has a working state.
		other := dotmesh.BranchRef{Dot: from.Dot, Branch: "other"}
		f.create(other, nil)
		wantErr(f.t, "adopting onto a working state", a.AdoptWorkingState(f.ctx, from, other, c2), dotmesh.ErrAlreadyExists)

		// A source without one.
		f.fatalIf(a.AdoptWorkingState(f.ctx, from, to, c2), "AdoptWorkingState")
		wantErr(f.t, "adopting from a branch without a working state", a.AdoptWorkingState(f.ctx, from, dotmesh.BranchRef{Dot: from.Dot, Branch: "third"}, c2), dotmesh.ErrConflict)
		f.assertTree(to, Tree{"d": Dir(0o755), "d/f": File(0o644, "two")})
	}},
}

// adopter is the backend's WorkingStateAdopter; false (logged) when it
// has none.
func (f *fixture) adopter() (dotmesh.WorkingStateAdopter, bool) {
	a, ok := f.be.(dotmesh.WorkingStateAdopter)
	if !ok {
		f.t.Logf("backend %s is no WorkingStateAdopter: nothing to check", f.be.Name())
	}
	return a, ok
}
