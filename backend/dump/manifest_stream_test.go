package dump

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/dump/cas"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// pieceGetter serves a manifest's encoding cut into pieces, under made-up
// names: what manifestIter reads, without a store around it (the parser
// is under test; the store's own tests cover Get).
type pieceGetter map[cas.Hash][]byte

func (g pieceGetter) Get(h cas.Hash, _ []byte) ([]byte, error) {
	if d, ok := g[h]; ok {
		return d, nil
	}
	return nil, fmt.Errorf("object %s: %w", h, dotmesh.ErrNotFound)
}

// splitManifest cuts data into pieces of size step (the last shorter)
// and returns a getter and the root's name.
func splitManifest(data []byte, step int) (pieceGetter, cas.Hash) {
	g := pieceGetter{}
	var pieces []Chunk
	for off := 0; off < len(data); off += step {
		p := data[off:min(off+step, len(data))]
		h := cas.Hash{1, byte(len(pieces)), byte(len(pieces) >> 8), byte(len(pieces) >> 16)}
		g[h] = p
		pieces = append(pieces, Chunk{Hash: h, Size: uint32(len(p))})
	}
	root := cas.Hash{2}
	g[root] = encodeRoot(pieces)
	return g, root
}

// iterAll reads every entry through manifestIter.
func iterAll(g objectGetter, root cas.Hash) ([]Entry, error) {
	it, err := iterManifest(g, root)
	if err != nil {
		return nil, err
	}
	var out []Entry
	for {
		var e Entry
		ok, err := it.next(&e)
		if err != nil {
			return nil, err
		}
		if !ok {
			return out, nil
		}
		out = append(out, e)
	}
}

func TestManifestStreams(t *testing.T) {
	m := sampleManifest()
	enc, err := io.ReadAll(newManifestReader(m))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(enc, m.Encode()) {
		t.Fatal("manifestReader's bytes differ from Encode's")
	}
	for _, step := range []int{1, 2, 7, 64, len(enc)} {
		got, err := iterAll(splitManifest(enc, step))
		if err != nil {
			t.Fatalf("pieces of %d bytes: %v", step, err)
		}
		if !reflect.DeepEqual(got, m.Entries) {
			t.Fatalf("pieces of %d bytes: entries differ:\n%+v\n%+v", step, got, m.Entries)
		}
	}
	if _, err := iterAll(splitManifest(enc[:len(enc)-1], 5)); !errors.Is(err, dotmesh.ErrCorrupt) {
		t.Fatalf("a truncated manifest read as %v; want ErrCorrupt", err)
	}
	if _, err := iterAll(splitManifest(append(enc, 0), 5)); !errors.Is(err, dotmesh.ErrCorrupt) {
		t.Fatalf("a manifest with a trailing byte read as %v; want ErrCorrupt", err)
	}
}

// FuzzManifestIter: reading a manifest piece by piece accepts exactly
// what DecodeManifest accepts, with the same entries, wherever the
// pieces are cut.
func FuzzManifestIter(f *testing.F) {
	f.Add(sampleManifest().Encode(), uint8(3))
	f.Add((&Manifest{}).Encode(), uint8(1))
	f.Add([]byte(manifestMagic+"\x01\x01a\x01"), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, step uint8) {
		want, werr := DecodeManifest(data)
		got, gerr := iterAll(splitManifest(data, int(step)+1))
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("DecodeManifest: %v; manifestIter: %v", werr, gerr)
		}
		if gerr != nil {
			if !errors.Is(gerr, dotmesh.ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", gerr)
			}
			return
		}
		if len(got) != len(want.Entries) || len(got) > 0 && !reflect.DeepEqual(got, want.Entries) {
			t.Fatalf("entries differ:\n%+v\n%+v", got, want.Entries)
		}
	})
}

// A manifestCursor finds the entries a walk asks for in tree order,
// hands every other one to passed exactly once (on the way or at the
// drain) and reports a damaged manifest.
func TestManifestCursor(t *testing.T) {
	m := sampleManifest() // a, a/b, a/b/f, a/empty, a.b, z
	g, root := splitManifest(m.Encode(), 7)
	it, err := iterManifest(g, root)
	if err != nil {
		t.Fatal(err)
	}
	c, err := newManifestCursor(it)
	if err != nil {
		t.Fatal(err)
	}
	var passed []string
	pass := func(e *Entry) { passed = append(passed, e.Path) }
	for _, q := range []struct {
		path  string
		found bool
	}{{"a", true}, {"a/b/f", true}, {"a/c", false}, {"a.b", true}} {
		e, err := c.seek(q.path, pass)
		if err != nil {
			t.Fatal(err)
		}
		if (e != nil) != q.found || e != nil && e.Path != q.path {
			t.Fatalf("seek(%q) = %+v; want found=%v", q.path, e, q.found)
		}
	}
	if err := c.drain(pass); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a/b", "a/empty", "z"}; !reflect.DeepEqual(passed, want) {
		t.Fatalf("passed %q; want %q", passed, want)
	}
	if e, err := c.seek("zz", pass); e != nil || err != nil {
		t.Fatalf("seek after the end: %+v, %v", e, err)
	}

	enc := m.Encode()
	it, err = iterManifest(splitManifest(enc[:len(enc)-1], 5))
	if err != nil {
		t.Fatal(err)
	}
	if c, err = newManifestCursor(it); err != nil {
		t.Fatal(err)
	}
	if err := c.drain(nil); !errors.Is(err, dotmesh.ErrCorrupt) {
		t.Fatalf("a truncated manifest drained with %v; want ErrCorrupt", err)
	}
	if empty, err := newManifestCursor(nil); err != nil || empty.drain(pass) != nil {
		t.Fatalf("a cursor without a manifest: %v", err)
	}
}
