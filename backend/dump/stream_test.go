package dump

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/dump/cas"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func send(t testing.TB, b *Guarded, c dotmesh.CommitRef, base *dotmesh.CommitRef) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := b.Send(ctx, c, base, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestSendReceive(t *testing.T) {
	src, dst := openTest(t), openTest(t)
	br := newBranch(t, src)
	tree := treeOf(t, src, br)
	buildRichTree(t, tree)
	c1, _ := commit(t, src, br)
	want1 := digest(t, tree)
	writeFile(t, filepath.Join(tree, "__default__", "more"), randomBytes(9, 1<<20), 0o644)
	c2, _ := commit(t, src, br)
	want2 := digest(t, tree)

	full := send(t, src, c1, nil)
	// The commit lands on a branch with no working tree on the receiver.
	if err := dst.Receive(ctx, c1, nil, bytes.NewReader(full)); err != nil {
		t.Fatal(err)
	}
	if ids, _ := dst.Commits(ctx, br); len(ids) != 1 || ids[0] != c1.ID {
		t.Fatalf("received commit not listed: %v", ids)
	}
	if err := dst.Receive(ctx, c1, nil, bytes.NewReader(full)); !errors.Is(err, dotmesh.ErrAlreadyExists) {
		t.Fatalf("receiving a commit twice: %v", err)
	}

	incr := send(t, src, c2, &c1)
	if len(incr) > 1<<20+64<<10 {
		t.Fatalf("incremental stream is %d bytes for ~1 MiB of change", len(incr))
	}
	if err := dst.Receive(ctx, c2, &c1, bytes.NewReader(incr)); err != nil {
		t.Fatal(err)
	}

	// Working trees made from received commits equal the originals, and
	// the branch the commits sit on can get its tree too.
	if err := dst.CreateBranch(ctx, br, &c1); err != nil {
		t.Fatal(err)
	}
	sameTree(t, want1, digest(t, treeOf(t, dst, br)))
	nb := dotmesh.BranchRef{Dot: br.Dot, Branch: "other"}
	if err := dst.CreateBranch(ctx, nb, &c2); err != nil {
		t.Fatal(err)
	}
	sameTree(t, want2, digest(t, treeOf(t, dst, nb)))
	if err := dst.Check(ctx); err != nil {
		t.Fatal(err)
	}
	// Received commits can be sent on.
	third := openTest(t)
	if err := third.Receive(ctx, c2, nil, bytes.NewReader(send(t, dst, c2, nil))); err != nil {
		t.Fatal(err)
	}
}

func TestReceiveRejectsDamage(t *testing.T) {
	src := openTest(t)
	br := newBranch(t, src)
	tree := treeOf(t, src, br)
	writeFile(t, filepath.Join(tree, "a"), randomBytes(1, 700<<10), 0o644)
	writeFile(t, filepath.Join(tree, "b"), []byte("small file"), 0o644)
	c, _ := commit(t, src, br)
	stream := send(t, src, c, nil)

	dst := openTest(t)
	nothingVisible := func(what string, objectsKept bool) {
		t.Helper()
		if ids, _ := dst.Commits(ctx, br); len(ids) != 0 {
			t.Fatalf("%s: commit became visible", what)
		}
		objs := objectSet(t, dst)
		if !objectsKept && len(objs) != 0 {
			t.Fatalf("%s: %d objects became visible", what, len(objs))
		}
		// Objects kept from a stream that broke off are intact and
		// pinned for the commit, so a re-run need not send them.
		pinned := map[cas.Hash]struct{}{}
		if _, err := dst.b.pinned(pinned, false); err != nil {
			t.Fatal(err)
		}
		for h := range objs {
			if _, ok := pinned[h]; !ok {
				t.Fatalf("%s: object %s kept but not pinned", what, h)
			}
		}
		if err := dst.Check(ctx); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ents, _ := os.ReadDir(filepath.Join(dst.b.dir, "store", "staging")); len(ents) != 0 {
			t.Fatalf("%s: staging left behind", what)
		}
	}
	// Altered streams keep nothing.
	for _, pos := range []int{3, 12, 40, 100, len(stream) / 2, len(stream) - 300, len(stream) - 33, len(stream) - 2} {
		bad := append([]byte(nil), stream...)
		bad[pos] ^= 0x04
		err := dst.Receive(ctx, c, nil, bytes.NewReader(bad))
		if !errors.Is(err, dotmesh.ErrCorrupt) {
			t.Fatalf("byte %d of %d flipped: %v", pos, len(stream), err)
		}
		nothingVisible("flipped", false)
	}
	// A stream for another commit id.
	other := dotmesh.CommitRef{BranchRef: br, ID: dotmesh.NewCommitID()}
	if err := dst.Receive(ctx, other, nil, bytes.NewReader(stream)); err == nil {
		t.Fatal("stream accepted under another commit id")
	}
	nothingVisible("wrong id", false)
	// Streams that break off keep their intact objects, never a commit.
	for _, n := range []int{0, 5, 8, 9, 20, len(stream) / 3, len(stream) / 2, len(stream) - 40, len(stream) - 1} {
		err := dst.Receive(ctx, c, nil, bytes.NewReader(stream[:n]))
		if !errors.Is(err, dotmesh.ErrCorrupt) {
			t.Fatalf("stream truncated to %d of %d bytes: %v", n, len(stream), err)
		}
		nothingVisible("truncated", true)
	}
	if len(objectSet(t, dst)) == 0 {
		t.Fatal("a stream cut near its end kept no object")
	}
	// A reader that fails.
	if err := dst.Receive(ctx, c, nil, io.MultiReader(bytes.NewReader(stream[:100]), iotestErr{})); err == nil {
		t.Fatal("failing reader accepted")
	}
	nothingVisible("reader error", true)
	if err := dst.Receive(ctx, c, nil, bytes.NewReader(stream)); err != nil {
		t.Fatalf("intact stream after all that: %v", err)
	}
	if _, err := os.Stat(dst.b.pinPath(c)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the pin outlives the received commit: %v", err)
	}
}

