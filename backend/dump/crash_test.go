package dump

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// TestCrashSafety SIGKILLs a process that keeps committing, rolling back
// and collecting garbage, at random moments, then checks what a restart
// finds: every listed commit is complete and restores to exactly what was
// committed, the store verifies, and no staging debris is left.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	dir := t.TempDir()
	dot := dotmesh.NewDotID()
	br := dotmesh.BranchRef{Dot: dot, Branch: "master"}
	b, err := Open(dir, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.CreateBranch(ctx, br, nil); err != nil {
		t.Fatal(err)
	}
	b.Close()

	digests := map[dotmesh.CommitID]string{} // what each reported commit holds
	verified := map[dotmesh.CommitID]bool{}
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	for round := 0; round < 6; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "DUMP_CRASH_DIR="+dir, "DUMP_CRASH_DOT="+string(dot), fmt.Sprintf("DUMP_CRASH_SEED=%d", rng.Int63()))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		after := time.Duration(100+rng.Intn(900)) * time.Millisecond
		kill := time.After(after)
		// On a loaded machine the child may not finish a commit before
		// any of the random kills; the last round then kills only after
		// the first reported commit, so the run always checks one.
		waitFirst := round == 5 && len(digests) == 0
		var stuck <-chan time.Time
		if waitFirst {
			kill, stuck = nil, time.After(3*time.Minute)
		}
	loop:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					break loop
				}
				if id, d, ok := strings.Cut(l, " "); ok && strings.HasPrefix(id, "commit:") {
					digests[dotmesh.CommitID(strings.TrimPrefix(id, "commit:"))] = d
					if waitFirst {
						waitFirst, stuck = false, nil
						kill = time.After(after)
					}
				}
			case <-stuck:
				cmd.Process.Signal(syscall.SIGKILL)
				t.Fatal("the child finished no commit in 3 minutes")
			case <-kill:
				cmd.Process.Signal(syscall.SIGKILL)
				kill = nil
			}
		}
		cmd.Wait()

		// Restart and inspect.
		b, err := Open(dir, Options{Logger: testLogger(t)})
		if err != nil {
			t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
		}
		if ents, _ := os.ReadDir(filepath.Join(dir, "store", "staging")); len(ents) != 0 {
			t.Fatalf("round %d: staging debris survived Open", round)
		}
		if err := b.Check(ctx); err != nil {
			t.Fatalf("round %d: store damaged by SIGKILL: %v", round, err)
		}
		ids, err := b.Commits(ctx, br)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			if verified[id] {
				continue // objects are immutable; Check covers them
			}
			verified[id] = true
			c := dotmesh.CommitRef{BranchRef: br, ID: id}
			check := dotmesh.BranchRef{Dot: dot, Branch: "check"}
			if err := b.CreateBranch(ctx, check, &c); err != nil {
				t.Fatalf("round %d: listed commit %s does not restore: %v", round, id, err)
			}
			if want, ok := digests[id]; ok {
				if got := treeDigestHash(t, b.b.treeDir(check)); got != want {
					t.Fatalf("round %d: commit %s restores to a different tree", round, id)
				}
			}
			b.DeleteBranch(ctx, check)
		}
		t.Logf("round %d: %d commits intact", round, len(ids))
		b.Close()
	}
	if len(digests) == 0 {
		t.Fatal("the child never finished a commit; the test proves nothing")
	}
}

func treeDigestHash(t testing.TB, dir string) string {
	sum := sha256.Sum256([]byte(strings.Join(digest(t, dir), "\n")))
	return hex.EncodeToString(sum[:])
}

// TestCrashChild is the process TestCrashSafety kills.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv("DUMP_CRASH_DIR")
	if dir == "" {
		return // the body of a child process TestCrashSafety starts and kills; nothing to run alone
	}
	var seed int64
	fmt.Sscan(os.Getenv("DUMP_CRASH_SEED"), &seed)
	rng := rand.New(rand.NewSource(seed))
	b, err := Open(dir, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	br := dotmesh.BranchRef{Dot: dotmesh.DotID(os.Getenv("DUMP_CRASH_DOT")), Branch: "master"}
	tree := b.b.treeDir(br)
	var mine []dotmesh.CommitRef
	for i := 0; ; i++ {
		for j := 0; j < 1+rng.Intn(5); j++ {
			p := filepath.Join(tree, fmt.Sprintf("d%d", rng.Intn(4)), fmt.Sprintf("f%d", rng.Intn(30)))
			writeFile(t, p, randomBytes(rng.Int63(), rng.Intn(3<<20)), 0o644)
		}
		if rng.Intn(4) == 0 {
			os.RemoveAll(filepath.Join(tree, fmt.Sprintf("d%d", rng.Intn(4))))
		}
		switch {
		case len(mine) > 0 && rng.Intn(5) == 0:
			if err := b.Rollback(ctx, br, mine[rng.Intn(len(mine))]); err != nil {
				t.Fatal(err)
			}
		case len(mine) > 2 && rng.Intn(5) == 0:
			k := rng.Intn(len(mine))
			b.DeleteCommit(ctx, mine[k])
			mine = append(mine[:k], mine[k+1:]...)
			if _, err := b.CollectGarbage(ctx); err != nil {
				t.Fatal(err)
			}
		}
		d := treeDigestHash(t, tree)
		c := dotmesh.CommitRef{BranchRef: br, ID: dotmesh.NewCommitID()}
		if _, err := b.Commit(ctx, c); err != nil {
			t.Fatal(err)
		}
		mine = append(mine, c)
		fmt.Printf("commit:%s %s\n", c.ID, d)
	}
}
