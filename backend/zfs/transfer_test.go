package zfs_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	bt "github.com/dotmesh-io/dotmesh/backend/backendtest"
	"github.com/dotmesh-io/dotmesh/backend/zfs/zfstest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func (x *h) send(c dotmesh.CommitRef, base *dotmesh.CommitRef) []byte {
	x.t.Helper()
	var buf bytes.Buffer
	x.must(x.b.Send(x.ctx, c, base, &buf), "Send")
	return buf.Bytes()
}

func (x *h) receive(c dotmesh.CommitRef, base *dotmesh.CommitRef, data []byte) error {
	return x.b.Receive(x.ctx, c, base, bytes.NewReader(data))
}

// assertNoStaging checks that no receive left anything behind.
func (x *h) assertNoStaging(when string) {
	x.t.Helper()
	for _, d := range x.datasets() {
		if strings.Contains(d, ".recv-") {
			x.t.Errorf("%s: leftover %s", when, d)
		}
	}
	out := zfstest.ZFS(x.t, "get", "-H", "-r", "-o", "name,value", "io.dotmesh:state", x.b.Root())
	if strings.Contains(out, "\trecv") || strings.Contains(out, "\tstaged") {
		x.t.Errorf("%s: leftover staging datasets:\n%s", when, out)
	}
}

