package zfs_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/zfs"
	"github.com/dotmesh-io/dotmesh/backend/zfs/zfstest"
	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// TestNodeKeepsBranches drives the backend through a real Node: reset
// and branch deletion never take another branch's data or history, also
// across a restart (pool exported and imported again, registry reopened,
// reconcile run).
func TestNodeKeepsBranches(t *testing.T) {
	ctx := context.Background()
	pool, dir := zfstest.Pool(t)
	opts := zfs.Options{Pool: pool, DataDir: dir, PoolSize: testPoolSize, Logger: logger()}
	dbPath := filepath.Join(t.TempDir(), "registry.db")
	openNode := func() *dotmesh.Node {
		t.Helper()
		be, err := zfs.Open(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		store, err := bboltstore.Open(dbPath, bboltstore.Options{Logger: logger()})
		if err != nil {
			t.Fatal(err)
		}
		n, err := dotmesh.NewNode(ctx, dotmesh.Options{Store: store, Backends: []dotmesh.StorageBackend{be}, Logger: logger()})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	name := dotmesh.DotName{Namespace: dotmesh.DefaultNamespace, Name: "app"}
	file := func(n *dotmesh.Node, branch string) string {
		t.Helper()
		p, err := n.SubdotPath(ctx, dotmesh.VolumeName{Dot: name, Branch: branch})
		must(err)
		return filepath.Join(p, "data.txt")
	}
	write := func(n *dotmesh.Node, branch, s string) {
		t.Helper()
		must(os.WriteFile(file(n, branch), []byte(s), 0o644))
	}
	check := func(n *dotmesh.Node, branch, want string) {
		t.Helper()
		got, err := os.ReadFile(file(n, branch))
		if err != nil || string(got) != want {
			t.Errorf("%s: data.txt = %q, %v; want %q", branch, got, err, want)
		}
	}
	commit := func(n *dotmesh.Node, branch string) *dotmesh.Commit {
		t.Helper()
		c, err := n.Commit(ctx, name, branch, dotmesh.CommitOptions{Message: "m", Author: "test", AllowEmpty: true})
		must(err)
		return c
	}
	history := func(n *dotmesh.Node, branch string, want ...*dotmesh.Commit) {
		t.Helper()
		log, err := n.Log(ctx, name, branch, 0)
		must(err)
		if len(log) != len(want) {
			t.Fatalf("log of %s has %d commits, want %d", branch, len(log), len(want))
		}
		for i := range want {
			if log[i].ID != want[i].ID {
				t.Errorf("log of %s[%d] = %s, want %s", branch, i, log[i].ID, want[i].ID)
			}
		}
	}

	n := openNode()
	_, err := n.CreateDot(ctx, name, dotmesh.CreateDotOptions{})
	must(err)
	write(n, "master", "1")
	c1 := commit(n, "master")
	write(n, "master", "2")
	c2 := commit(n, "master")
	_, err = n.Checkout(ctx, name, "feature", dotmesh.CheckoutOptions{Create: true})
	must(err)
	write(n, "feature", "feature")
	c3 := commit(n, "feature")

	write(n, "master", "dirty")
	_, err = n.Reset(ctx, name, "master", "HEAD^", dotmesh.ResetOptions{})
	if !errors.Is(err, dotmesh.ErrDirty) {
		t.Fatalf("reset without --hard of a dirty branch: %v, want ErrDirty", err)
	}
	_, err = n.Reset(ctx, name, "master", "HEAD^", dotmesh.ResetOptions{Hard: true})
	must(err)
	check(n, "master", "1")
	check(n, "feature", "feature")
	history(n, "master", c1)
	history(n, "feature", c3, c2, c1)

	// feature is current, and was made from master's commits: the Node
	// keeps master until feature goes.
	if err := n.DeleteBranch(ctx, name, "master"); !errors.Is(err, dotmesh.ErrInUse) {
		t.Fatalf("deleting the origin branch: %v, want ErrInUse", err)
	}
	check(n, "feature", "feature")
	history(n, "feature", c3, c2, c1)
	must(n.Close())

	zfstest.Export(t, pool)
	n = openNode()
	defer n.Close()
	check(n, "feature", "feature")
	history(n, "feature", c3, c2, c1)
	_, err = n.Reset(ctx, name, "feature", string(c2.ID), dotmesh.ResetOptions{Hard: true})
	must(err)
	check(n, "feature", "2")
	_, err = n.Reset(ctx, name, "feature", string(c1.ID), dotmesh.ResetOptions{})
	must(err)
	check(n, "feature", "1")
	history(n, "feature", c1)
}

// TestNodePushKeepsReceiverChanges: pushes between two zfs nodes. The
// receiving branch is rolled forward without being mounted, checked
// without snapshots while nobody uses it, and uncommitted changes made on
// it once it is used are still refused, saying how much there is.
func TestNodePushKeepsReceiverChanges(t *testing.T) {
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	openNode := func() *dotmesh.Node {
		t.Helper()
		pool, dir := zfstest.Pool(t)
		be, err := zfs.Open(ctx, zfs.Options{Pool: pool, DataDir: dir, PoolSize: testPoolSize, Logger: logger()})
		must(err)
		store, err := bboltstore.Open(filepath.Join(t.TempDir(), "registry.db"), bboltstore.Options{Logger: logger()})
		must(err)
		n, err := dotmesh.NewNode(ctx, dotmesh.Options{Store: store, Backends: []dotmesh.StorageBackend{be}, Logger: logger()})
		must(err)
		t.Cleanup(func() { n.Close() }) // before the pool goes
		return n
	}
	a, b := openNode(), openNode()
	name := dotmesh.DotName{Namespace: dotmesh.DefaultNamespace, Name: "app"}
	path := func(n *dotmesh.Node, f string) string {
		t.Helper()
		p, err := n.SubdotPath(ctx, dotmesh.VolumeName{Dot: name})
		must(err)
		return filepath.Join(p, f)
	}
	commitOnA := func(f, s string) {
		t.Helper()
		must(os.WriteFile(path(a, f), []byte(s), 0o644))
		_, err := a.Commit(ctx, name, "", dotmesh.CommitOptions{Message: f})
		must(err)
	}
	push := func() error {
		_, err := a.Push(ctx, name, "", dotmesh.LocalTransport(b), dotmesh.TransferOptions{})
		return err
	}
	_, err := a.CreateDot(ctx, name, dotmesh.CreateDotOptions{})
	must(err)
	for i, f := range []string{"one", "two", "three"} {
		commitOnA(f, f)
		must(push())
		if i > 0 {
			st, err := b.TransferPeer().State(ctx, name, "master", dotmesh.StateOptions{})
			must(err)
			if st.Usage.Dirty {
				t.Fatalf("after push %d: receiver dirty: %+v", i+1, st.Usage)
			}
		}
	}
	for _, f := range []string{"one", "two", "three"} {
		if got, err := os.ReadFile(path(b, f)); err != nil || string(got) != f {
			t.Fatalf("receiver's %s = %q, %v", f, got, err)
		}
	}
	must(os.WriteFile(path(b, "two"), []byte("changed on b"), 0o644))
	commitOnA("four", "four")
	err = push()
	if !errors.Is(err, dotmesh.ErrDirty) || !strings.Contains(err.Error(), "uncommitted changes (about ") {
		t.Fatalf("push onto a changed receiver: %v; want ErrDirty with the amount", err)
	}
	if got, _ := os.ReadFile(path(b, "two")); string(got) != "changed on b" {
		t.Fatalf("the receiver's change is gone: %q", got)
	}
	_, err = b.Reset(ctx, name, "", "HEAD", dotmesh.ResetOptions{Hard: true})
	must(err)
	must(push())
	for _, f := range []string{"two", "four"} {
		if got, err := os.ReadFile(path(b, f)); err != nil || string(got) != f {
			t.Fatalf("after the reset and push, receiver's %s = %q, %v", f, got, err)
		}
	}
}

// TestNodeRestartAfterSwitchBeforeHead: a crash after the backend switched
// the receiving branch's working state but before the Node recorded the
// new head (here: the switch made by hand, then a restart) leaves the
// working state at the recorded head after the restart, and the push
// that was cut off completes when run again.
func TestNodeRestartAfterSwitchBeforeHead(t *testing.T) {
	x := newPushPair(t)
	ctx, a, b, name, must, file, commitOnA, push := x.ctx, x.a, x.b, x.name, x.must, x.file, x.commitOnA, x.push
	commitOnA("one")
	must(push())
	commitOnA("two")
	must(push())
	c3 := commitOnA("three")
	// The commit arrives, then the working state switches to it, and the
	// node dies before recording the new head.
	_, err := a.n.Push(ctx, name, "", transportWithoutFinish{dotmesh.LocalTransport(b.n)}, dotmesh.TransferOptions{})
	must(err)
	d, err := b.n.Dot(ctx, name)
	must(err)
	must(b.be.Rollback(ctx, dotmesh.BranchRef{Dot: d.ID, Branch: "master"}, dotmesh.CommitRef{BranchRef: dotmesh.BranchRef{Dot: d.ID, Branch: "_recv-master"}, ID: c3}))
	must(b.n.Close())
	b.open(t)
	if got, err := os.ReadFile(file(b.n)); err != nil || string(got) != "two" {
		t.Fatalf("after the restart the receiver has %q, %v; want its head's \"two\"", got, err)
	}
	must(push())
	if got, err := os.ReadFile(file(b.n)); err != nil || string(got) != "three" {
		t.Fatalf("after pushing again the receiver has %q, %v; want \"three\"", got, err)
	}
}

// restartable is a Node on a pool of its own that a test can close and
// open again on the same pool and registry, as a restart does.
type restartable struct {
	opts  zfs.Options
	db    string
	paths string // PathsDir, if any
	n     *dotmesh.Node
	be    *zfs.Guarded
}

func newRestartable(t *testing.T, stablePaths bool) *restartable {
	t.Helper()
	pool, dir := zfstest.Pool(t)
	x := &restartable{opts: zfs.Options{Pool: pool, DataDir: dir, PoolSize: testPoolSize, Logger: logger()}, db: filepath.Join(t.TempDir(), "registry.db")}
	if stablePaths {
		x.paths = filepath.Join(t.TempDir(), "paths")
	}
	x.open(t)
	return x
}

func (x *restartable) open(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	be, err := zfs.Open(ctx, x.opts)
	if err != nil {
		t.Fatal(err)
	}
	store, err := bboltstore.Open(x.db, bboltstore.Options{Logger: logger()})
	if err != nil {
		t.Fatal(err)
	}
	if x.n, err = dotmesh.NewNode(ctx, dotmesh.Options{Store: store, Backends: []dotmesh.StorageBackend{be}, Logger: logger(), PathsDir: x.paths}); err != nil {
		t.Fatal(err)
	}
	x.be = be
}

// transportWithoutFinish sends commits but never finishes, as a transfer
// cut off before Finish.
type transportWithoutFinish struct{ dotmesh.Transport }

func (transportWithoutFinish) Finish(context.Context, dotmesh.DotName, string, dotmesh.FinishRequest) (*dotmesh.FinishResult, error) {
	return &dotmesh.FinishResult{}, nil
}

// TestNodeReceivedDotStaysUnmounted: a dot that only receives pushes is
// never mounted on the receiver, also not by a restart (which points the
// stable paths at the current branches again), until its path is asked
// for; its stable path then shows the pushed data.
func TestNodeReceivedDotStaysUnmounted(t *testing.T) {
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	a, b := newRestartable(t, true), newRestartable(t, true)
	defer func() { a.n.Close(); b.n.Close() }()
	name := dotmesh.DotName{Namespace: dotmesh.DefaultNamespace, Name: "app"}
	mounted := func(x *restartable) []string {
		t.Helper()
		out, err := exec.Command("zfs", "get", "-H", "-r", "-o", "name,value", "mounted", x.opts.Pool).CombinedOutput()
		if err != nil {
			t.Fatalf("zfs get mounted: %v: %s", err, out)
		}
		var m []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if f := strings.Fields(l); len(f) == 2 && f[1] == "yes" {
				m = append(m, f[0])
			}
		}
		return m
	}
	_, err := a.n.CreateDot(ctx, name, dotmesh.CreateDotOptions{})
	must(err)
	for _, s := range []string{"one", "two"} {
		p, err := a.n.SubdotPath(ctx, dotmesh.VolumeName{Dot: name})
		must(err)
		must(os.WriteFile(filepath.Join(p, "f"), []byte(s), 0o644))
		_, err = a.n.Commit(ctx, name, "", dotmesh.CommitOptions{Message: s})
		must(err)
		_, err = a.n.Push(ctx, name, "", dotmesh.LocalTransport(b.n), dotmesh.TransferOptions{})
		must(err)
	}
	if m := mounted(b); len(m) > 0 {
		t.Fatalf("after two pushes the receiver has %v mounted; want nothing", m)
	}
	must(b.n.Close())
	b.open(t)
	if m := mounted(b); len(m) > 0 {
		t.Fatalf("after a restart the receiver has %v mounted; want nothing (a dot nobody asked for stays unmounted)", m)
	}
	p, err := b.n.Path(ctx, dotmesh.VolumeName{Dot: name})
	must(err)
	if got, err := os.ReadFile(filepath.Join(p, "f")); err != nil || string(got) != "two" {
		t.Fatalf("the receiver's stable path %s shows %q, %v; want \"two\"", p, got, err)
	}
	if m := mounted(b); len(m) != 1 {
		t.Fatalf("after dm path the receiver has %v mounted; want its working state", m)
	}
}

// TestNodeRestartAfterHeadBeforeSwitch: a working state still marked
// pristine is switched without a journal record (pending.go), so a crash
// after the Node recorded the new head but before the deferred clone
// leaves it at the old commit; the restart moves it to the head. Here the
// state is made by switching the receiver's working state back by hand,
// which must write no record either, then restarting.
func TestNodeRestartAfterHeadBeforeSwitch(t *testing.T) {
	x := newPushPair(t)
	ctx, b, name, must, file, commitOnA := x.ctx, x.b, x.name, x.must, x.file, x.commitOnA
	push := func() { t.Helper(); must(x.push()) }
	commitOnA("one")
	push()
	c2 := commitOnA("two")
	push()
	commitOnA("three")
	push() // b's head is "three", its working state (never mounted) too
	d, err := b.n.Dot(ctx, name)
	must(err)
	must(b.be.Rollback(ctx, dotmesh.BranchRef{Dot: d.ID, Branch: "master"}, dotmesh.CommitRef{BranchRef: dotmesh.BranchRef{Dot: d.ID, Branch: "_recv-master"}, ID: c2}))
	var records []string
	_ = filepath.WalkDir(filepath.Join(b.opts.DataDir, "zfs-pending"), func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			records = append(records, p)
		}
		return nil
	})
	if len(records) > 0 {
		t.Errorf("switching a pristine working state wrote journal records %v", records)
	}
	must(b.n.Close())
	b.open(t)
	if got, err := os.ReadFile(file(b.n)); err != nil || string(got) != "three" {
		t.Fatalf("after the restart the receiver has %q, %v; want its head's \"three\"", got, err)
	}
}

