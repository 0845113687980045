package backendtest

// Proof that the suite can fail: each mutant breaks the reference backend
// in one place, and the named subtest must then fail. The suite runs in a
// child process so that its failures do not fail this test.

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

const mutantEnv = "BACKENDTEST_MUTANT"

// mutant name (see refBackend.mut) -> suite subtest "Group/Name" that must fail.
var mutants = []struct{ name, test string }{
	{"EmptyName", "Branch/Name"},
	{"CreateTwiceOK", "Branch/CreateEmpty"},
	{"SubdotsMissesOne", "Branch/SubdotPath"},
	{"RootNotParent", "Branch/SubdotPath"},
	{"DeleteMissingBranchFails", "Branch/DeleteBranch"},
	{"DeleteBranchKeepsCommits", "Branch/DeleteBranch"},
	{"FollowsSymlinks", "Commit/RollbackRestoresEverything"},
	{"LosesModes", "Commit/RollbackRestoresEverything"},
	{"DropsEmptyDirs", "Commit/RollbackRestoresEverything"},
	{"RollbackKeepsNewFiles", "Commit/RollbackRestoresEverything"},
	{"CommitFirstSubdotOnly", "Commit/RollbackRestoresEverything"},
	{"CommitSubdotsOnly", "Commit/RootLevelFiles"},
	{"TruncatesLargeFiles", "Commit/LargeFile"},
	{"DeleteMissingCommitFails", "Commit/DeleteCommit"},
	{"BranchIgnoresOrigin", "Branching/FromCommit"},
	{"BranchSharesWorkingState", "Branching/FromCommit"},
	{"CommitsOfWholeDot", "Branching/FromCommit"},
	{"RollbackOwnBranchOnly", "Branching/FromCommit"},
	{"UsageAlwaysClean", "Usage/BeforeFirstCommit"},
	{"UsageAlwaysDirty", "Usage/AfterCommit"},
	{"UsageSizeZero", "Usage/AfterCommit"},
	{"UsageNoDirtyBytes", "Usage/Changes"},
	{"UsageIgnoresModes", "Usage/Changes"},
	{"ReceiveUnverified", "Transfer/ReceiveCorrupt"},
	{"ReceiveUnverifiedInPlace", "Transfer/ReceiveTruncated"},
	{"ReceiveIgnoresBase", "Transfer/ReceiveWithoutBase"},
	{"ReceiveIgnoresContext", "Transfer/ReceiveCanceled"},
	{"SendMissingOK", "Errors/MissingCommit"},
	{"MissingBranchCreated", "Errors/MissingBranch"},
	{"NoRefValidation", "Errors/InvalidRefs"},
	{"NoSubdotValidation", "Errors/InvalidSubdots"},
	{"CommitsNeedExclusiveAccess", "Concurrency/ParallelCommits"},
	{"BranchSharesWorkingState", "Tree/CommitTreeIsTheCommit"},
}

func TestMutantsAreCaught(t *testing.T) {
	if os.Getenv(mutantEnv) != "" {
		t.Skip("inside a mutant child process")
	}
	for _, m := range mutants {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			group, name, _ := strings.Cut(m.test, "/")
			cmd := exec.Command(os.Args[0], "-test.run", fmt.Sprintf("^TestMutantChild$/^%s$/^%s$", group, name), "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), mutantEnv+"="+m.name)
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), "--- FAIL: TestMutantChild/"+m.test+" ") {
				t.Errorf("suite subtest %s did not fail with mutant %s (exit: %v):\n%s", m.test, m.name, err, out)
			}
		})
	}
}

func TestMutantChild(t *testing.T) {
	name := os.Getenv(mutantEnv)
	if name == "" {
		t.Skip("only run by TestMutantsAreCaught")
	}
	Run(t, func(t *testing.T) dotmesh.StorageBackend { return newRefBackend(t.TempDir(), name) })
}