// TestTransferClonesAndDivergence sends a branch that was cloned from
// another one (a clone stream), and a commit whose base is not the
// receiver's latest (received via clone and promote), into a second pool;
// damaged streams of every kind leave nothing.
func TestTransferClonesAndDivergence(t *testing.T) {
	src, dst := newH(t), newH(t)
	master := dotmesh.BranchRef{Dot: dotmesh.NewDotID(), Branch: "master"}
	feature := dotmesh.BranchRef{Dot: master.Dot, Branch: "feature"}
	src.must(src.b.CreateBranch(src.ctx, master, nil), "CreateBranch")
	v1 := bt.Tree{"db": bt.Dir(0o755), "db/f": bt.RandomFile(0o644, 200<<10, 1)}
	src.write(master, v1)
	c1 := src.commit(master)
	v2 := v1.Clone().Merge(bt.Tree{"db/g": bt.File(0o644, "two")})
	src.write(master, v2)
	c2 := src.commit(master)
	src.must(src.b.CreateBranch(src.ctx, feature, &c1), "CreateBranch feature")
	vf := v1.Clone().Merge(bt.Tree{"db/feature": bt.File(0o644, "f")})
	src.write(feature, vf)
	c3 := src.commit(feature)

	// Plain chain onto master, then the clone stream creates feature.
	dst.must(dst.receive(c1, nil, src.send(c1, nil)), "receive C1")
	dst.must(dst.receive(c2, &c1, src.send(c2, &c1)), "receive C2")
	dst.assertTree(master, v2)
	clone := src.send(c3, &c1)
	for _, bad := range damaged(clone) {
		err := dst.receive(c3, &c1, bad.data)
		if !errors.Is(err, dotmesh.ErrCorrupt) {
			t.Errorf("clone stream, %s: %v, want ErrCorrupt", bad.name, err)
		}
	}
	dst.assertNoStaging("after damaged clone streams")
	if _, err := dst.b.Commits(dst.ctx, feature); !errors.Is(err, dotmesh.ErrNotFound) {
		t.Errorf("a damaged clone stream created branch feature: %v", err)
	}
	dst.must(dst.receive(c3, &c1, clone), "receive C3 (clone stream)")
	dst.assertTree(feature, vf)
	dst.commits(feature, c3)
	dst.commits(master, c1, c2)

	// The sender resets master to C1 and commits C4: C4's stream is
	// incremental from C1, which is not the receiver's latest.
	src.must(src.b.Rollback(src.ctx, master, c1), "reset master")
	src.must(src.b.DeleteCommit(src.ctx, c2), "drop C2")
	v4 := v1.Clone().Merge(bt.Tree{"db/four": bt.File(0o644, "4")})
	src.write(master, v4)
	c4 := src.commit(master)
	diverged := src.send(c4, &c1)
	before := dst.datasets()
	for _, bad := range damaged(diverged) {
		err := dst.receive(c4, &c1, bad.data)
		if !errors.Is(err, dotmesh.ErrCorrupt) {
			t.Errorf("diverged stream, %s: %v, want ErrCorrupt", bad.name, err)
		}
	}
	dst.assertNoStaging("after damaged diverged streams")
	dst.assertTree(master, v2)
	dst.commits(master, c1, c2)
	dst.assertTree(feature, vf)
	if after := dst.datasets(); !slices.Equal(sortedSnapshots(before), sortedSnapshots(after)) {
		t.Errorf("damaged streams changed the snapshots:\nbefore %q\nafter  %q", before, after)
	}

	dst.write(master, bt.Tree{"db/uncommitted": bt.File(0o644, "u")})
	dst.must(dst.receive(c4, &c1, diverged), "receive C4 from C1")
	dst.assertTree(master, v4)
	dst.commits(master, c1, c2, c4)
	dst.must(dst.b.DeleteCommit(dst.ctx, c2), "drop C2 on the receiver")
	dst.commits(master, c1, c4)
	dst.assertTree(feature, vf)
	dst.must(dst.b.Rollback(dst.ctx, feature, c3), "rollback feature")
	// Both sides can go on sending incrementally from C4.
	src.write(master, bt.Tree{"db/five": bt.File(0o644, "5")})
	c5 := src.commit(master)
	dst.must(dst.receive(c5, &c4, src.send(c5, &c4)), "receive C5")
	dst.commits(master, c1, c4, c5)

	// Streams that do not match the call are refused without a trace.
	full := src.send(c1, nil)
	other := dotmesh.CommitRef{BranchRef: master, ID: dotmesh.NewCommitID()}
	if err := dst.receive(other, nil, full); !errors.Is(err, dotmesh.ErrCorrupt) {
		t.Errorf("stream of C1 received as another commit: %v, want ErrCorrupt", err)
	}
	inc := src.send(c5, &c4)
	if err := dst.receive(other, &c4, inc); !errors.Is(err, dotmesh.ErrCorrupt) {
		t.Errorf("incremental stream received as another commit: %v, want ErrCorrupt", err)
	}
	if err := dst.receive(c5, &c1, inc); !errors.Is(err, dotmesh.ErrInvalidArgument) {
		t.Errorf("incremental stream received with another base: %v, want ErrInvalidArgument", err)
	}
	if err := dst.receive(c5, &c4, inc); !errors.Is(err, dotmesh.ErrAlreadyExists) {
		t.Errorf("commit received twice: %v, want ErrAlreadyExists", err)
	}
	dst.assertNoStaging("at the end")
	t.Logf("receiver datasets: %q", dst.datasets())
}

type badStream struct {
	name string
	data []byte
}

// damaged returns variants of a stream that must all be refused.
func damaged(s []byte) []badStream {
	flip := func(i int) []byte { b := slices.Clone(s); b[i] ^= 0x01; return b }
	return []badStream{
		{"empty", nil},
		{"garbage", bt.RandomBytes(len(s), 9)},
		{"header only", s[:73]},
		{"cut in half", s[:len(s)/2]},
		{"END record missing", s[:len(s)-44-312]},
		{"trailer missing", s[:len(s)-44]},
		{"last byte missing", s[:len(s)-1]},
		{"byte flipped in the middle", flip(len(s) / 2)},
		{"byte flipped in the zfs header", flip(73 + 4 + 20)},
		{"checksum flipped", flip(len(s) - 1)},
		{"length in trailer changed", flip(len(s) - 33)},
		{"trailing garbage", append(slices.Clone(s[:len(s)-44]), bt.RandomBytes(100, 3)...)},
	}
}

