package dump

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// sendWithout negotiates like a transfer does: list, ask dst, send the rest.
func sendWithout(t *testing.T, src, dst *Guarded, c dotmesh.CommitRef, base *dotmesh.CommitRef) (stream []byte, held int) {
	t.Helper()
	ids, err := src.StreamObjects(ctx, c, base)
	if err != nil {
		t.Fatal(err)
	}
	have, err := dst.HaveObjects(ctx, c, ids)
	if err != nil {
		t.Fatal(err)
	}
	var h []dotmesh.ObjectID
	for i, ok := range have {
		if ok {
			h = append(h, ids[i])
		}
	}
	var buf bytes.Buffer
	if err := src.SendWithout(ctx, c, base, h, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), len(h)
}

// TestReceiveResumesChunks cuts a stream in the middle of a large commit:
// the objects that arrived stay (published in steps, pinned), survive a
// garbage collection and a reopen, and the re-run's stream carries only
// the rest.
func TestReceiveResumesChunks(t *testing.T) {
	src := openTest(t)
	br := newBranch(t, src)
	tree := treeOf(t, src, br)
	const size = 16 << 20
	writeFile(t, filepath.Join(tree, "big"), randomBytes(7, size), 0o644)
	c, _ := commit(t, src, br)
	want := digest(t, tree)
	full := send(t, src, c, nil)

	dir := t.TempDir()
	dst, err := Open(dir, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	dst.b.recvFlushTest.Store(2 << 20)
	cut := len(full) * 6 / 10
	if err := dst.Receive(ctx, c, nil, io.MultiReader(bytes.NewReader(full[:cut]), iotestErr{})); err == nil {
		t.Fatal("a receive that broke off succeeded")
	}
	if ids, _ := dst.Commits(ctx, c.BranchRef); len(ids) != 0 {
		t.Fatal("the cut commit became visible")
	}
	// Neither a collection nor a restart loses what arrived.
	if st, err := dst.CollectGarbage(ctx); err != nil || st.ObjectsRemoved != 0 {
		t.Fatalf("GC removed pinned objects of a transfer in progress: %+v %v", st, err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	if dst, err = Open(dir, Options{Logger: testLogger(t)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dst.Close() })

	again, held := sendWithout(t, src, dst, c, nil)
	t.Logf("full stream %d bytes, cut at %d; resumed stream %d bytes (%d objects held)", len(full), cut, len(again), held)
	if held == 0 || len(again) > len(full)-cut+len(full)/10 {
		t.Fatalf("resumed stream is %d of %d bytes after %d had arrived", len(again), len(full), cut)
	}
	if err := dst.Receive(ctx, c, nil, bytes.NewReader(again)); err != nil {
		t.Fatal(err)
	}
	if err := dst.CreateBranch(ctx, br, &c); err != nil {
		t.Fatal(err)
	}
	sameTree(t, want, digest(t, treeOf(t, dst, br)))
	if err := dst.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dst.b.pinPath(c)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pin left after the commit arrived: %v", err)
	}
}

// TestHaveWantWithoutBase: a commit of another dot with a 1% change
// sends about the changed chunks, although the receiver has no commit of
// that dot to be incremental from.
func TestHaveWantWithoutBase(t *testing.T) {
	src, dst := openTest(t), openTest(t)
	br := newBranch(t, src)
	tree := treeOf(t, src, br)
	const size = 32 << 20
	data := randomBytes(3, size)
	writeFile(t, filepath.Join(tree, "big"), data, 0o644)
	c1, _ := commit(t, src, br)
	if err := dst.Receive(ctx, c1, nil, bytes.NewReader(send(t, src, c1, nil))); err != nil {
		t.Fatal(err)
	}

	br2 := newBranch(t, src) // another dot
	tree2 := treeOf(t, src, br2)
	changed := append([]byte(nil), data...)
	copy(changed[size/2:], randomBytes(4, size/100))
	writeFile(t, filepath.Join(tree2, "big"), changed, 0o644)
	c2, _ := commit(t, src, br2)
	want := digest(t, tree2)
	full := send(t, src, c2, nil)
	stream, held := sendWithout(t, src, dst, c2, nil)
	t.Logf("1%% change of %d bytes: whole stream %d bytes, have/want stream %d bytes (%d objects held)", size, len(full), len(stream), held)
	if len(stream) > size/100+2<<20 {
		t.Fatalf("have/want stream is %d bytes for a %d-byte change", len(stream), size/100)
	}
	if err := dst.Receive(ctx, c2, nil, bytes.NewReader(stream)); err != nil {
		t.Fatal(err)
	}
	if err := dst.CreateBranch(ctx, br2, &c2); err != nil {
		t.Fatal(err)
	}
	sameTree(t, want, digest(t, treeOf(t, dst, br2)))
}

// TestPinsExpireAndGuard: objects a receiver said it holds are kept by
// GC until the commit arrives; an abandoned pin expires.
func TestPinsExpireAndGuard(t *testing.T) {
	src, dst := openTest(t), openTest(t)
	br := newBranch(t, src)
	writeFile(t, filepath.Join(treeOf(t, src, br), "f"), randomBytes(5, 4<<20), 0o644)
	c, _ := commit(t, src, br)
	full := send(t, src, c, nil)
	if err := dst.Receive(ctx, c, nil, io.MultiReader(bytes.NewReader(full[:len(full)/2]), iotestErr{})); err == nil {
		t.Fatal("cut receive succeeded")
	}
	n := len(objectSet(t, dst))
	if n == 0 {
		t.Fatal("nothing kept")
	}
	if st, _ := dst.CollectGarbage(ctx); st.ObjectsRemoved != 0 {
		t.Fatalf("GC removed %d pinned objects", st.ObjectsRemoved)
	}
	if plan, _ := dst.PlanGarbage(ctx, nil); plan.ObjectsRemoved != 0 {
		t.Fatalf("GC plan counts %d pinned objects", plan.ObjectsRemoved)
	}
	old := time.Now().Add(-dotmesh.DefaultTransferPin - time.Hour)
	if err := os.Chtimes(dst.b.pinPath(c), old, old); err != nil {
		t.Fatal(err)
	}
	if st, _ := dst.CollectGarbage(ctx); st.ObjectsRemoved != int64(n) {
		t.Fatalf("GC removed %d of %d objects of an expired pin", st.ObjectsRemoved, n)
	}
	if _, err := os.Stat(dst.b.pinPath(c)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("expired pin not removed")
	}
	// Bad ids from a peer are refused and pin nothing.
	for _, ids := range [][]dotmesh.ObjectID{{"zz"}, {"abcd"}, make([]dotmesh.ObjectID, dotmesh.MaxObjectBatch+1)} {
		if _, err := dst.HaveObjects(ctx, c, ids); !errors.Is(err, dotmesh.ErrInvalidArgument) {
			t.Fatalf("HaveObjects(%d bad ids): %v", len(ids), err)
		}
	}
	if _, err := os.Stat(dst.b.pinPath(c)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("bad ids made a pin")
	}
}

// TestDiscardReceives: the objects an interrupted receive kept, and those
// HaveObjects promised, are garbage once the node discards the receives
// onto their branch; pins of another branch stay.
func TestDiscardReceives(t *testing.T) {
	src, dst := openTest(t), openTest(t)
	br := newBranch(t, src)
	writeFile(t, filepath.Join(treeOf(t, src, br), "f"), randomBytes(6, 4<<20), 0o644)
	c, _ := commit(t, src, br)
	full := send(t, src, c, nil)
	if err := dst.Receive(ctx, c, nil, io.MultiReader(bytes.NewReader(full[:len(full)/2]), iotestErr{})); err == nil {
		t.Fatal("cut receive succeeded")
	}
	n := len(objectSet(t, dst))
	other := dotmesh.CommitRef{BranchRef: dotmesh.BranchRef{Dot: c.Dot, Branch: "_recv-other"}, ID: c.ID}
	ids, err := src.StreamObjects(ctx, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dst.HaveObjects(ctx, other, ids[:1]); err != nil {
		t.Fatal(err)
	}
	if st, _ := dst.CollectGarbage(ctx); st.ObjectsRemoved != 0 {
		t.Fatalf("GC removed %d pinned objects", st.ObjectsRemoved)
	}
	if err := dst.DiscardReceives(ctx, c.BranchRef); err != nil {
		t.Fatal(err)
	}
	if st, _ := dst.CollectGarbage(ctx); st.ObjectsRemoved != int64(n-1) {
		t.Fatalf("GC removed %d of the %d objects of discarded receives (one is pinned for another branch)", st.ObjectsRemoved, n-1)
	}
	if err := dst.DiscardReceives(ctx, other.BranchRef); err != nil {
		t.Fatal(err)
	}
	if st, _ := dst.CollectGarbage(ctx); st.ObjectsRemoved != 1 {
		t.Fatalf("GC removed %d objects after the other branch's receives were discarded; want 1", st.ObjectsRemoved)
	}
}
