package dump

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/dump/cas"
	"github.com/dotmesh-io/dotmesh/backend/dump/internal/delta"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// frameKinds counts a stream's frames by kind.
func frameKinds(t testing.TB, stream []byte) map[byte]int {
	t.Helper()
	kinds := map[byte]int{}
	err := readStream(bytes.NewReader(stream), streamHandler{
		header: func(streamHeader) error { kinds[frameHeader]++; return nil },
		object: func(cas.Hash, []byte) error { kinds[frameObject]++; return nil },
		delta:  func(cas.Hash, []cas.Hash, []byte) error { kinds[frameDelta]++; return nil },
		record: func([]byte) error { kinds[frameRecord]++; return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	return kinds
}

// deltaPair makes two commits of a tree whose big file changes a little,
// in place and by an insertion, and has dst hold the first.
func deltaPair(t testing.TB, size int) (src, dst *Guarded, c1, c2 dotmesh.CommitRef, want []string) {
	src, dst = openTest(t), openTest(t)
	br := newBranch(t, src)
	tree := treeOf(t, src, br)
	big := randomBytes(1, size)
	writeFile(t, filepath.Join(tree, "big"), big, 0o644)
	writeFile(t, filepath.Join(tree, "other"), randomBytes(2, size/2), 0o644)
	c1, _ = commit(t, src, br)
	copy(big[size/3+7:], randomBytes(3, 3000))
	writeFile(t, filepath.Join(tree, "big"), big, 0o644)
	other := randomBytes(2, size/2)
	other = append(other[:size/4+11], append(randomBytes(4, 500), other[size/4+11:]...)...)
	writeFile(t, filepath.Join(tree, "other"), other, 0o644)
	c2, _ = commit(t, src, br)
	want = digest(t, tree)
	if err := dst.Receive(ctx, c1, nil, bytes.NewReader(send(t, src, c1, nil))); err != nil {
		t.Fatal(err)
	}
	return src, dst, c1, c2, want
}

func TestDeltaStream(t *testing.T) {
	src, dst, c1, c2, want := deltaPair(t, 3<<20)
	if k := frameKinds(t, send(t, src, c1, nil)); k[frameDelta] != 0 {
		t.Fatalf("a full stream carries %d deltas", k[frameDelta])
	}
	incr := send(t, src, c2, &c1)
	k := frameKinds(t, incr)
	if k[frameDelta] < 2 {
		t.Fatalf("incremental stream carries %d deltas and %d objects", k[frameDelta], k[frameObject])
	}
	if len(incr) > 16<<10 {
		t.Fatalf("incremental stream of 3.5 KB of change is %d bytes", len(incr))
	}
	if err := dst.Receive(ctx, c2, &c1, bytes.NewReader(incr)); err != nil {
		t.Fatal(err)
	}
	nb := dotmesh.BranchRef{Dot: c2.Dot, Branch: "check"}
	if err := dst.CreateBranch(ctx, nb, &c2); err != nil {
		t.Fatal(err)
	}
	sameTree(t, want, digest(t, treeOf(t, dst, nb)))
	if err := dst.Check(ctx); err != nil {
		t.Fatal(err)
	}
	// Objects rebuilt from deltas are stored whole: they can be sent on
	// in full.
	third := openTest(t)
	if err := third.Receive(ctx, c2, nil, bytes.NewReader(send(t, dst, c2, nil))); err != nil {
		t.Fatal(err)
	}
}

// Hostile deltas fail with ErrCorrupt in one line and change nothing.
func TestReceiveRejectsBadDeltas(t *testing.T) {
	src, dst, c1, c2, _ := deltaPair(t, 1<<20)
	rec, _, err := src.b.readRecord(c2)
	if err != nil {
		t.Fatal(err)
	}
	recData, _ := json.Marshal(rec)
	// A real base, as the receiver holds it.
	_, root1, _ := dst.b.readRecord(c1)
	m1, err := loadManifest(dst.b.store, root1)
	if err != nil {
		t.Fatal(err)
	}
	var baseHash cas.Hash
	for _, e := range m1.Entries {
		if e.Path == "big" {
			baseHash = e.Chunks[0].Hash
		}
	}
	base, err := dst.b.store.Get(baseHash, nil)
	if err != nil {
		t.Fatal(err)
	}
	target := append([]byte("changed"), base[7:]...)
	good := delta.Encode(nil, base, target)

	stream := func(h cas.Hash, nbases int, bases []cas.Hash, d []byte) []byte {
		var buf bytes.Buffer
		sw, _ := newStreamWriter(&buf)
		sw.frame(frameHeader, streamHeader{Dot: string(c2.Dot), Branch: c2.Branch, Commit: string(c2.ID), Base: string(c1.ID)}.encode())
		p := append(append([]byte(nil), h[:]...), byte(nbases))
		for _, b := range bases {
			p = append(p, b[:]...)
		}
		sw.objects++
		sw.bytes += uint64(len(p) + len(d))
		sw.frame(frameDelta, p, d)
		sw.frame(frameRecord, recData)
		sw.finish()
		return buf.Bytes()
	}
	missing := cas.Sum([]byte("not held here"))
	one := []cas.Hash{baseHash}
	cases := []struct {
		name, msg string
		data      []byte
	}{
		{"base missing", "base object missing", stream(cas.Sum(target), 1, []cas.Hash{missing}, good)},
		{"copy out of bounds", "outside", stream(cas.Sum(target), 1, one, []byte{8, 8<<1 | 1, 0xf0, 0xff, 0x3f})},
		{"result too big", "exceeds", stream(cas.Sum(target), 1, one, []byte{0x80, 0x80, 0x80, 0x10})},
		{"hash mismatch", "another hash", stream(cas.Sum([]byte("something else")), 1, one, good)},
		{"no bases", "bases", stream(cas.Sum(target), 0, nil, good)},
		{"too many bases", "bases", stream(cas.Sum(target), 5, []cas.Hash{baseHash, baseHash, baseHash, baseHash, baseHash}, good)},
		{"bases cut short", "bases", stream(cas.Sum(target), 3, one, nil)},
	}
	before := objectSet(t, dst)
	for _, c := range cases {
		err := dst.Receive(ctx, c2, &c1, bytes.NewReader(c.data))
		if !errors.Is(err, dotmesh.ErrCorrupt) || !strings.Contains(err.Error(), c.msg) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v", c.name, err)
		}
		if ids, _ := dst.Commits(ctx, c2.BranchRef); len(ids) != 1 {
			t.Fatalf("%s: commits %v", c.name, ids)
		}
		if after := objectSet(t, dst); len(after) != len(before) {
			t.Fatalf("%s: %d objects before, %d after", c.name, len(before), len(after))
		}
		if _, err := os.Stat(dst.b.pinPath(c2)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s: pin left: %v", c.name, err)
		}
	}
	if err := dst.Check(ctx); err != nil {
		t.Fatal(err)
	}
	// A well-formed delta is accepted (the commit then lacks its other
	// objects, which is a different error).
	err = dst.Receive(ctx, c2, &c1, bytes.NewReader(stream(cas.Sum(target), 1, one, good)))
	if err == nil || strings.Contains(err.Error(), "delta") {
		t.Fatalf("valid delta: %v", err)
	}
	if ok, _ := dst.b.store.Has(cas.Sum(target)); !ok {
		t.Fatal("the object of a valid delta was not stored")
	}
}