type iotestErr struct{}

func (iotestErr) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

// An incremental stream needs its base on the receiver; without it the
// commit would be incomplete, so nothing must land.
func TestIncrementalNeedsBase(t *testing.T) {
	src, dst := openTest(t), openTest(t)
	br := newBranch(t, src)
	tree := treeOf(t, src, br)
	writeFile(t, filepath.Join(tree, "a"), randomBytes(1, 1<<20), 0o644)
	c1, _ := commit(t, src, br)
	writeFile(t, filepath.Join(tree, "b"), randomBytes(2, 1<<20), 0o644)
	c2, _ := commit(t, src, br)
	incr := send(t, src, c2, &c1)
	if err := dst.Receive(ctx, c2, &c1, bytes.NewReader(incr)); !errors.Is(err, dotmesh.ErrNotFound) {
		t.Fatalf("incremental receive without the base: %v", err)
	}
	if err := dst.Receive(ctx, c2, nil, bytes.NewReader(incr)); !errors.Is(err, dotmesh.ErrCorrupt) {
		t.Fatalf("incremental stream received as full: %v", err)
	}
	if ids, _ := dst.Commits(ctx, br); len(ids) != 0 {
		t.Fatalf("incomplete commit listed: %v", ids)
	}
}

// Hostile frames: lengths far beyond limits must fail before allocating.
func TestReceiveBoundsLengths(t *testing.T) {
	dst := openTest(t)
	c := dotmesh.CommitRef{BranchRef: dotmesh.BranchRef{Dot: dotmesh.NewDotID(), Branch: "master"}, ID: dotmesh.NewCommitID()}
	hdr := streamHeader{Dot: string(c.Dot), Branch: c.Branch, Commit: string(c.ID)}.encode()
	ihdr := streamHeader{Dot: string(c.Dot), Branch: c.Branch, Commit: string(c.ID), Base: string(dotmesh.NewCommitID())}.encode()
	mk := func(frames ...[]byte) []byte {
		out := []byte(streamMagic)
		for _, f := range frames {
			out = append(out, f...)
		}
		return out
	}
	frame := func(kind byte, n uint64, payload []byte) []byte {
		f := []byte{kind}
		for n >= 0x80 {
			f = append(f, byte(n)|0x80)
			n >>= 7
		}
		return append(append(f, byte(n)), payload...)
	}
	cases := map[string][]byte{
		"huge object":      mk(frame('H', uint64(len(hdr)), hdr), frame('O', 1<<40, nil)),
		"huge header":      mk(frame('H', 1<<30, nil)),
		"huge record":      mk(frame('H', uint64(len(hdr)), hdr), frame('R', 1<<30, nil)),
		"overlong varint":  mk(frame('H', uint64(len(hdr)), hdr), append([]byte{'O'}, bytes.Repeat([]byte{0xff}, 20)...)),
		"object first":     mk(frame('O', 40, make([]byte, 40))),
		"unknown frame":    mk(frame('H', uint64(len(hdr)), hdr), frame('X', 1, []byte{0})),
		"trailer early":    mk(frame('H', uint64(len(hdr)), hdr), frame('T', 2, []byte{0, 0})),
		"bad magic":        append([]byte("NOTDUMP!"), frame('H', uint64(len(hdr)), hdr)...),
		"short object":     mk(frame('H', uint64(len(hdr)), hdr), frame('O', 3, []byte{1, 2, 3})),
		"bogus object":     mk(frame('H', uint64(len(hdr)), hdr), frame('O', 40, make([]byte, 40))),
		"record not json":  mk(frame('H', uint64(len(hdr)), hdr), frame('R', 3, []byte("{{{")), frame('T', 34, make([]byte, 34))),
		"two headers":      mk(frame('H', uint64(len(hdr)), hdr), frame('H', uint64(len(hdr)), hdr)),
		"nothing after it": mk(frame('H', uint64(len(hdr)), hdr)),
		"huge delta":       mk(frame('H', uint64(len(ihdr)), ihdr), frame('D', 1<<40, nil)),
		"delta, full":      mk(frame('H', uint64(len(hdr)), hdr), frame('D', 70, make([]byte, 70))),
		"delta, no bases":  mk(frame('H', uint64(len(ihdr)), ihdr), frame('D', 40, make([]byte, 40))),
		"delta too short":  mk(frame('H', uint64(len(ihdr)), ihdr), frame('D', 3, []byte{1, 2, 3})),
	}
	for name, data := range cases {
		err := dst.Receive(ctx, c, nil, bytes.NewReader(data))
		if !errors.Is(err, dotmesh.ErrCorrupt) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// FuzzReceive feeds arbitrary bytes to Receive, as a full stream and as an
// incremental one (with deltas) to a node holding the base: it must fail
// cleanly or store a complete, verifiable commit; never panic, hang or
// allocate without bound.
func FuzzReceive(f *testing.F) {
	src := openTest(f)
	br := newBranch(f, src)
	tree := treeOf(f, src, br)
	writeFile(f, filepath.Join(tree, "d", "a"), []byte("alpha"), 0o644)
	os.Symlink("a", filepath.Join(tree, "d", "l"))
	c1, _ := commit(f, src, br)
	writeFile(f, filepath.Join(tree, "d", "b"), bytes.Repeat([]byte("beta"), 1000), 0o644)
	r := randomBytes(5, 8<<10)
	writeFile(f, filepath.Join(tree, "d", "r"), r, 0o644)
	c2, _ := commit(f, src, br)
	copy(r[1000:], "changed in place")
	writeFile(f, filepath.Join(tree, "d", "r"), r, 0o644)
	c3, _ := commit(f, src, br)
	full := send(f, src, c1, nil)
	f.Add(full)
	f.Add(send(f, src, c2, &c1))
	f.Add(full[:len(full)/2])
	withDelta := send(f, src, c3, &c2)
	if frameKinds(f, withDelta)[frameDelta] == 0 {
		f.Fatal("the incremental seed carries no delta")
	}
	f.Add(withDelta)

	dst, dst2 := openTest(f), openTest(f)
	if err := dst2.Receive(ctx, c2, nil, bytes.NewReader(send(f, src, c2, nil))); err != nil {
		f.Fatal(err)
	}
	try := func(t *testing.T, b *Guarded, c dotmesh.CommitRef, base *dotmesh.CommitRef, data []byte) {
		err := b.Receive(ctx, c, base, bytes.NewReader(data))
		if err != nil {
			if _, _, err := b.b.readRecord(c); err == nil {
				t.Fatal("failed receive left a commit")
			}
			return
		}
		// Accepted: it must be a complete commit.
		nb := dotmesh.BranchRef{Dot: br.Dot, Branch: "fuzz"}
		if err := b.CreateBranch(ctx, nb, &c); err != nil {
			t.Fatalf("accepted stream does not restore: %v", err)
		}
		b.DeleteBranch(ctx, nb)
		b.DeleteCommit(ctx, c)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		try(t, dst, c1, nil, data)
		try(t, dst2, c3, &c2, data)
	})
}