// pushPair is two restartable nodes, a dot "app" created on a, and
// helpers that fail the test on errors: file is the dot's file f on a
// node, commitOnA writes it on a and commits, push pushes a to b.
type pushPair struct {
	ctx       context.Context
	a, b      *restartable
	name      dotmesh.DotName
	must      func(error)
	file      func(*dotmesh.Node) string
	commitOnA func(string) dotmesh.CommitID
	push      func() error
}

func newPushPair(t *testing.T) *pushPair {
	x := &pushPair{ctx: context.Background(), name: dotmesh.DotName{Namespace: dotmesh.DefaultNamespace, Name: "app"}}
	x.must = func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	x.a, x.b = newRestartable(t, false), newRestartable(t, false)
	t.Cleanup(func() { x.a.n.Close(); x.b.n.Close() })
	x.file = func(n *dotmesh.Node) string {
		t.Helper()
		p, err := n.SubdotPath(x.ctx, dotmesh.VolumeName{Dot: x.name})
		x.must(err)
		return filepath.Join(p, "f")
	}
	x.commitOnA = func(s string) dotmesh.CommitID {
		t.Helper()
		x.must(os.WriteFile(x.file(x.a.n), []byte(s), 0o644))
		c, err := x.a.n.Commit(x.ctx, x.name, "", dotmesh.CommitOptions{Message: s})
		x.must(err)
		return c.ID
	}
	x.push = func() error {
		_, err := x.a.n.Push(x.ctx, x.name, "", dotmesh.LocalTransport(x.b.n), dotmesh.TransferOptions{})
		return err
	}
	_, err := x.a.n.CreateDot(x.ctx, x.name, dotmesh.CreateDotOptions{})
	x.must(err)
	return x
}
