package dump

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// adoptCrashSteps are the points of AdoptWorkingState a crash can fall
// between (its adoptStepTest calls).
var adoptCrashSteps = []string{"dir", "synced", "renamed", "commits", "unsynced"}

// TestAdoptCrash SIGKILLs a process in AdoptWorkingState after each of
// its steps, then checks what a restart finds: the working state is
// either still the source's or wholly the target's, equal to the commit
// and clean against it; and what the Node then does (reconcile drops a
// target no registry knows, the transfer runs again: adopt, or restore
// when the source has no working state left) gives a complete target.
func TestAdoptCrash(t *testing.T) {
	for _, step := range adoptCrashSteps {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			t.Cleanup(func() { makeWritable(dir) })
			from := dotmesh.BranchRef{Dot: dotmesh.NewDotID(), Branch: "_recv-master"}
			to := dotmesh.BranchRef{Dot: from.Dot, Branch: "master"}
			b, err := Open(dir, Options{Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			if err := b.CreateBranch(ctx, from, nil); err != nil {
				t.Fatal(err)
			}
			tree := b.b.treeDir(from)
			for i, mode := range []os.FileMode{0o644, 0o600, 0o755} {
				writeFile(t, filepath.Join(tree, "d", string(rune('a'+i))), randomBytes(int64(i), 100<<10*i), mode)
			}
			if err := os.Symlink("d/a", filepath.Join(tree, "link")); err != nil {
				t.Fatal(err)
			}
			c := dotmesh.CommitRef{BranchRef: from, ID: dotmesh.NewCommitID()}
			if _, err := b.Commit(ctx, c); err != nil {
				t.Fatal(err)
			}
			want := digest(t, tree)
			b.Close()

			cmd := exec.Command(os.Args[0], "-test.run=^TestAdoptCrashChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), "DUMP_ADOPT_DIR="+dir, "DUMP_ADOPT_DOT="+string(from.Dot), "DUMP_ADOPT_COMMIT="+string(c.ID), "DUMP_ADOPT_STEP="+step)
			cmd.Stderr = os.Stderr
			err = cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("the child was to be killed at step %s: %v", step, err)
			}

			b, err = Open(dir, Options{Logger: testLogger(t)})
			if err != nil {
				t.Fatalf("reopen after SIGKILL: %v", err)
			}
			defer b.Close()
			clean := func(br dotmesh.BranchRef, when string) {
				t.Helper()
				p, err := b.SubdotPath(ctx, br, dotmesh.RootSubdot)
				if err != nil {
					t.Fatalf("%s: %s has no working state: %v", when, br, err)
				}
				if got := digest(t, p); !slices.Equal(got, want) {
					t.Fatalf("%s: the working state of %s is not the commit's:\n%v\nwant\n%v", when, br, got, want)
				}
				if u, err := b.Usage(ctx, br, &c); err != nil || u.Dirty {
					t.Fatalf("%s: Usage(%s) = %+v, %v; want clean", when, br, u, err)
				}
			}
			_, toErr := b.SubdotPath(ctx, to, dotmesh.RootSubdot)
			_, fromErr := b.SubdotPath(ctx, from, dotmesh.RootSubdot)
			switch {
			case toErr == nil && errors.Is(fromErr, dotmesh.ErrNotFound):
				clean(to, "killed after the rename")
			case errors.Is(toErr, dotmesh.ErrNotFound) && fromErr == nil:
				clean(from, "killed before the rename")
			default:
				t.Fatalf("after SIGKILL at %s: target %v, source %v; want exactly one working state", step, toErr, fromErr)
			}
			if ids, err := b.Commits(ctx, from); err != nil || !slices.Equal(ids, []dotmesh.CommitID{c.ID}) {
				t.Fatalf("the source's commits after SIGKILL: %v, %v", ids, err)
			}

			// What the Node does next: reconcile removes the target (no
			// registry record, no commits), the transfer runs again.
			if err := b.DeleteBranch(ctx, to); err != nil {
				t.Fatal(err)
			}
			err = b.AdoptWorkingState(ctx, from, to, c)
			if errors.Is(err, dotmesh.ErrConflict) {
				err = b.CreateBranch(ctx, to, &c)
			}
			if err != nil {
				t.Fatalf("the transfer run again: %v", err)
			}
			clean(to, "after the transfer ran again")
		})
	}
}

// TestAdoptCrashChild is the process TestAdoptCrash kills.
func TestAdoptCrashChild(t *testing.T) {
	dir := os.Getenv("DUMP_ADOPT_DIR")
	if dir == "" {
		return // the body of a child process TestAdoptCrash starts and kills; nothing to run alone
	}
	b, err := Open(dir, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	step := os.Getenv("DUMP_ADOPT_STEP")
	b.b.adoptStepTest = func(s string) {
		if s == step {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	}
	dot := dotmesh.DotID(os.Getenv("DUMP_ADOPT_DOT"))
	from := dotmesh.BranchRef{Dot: dot, Branch: "_recv-master"}
	c := dotmesh.CommitRef{BranchRef: from, ID: dotmesh.CommitID(os.Getenv("DUMP_ADOPT_COMMIT"))}
	if err := b.AdoptWorkingState(ctx, from, dotmesh.BranchRef{Dot: dot, Branch: "master"}, c); err != nil {
		t.Fatal(err)
	}
	t.Fatalf("step %s never came", step)
}
