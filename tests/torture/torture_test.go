package torture

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

var dmBin string

func TestMain(m *testing.M) {
	tmp, err := os.MkdirTemp("", "dm-torture-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	dmBin = filepath.Join(tmp, "dm")
	build := exec.Command("go", "build", "-o", dmBin, "github.com/dotmesh-io/dotmesh/cmd/dm")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building dm:", err)
		os.RemoveAll(tmp)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(tmp)
	os.Exit(code)
}

// TestTorture is the short torture run of `make test`: the files backend,
// three nodes, TORTURE_TEST_TIME (default 60s), seed TORTURE_SEED (default
// 1: the same operations and kill decisions every run; timing aside),
// without the classes in TORTURE_EXCLUDE (comma-separated).
func TestTorture(t *testing.T) {
	d := 60 * time.Second
	if s := os.Getenv("TORTURE_TEST_TIME"); s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			t.Fatalf("TORTURE_TEST_TIME=%q: %v", s, err)
		}
	}
	seed := uint64(1)
	if s := os.Getenv("TORTURE_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("TORTURE_SEED=%q: %v", s, err)
		}
	}
	cfgs, err := Configs(dmBin, "files", os.Getenv("TORTURE_EXCLUDE"), d, seed, 3, 0.25, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cfgs[0].Out = &out
	err = Run(context.Background(), cfgs[0])
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatalf("seed %d: %v (replay: TORTURE_SEED=%d go test ./tests/torture -run TestTorture; or bin/dm-torture -seed %d)", seed, err, seed, seed)
	}
}

// startOne starts an engine with one node, no kills, and two commits on
// dot d0, checked clean.
func startOne(t *testing.T) *Engine {
	t.Helper()
	var out strings.Builder
	e, err := start(Config{DM: dmBin, Backend: "files", Nodes: 1, Duration: time.Minute, Seed: 7, KillRate: -1, MaxFile: 64 << 10, Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.close(t.Failed())
		if t.Failed() {
			t.Log(out.String())
		}
	})
	// Two commits made: a commit op without a write may find nothing to
	// commit.
	for made, tries := 0, 0; made < 2; tries++ {
		if tries == 20 {
			t.Fatal("20 commit ops made fewer than two commits")
		}
		_, b := e.current(0, "d0")
		head := b.Head
		e.opSeq++
		if _, err := e.commit(0, "d0"); err != nil {
			t.Fatal(err)
		}
		if _, b := e.current(0, "d0"); b.Head != head {
			made++
		}
	}
	if err := e.checkAll("two commits"); err != nil {
		t.Fatalf("a clean node fails the check: %v", err)
	}
	return e
}

// wantViolation checks that err is a Violation saying want.
func wantViolation(t *testing.T, err error, want string) {
	t.Helper()
	var v *Violation
	if !errors.As(err, &v) || !strings.Contains(v.What, want) {
		t.Fatalf("got %v; want a violation saying %q", err, want)
	}
	t.Logf("caught: %v", err)
}