func sortedSnapshots(ds []string) []string {
	var out []string
	for _, d := range ds {
		if _, snap, ok := strings.Cut(d, "@"); ok {
			out = append(out, snap)
		}
	}
	slices.Sort(out)
	return out
}

// TestTransferCloneStreamOntoLatest: a clone stream whose base is the
// latest snapshot of the receiving branch's own filesystem (where plain
// incremental streams go straight in, started before the stream's kind is
// known) still lands, through a staging filesystem.
func TestTransferCloneStreamOntoLatest(t *testing.T) {
	src, dst := newH(t), newH(t)
	master := dotmesh.BranchRef{Dot: dotmesh.NewDotID(), Branch: "master"}
	feature := dotmesh.BranchRef{Dot: master.Dot, Branch: "feature"}
	src.must(src.b.CreateBranch(src.ctx, master, nil), "CreateBranch")
	v1 := bt.Tree{"db": bt.Dir(0o755), "db/f": bt.RandomFile(0o644, 200<<10, 1)}
	src.write(master, v1)
	c1 := src.commit(master)
	src.must(src.b.CreateBranch(src.ctx, feature, &c1), "CreateBranch feature")
	vf := v1.Clone().Merge(bt.Tree{"db/feature": bt.File(0o644, "f")})
	src.write(feature, vf)
	c2 := src.commit(feature)

	// On dst both commits go to one branch: C1 is its latest snapshot
	// when C2's clone stream (base C1) arrives.
	r := dotmesh.BranchRef{Dot: master.Dot, Branch: "r"}
	at := func(c dotmesh.CommitRef) dotmesh.CommitRef { c.BranchRef = r; return c }
	r1, r2 := at(c1), at(c2)
	dst.must(dst.receive(r1, nil, src.send(c1, nil)), "receive C1")
	dst.must(dst.receive(r2, &r1, src.send(c2, &c1)), "receive C2 (clone stream)")
	dst.assertTree(r, vf)
	dst.commits(r, r1, r2)
	dst.assertNoStaging("after the clone stream")
}

// TestSendFromStaleListing: Send plans from the dot's last listing,
// however old. When a change behind the backend's back (a promote by
// hand) moved the base, zfs send refuses the stale pair before writing
// anything and Send lists the dot again: the stream is right.
func TestSendFromStaleListing(t *testing.T) {
	src, dst := newH(t), newH(t)
	master := dotmesh.BranchRef{Dot: dotmesh.NewDotID(), Branch: "master"}
	feature := dotmesh.BranchRef{Dot: master.Dot, Branch: "feature"}
	src.must(src.b.CreateBranch(src.ctx, master, nil), "CreateBranch")
	v1 := bt.Tree{"db": bt.Dir(0o755), "db/f": bt.RandomFile(0o644, 100<<10, 1)}
	src.write(master, v1)
	c1 := src.commit(master)
	v2 := v1.Clone().Merge(bt.Tree{"db/g": bt.File(0o644, "two")})
	src.write(master, v2)
	c2 := src.commit(master)
	dst.must(dst.receive(c1, nil, src.send(c1, nil)), "receive C1")
	src.must(src.b.CreateBranch(src.ctx, feature, &c1), "CreateBranch feature")
	var fs string
	for _, d := range src.datasets() {
		if strings.Contains(d, "/feature.") && !strings.Contains(d, "@") {
			fs = d
		}
	}
	if fs == "" {
		t.Fatalf("no filesystem of branch feature in %v", src.datasets())
	}
	zfstest.ZFS(t, "promote", src.b.Root()+"/"+fs) // C1 moves to feature's filesystem
	dst.must(dst.receive(c2, &c1, src.send(c2, &c1)), "receive C2, sent after the promote")
	dst.assertTree(master, v2)
	dst.commits(master, c1, c2)
	dst.assertNoStaging("after the receive")
}
