package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/zfs/zfstest"
)

// TestTransferZFSDirectGuess: a push one commit ahead of a plain-HTTP zfs
// receiver sends the commit directly without asking the receiver's state
// first (its debug log shows no State request). Where that guess is wrong
// (two commits ahead, up to date) or the receiver would refuse the finish
// (uncommitted changes, diverged), the receiver refuses it before storing
// anything and the push goes and answers as it would have: both commits,
// up to date, the same errors, no incoming transfer left and no new
// commit on the receiver.
func TestTransferZFSDirectGuess(t *testing.T) {
	zfstest.Require(t)
	p1, _ := zfstest.Pool(t)
	p2, _ := zfstest.Pool(t)
	z1 := startServe(t, "z1", "127.0.0.1", "--backend", "zfs", "--zfs-pool", p1, "--pool-size", "1G")
	z2 := startServe(t, "z2", "127.0.0.2", "--backend", "zfs", "--zfs-pool", p2, "--pool-size", "1G", "--log-level", "debug")
	e := newEnv(t)
	e.addRemote(z1)
	e.addRemote(z2)
	e.on(z1, "init", "app")
	db := e.pathOn(z1, "app.db")
	commit := func(v string) {
		t.Helper()
		writeFile(t, filepath.Join(db, "f"), v)
		e.commitOn(z1, "app", v)
	}
	stateAsked := regexp.MustCompile(`method=GET path=/v1/dots/admin/app/transfer `)
	states := func() int {
		t.Helper()
		b, err := os.ReadFile(z2.log)
		must(t, err)
		return len(stateAsked.FindAll(b, -1))
	}
	same := func(when string) {
		t.Helper()
		if ids(e.logOn(z1, "app")) != ids(e.logOn(z2, "app")) {
			t.Fatalf("histories differ %s", when)
		}
		if !sameTree(readTree(t, db), readTree(t, e.pathOn(z2, "app.db"))) {
			t.Fatalf("z2's tree differs %s", when)
		}
	}

	commit("v1")
	e.transfer(z1, "push", "z2", "app") // the complete first commit
	asked := states()
	if asked == 0 {
		t.Fatal("z2's log shows no State request for the first push: the count below says nothing")
	}
	commit("v2")
	if s := e.transfer(z1, "push", "z2", "app"); s.Commits != 1 || s.UpToDate {
		t.Fatalf("push one ahead: %+v", s)
	}
	if n := states(); n != asked {
		t.Fatalf("the push one commit ahead asked z2's state (%d State requests, %d before)", n, asked)
	}
	if n := directReceives(t, z2); n != 1 {
		t.Fatalf("z2 received %d commit(s) directly; want 1", n)
	}
	same("after the push one ahead")

	commit("v3")
	commit("v4")
	if s := e.transfer(z1, "push", "z2", "app"); s.Commits != 2 {
		t.Fatalf("push two ahead: %+v", s)
	}
	same("after the push two ahead")
	if s := e.transfer(z1, "push", "z2", "app"); !s.UpToDate || s.Commits != 0 {
		t.Fatalf("push up to date: %+v", s)
	}

	wrongGuesses(t, e, z1, z2, p2, commit)
}

// preCheckCommit is the commit of main the guessed push grew from: its
// nodes take a commit directly (api.DirectProtocol) but know no
// api.CheckFinishParam, so they stored a guessed commit without checking
// the Finish first.
const preCheckCommit = "9d717f358560dd7dc6b9b29a74bfccb77c8215c9"

// TestTransferZFSDirectGuessPreCheckReceiver pushes to a node built from
// preCheckCommit (DM_E2E_PRECHECK_NODE, else built from git): it refuses
// the guessed request before it stores anything (an unknown query
// parameter), so a push one ahead goes the usual way and still directly,
// and pushes whose guess is wrong there (uncommitted changes, diverged)
// answer as the usual path does, with no incoming transfer and no
// snapshot of the refused commit left on it. Without the marker that
// node took the guess and the push failed at the Finish ("moved during
// the transfer", or the Finish's refusal), the commit stored on it.
func TestTransferZFSDirectGuessPreCheckReceiver(t *testing.T) {
	zfstest.Require(t)
	old := oldNodeAt(t, preCheckCommit, "DM_E2E_PRECHECK_NODE")
	e, z1, z2, _, p2, db := zfsPair(t, "", old)
	commit := func(v string) {
		t.Helper()
		writeFile(t, filepath.Join(db, "f"), v)
		e.commitOn(z1, "app", v)
	}

	commit("v2")
	if s := e.transfer(z1, "push", "z2", "app"); s.Commits != 1 || s.UpToDate {
		t.Fatalf("push one ahead: %+v", s)
	}
	if n := directReceives(t, z2); n != 1 {
		t.Fatalf("z2 received %d commit(s) directly; want 1 (the usual way after the refused guess)", n)
	}
	if ids(e.logOn(z1, "app")) != ids(e.logOn(z2, "app")) || !sameTree(readTree(t, db), readTree(t, e.pathOn(z2, "app.db"))) {
		t.Fatal("z2 differs after the push one ahead")
	}

	wrongGuesses(t, e, z1, z2, p2, commit)
}

// wrongGuesses commits on z1, one ahead of z2 (pool p2), and pushes where
// the guess that z2's branch is at the parent is wrong for the Finish:
// with uncommitted changes on z2, then diverged. Each answers as the
// usual path does, with no incoming transfer, z2's head where it was and
// no snapshot of the refused commit on z2.
func wrongGuesses(t *testing.T, e *env, z1, z2 *serveNode, p2 string, commit func(string)) {
	t.Helper()
	nothingLeft := func(when string, head string) {
		t.Helper()
		if in := e.incomingOn(z2); len(in) != 0 {
			t.Fatalf("%s: z2 shows incoming transfers %+v", when, in)
		}
		if l := e.logOn(z2, "app"); len(l) == 0 || l[0].ID != head {
			t.Fatalf("%s: z2's head moved: %+v", when, l)
		}
		refused := e.logOn(z1, "app")[0].ID
		if all := zfstest.ZFS(t, "list", "-H", "-o", "name", "-t", "all", "-r", p2); strings.Contains(all, refused) {
			t.Fatalf("%s: z2 stored the refused commit %s:\n%s", when, refused, all)
		}
	}
	head := e.logOn(z2, "app")[0].ID
	commit("ahead of z2")
	writeFile(t, filepath.Join(e.pathOn(z2, "app.db"), "local"), "uncommitted")
	e.fails("uncommitted changes", "--remote", "z1", "push", "z2", "app")
	nothingLeft("refused for uncommitted changes", head)

	e.commitOn(z2, "app", "z2's own")
	e.fails("diverged", "--remote", "z1", "push", "z2", "app")
	nothingLeft("refused as diverged", e.logOn(z2, "app")[0].ID)
}