// TestCheckerCatchesViolations tampers with a real node behind the model's
// back, one way at a time, and checks the checker reports each, and only
// while the tampering lasts.
func TestCheckerCatchesViolations(t *testing.T) {
	e := startOne(t)
	_, b := e.current(0, "d0")
	sub, err := e.path(0, "d0.a")
	if err != nil {
		t.Fatal(err)
	}

	// A working tree that is neither committed nor what was written.
	stray := filepath.Join(sub, "stray")
	if err := os.WriteFile(stray, []byte("not written by the run"), 0o644); err != nil {
		t.Fatal(err)
	}
	wantViolation(t, e.checkAll("tampering"), "working tree")
	os.Remove(stray)
	if err := e.checkAll("undoing it"); err != nil {
		t.Fatalf("after undoing the change: %v", err)
	}

	// A commit nobody acknowledged (as a partial commit would be).
	if r := e.dm(0, "commit", "--dot", "d0", "-m", "rogue", "--allow-empty"); r.err != nil {
		t.Fatal(r.err)
	}
	wantViolation(t, e.checkAll("a rogue commit"), "never made by this run")
	if r := e.dm(0, "reset", "--hard", "--dot", "d0", b.Head); r.err != nil {
		t.Fatal(r.err)
	}
	if err := e.checkAll("resetting it away"); err != nil {
		t.Fatalf("after resetting the rogue commit away: %v", err)
	}

	// A damaged stored object: verify reports it.
	var pack string
	filepath.Walk(e.nodes[0].data, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && strings.HasSuffix(p, ".pack") && fi.Size() > 1024 {
			pack = p
		}
		return nil
	})
	if pack == "" {
		t.Fatal("no pack file of 1 KiB or more under the node's data dir")
	}
	orig, err := os.ReadFile(pack)
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), orig...)
	bad[len(bad)/2] ^= 0xff
	os.Chmod(pack, 0o644)
	if err := os.WriteFile(pack, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	wantViolation(t, e.verify(0), "found damage")
	if err := os.WriteFile(pack, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.verify(0); err != nil {
		t.Fatalf("after repairing the pack: %v", err)
	}

	// An acknowledged commit lost.
	if r := e.dm(0, "reset", "--hard", "--dot", "d0", "HEAD^"); r.err != nil {
		t.Fatal(r.err)
	}
	wantViolation(t, e.checkAll("losing a commit"), "acknowledged commits ["+short(b.Head)+"] are missing")
}

// TestCutOffMustBeWhole: a dot whose operation was cut off by a kill must
// be wholly in one of the states allowed; a head of one with the tree of
// the other (a half-done reset) is reported.
func TestCutOffMustBeWhole(t *testing.T) {
	m := newModel(1)
	m.msgTree["old"], m.msgTree["new"] = "tree-old", "tree-new"
	m.idMsg["c-old"], m.idMsg["c-new"] = "old", "new"
	before := &dotModel{Current: "master", Branches: map[string]*branchModel{"master": {Head: "c-old", Must: []string{"c-old", "c-new"}, Tree: "tree-old"}}}
	after := &dotModel{Current: "master", Branches: map[string]*branchModel{"master": {Head: "c-new", Must: []string{"c-new"}, Tree: "tree-new"}}}
	log := []obsCommit{{ID: "c-old", Parent: "c-new", Message: "old"}, {ID: "c-new", Message: "new"}}
	for _, tc := range []struct {
		head, tree string
		ok         bool
	}{
		{"c-old", "tree-old", true},
		{"c-new", "tree-new", true},
		{"c-old", "tree-new", false},
		{"c-new", "tree-old", false},
	} {
		l := log
		if tc.head == "c-new" {
			l = log[1:]
		}
		got := &obsDot{Current: "master", Branches: map[string]*obsBranch{"master": {Head: tc.head, Log: l, Tree: tc.tree}}}
		whole := len(m.matchDot(before, got)) == 0 || len(m.matchDot(after, got)) == 0
		if whole != tc.ok {
			t.Errorf("head %s with %s: accepted %v, want %v", tc.head, tc.tree, whole, tc.ok)
		}
	}
}

// TestDivergedPullStaysShallow: a receiver whose gc pruned its history
// and whose branch diverged gets the sender's commits down to the newest
// one they share and keeps its own acknowledged ones; the sender's older
// commits, which a transfer does not send, are not required of it (seed
// 1 once found n2's master "missing" two commits its gc had removed).
func TestDivergedPullStaysShallow(t *testing.T) {
	e := &Engine{m: newModel(2)}
	for id, msg := range map[string]string{"s4": "m4", "s3": "m3", "c": "mc", "o1": "mo1", "o2": "mo2", "r2": "mr2", "r1": "mr1"} {
		e.m.idMsg[id], e.m.msgTree[msg] = msg, "tree-"+msg
	}
	sender := &branchModel{Head: "s4", Must: []string{"s4", "s3", "c", "o1", "o2"}, Tree: "tree-m4"}
	old := &dotModel{Current: "master", Branches: map[string]*branchModel{"master": {Head: "r2", Must: []string{"r2", "r1", "c"}, Tree: "tree-mr2"}}}
	got := e.received(old, "master", sender, "master-DIVERGED")
	if want := []string{"s4", "s3", "c"}; !slices.Equal(got.Branches["master"].Must, want) {
		t.Errorf("pruned receiver: master must hold %v, want %v", got.Branches["master"].Must, want)
	}
	if s := got.Branches["master-DIVERGED"]; s == nil || s.Head != "r2" {
		t.Errorf("the stash is %+v, want the receiver's old master", s)
	}
	// A receiver that kept its older history must still show it.
	old.Branches["master"].Must = []string{"r2", "r1", "c", "o1", "o2"}
	got = e.received(old, "master", sender, "master-DIVERGED")
	if want := sender.Must; !slices.Equal(got.Branches["master"].Must, want) {
		t.Errorf("full receiver: master must hold %v, want %v", got.Branches["master"].Must, want)
	}
}
