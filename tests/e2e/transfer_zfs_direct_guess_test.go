package e2e

import (
	"os"
	"path/filepath"
	"regexp"
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
	nothingLeft := func(when string, head string) {
		t.Helper()
		if in := e.incomingOn(z2); len(in) != 0 {
			t.Fatalf("%s: z2 shows incoming transfers %+v", when, in)
		}
		if l := e.logOn(z2, "app"); len(l) == 0 || l[0].ID != head {
			t.Fatalf("%s: z2's head moved: %+v", when, l)
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

	head := e.logOn(z2, "app")[0].ID
	commit("v5")
	writeFile(t, filepath.Join(e.pathOn(z2, "app.db"), "local"), "uncommitted")
	e.fails("uncommitted changes", "--remote", "z1", "push", "z2", "app")
	nothingLeft("refused for uncommitted changes", head)

	e.commitOn(z2, "app", "z2's own")
	e.fails("diverged", "--remote", "z1", "push", "z2", "app")
	nothingLeft("refused as diverged", e.logOn(z2, "app")[0].ID)
}
