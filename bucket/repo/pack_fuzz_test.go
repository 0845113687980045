package repo

import (
	"bytes"
	"slices"
	"testing"
)

// FuzzDecodePackHeader: a pack header's decoder never panics, and what
// it accepts tiles the pack's blobs and encodes back to itself.
func FuzzDecodePackHeader(f *testing.F) {
	es := []packEntry{{ID: ID{1}, Offset: 0, Length: 100}, {ID: ID{2}, Offset: 100, Length: 7}}
	f.Add(encodePackHeader(es), int64(107))
	f.Add(encodePackHeader(nil), int64(0))
	f.Add([]byte{packVersion, 0xff, 0xff, 0xff, 0xff, 0x0f}, int64(1<<30))
	f.Fuzz(func(t *testing.T, b []byte, end int64) {
		got, err := decodePackHeader(b, end)
		if err != nil {
			return
		}
		var at int64
		for _, e := range got {
			if int64(e.Offset) != at || e.Length == 0 {
				t.Fatalf("entries %v do not tile from 0", got)
			}
			at = e.end()
		}
		if at != end {
			t.Fatalf("entries end at %d, not %d", at, end)
		}
		again, err := decodePackHeader(encodePackHeader(got), end)
		if err != nil || !slices.Equal(again, got) {
			t.Fatalf("re-encoded header decodes to %v, %v", again, err)
		}
	})
}

// FuzzDecodeIndex: an index object's decoder never panics, and what it
// accepts encodes back to itself.
func FuzzDecodeIndex(f *testing.F) {
	f.Add(encodeIndex([]indexPack{{Pack: ID{9}, Blobs: []packEntry{{ID: ID{1}, Offset: 0, Length: 100}, {ID: ID{2}, Offset: 5, Length: 1}}}}))
	f.Add(encodeIndex(nil))
	f.Add([]byte{indexVersion, 1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		ps, err := decodeIndex(b)
		if err != nil {
			return
		}
		for _, p := range ps {
			for _, e := range p.Blobs {
				if e.Length == 0 || e.end() > maxPackSize {
					t.Fatalf("entry %+v outside a pack", e)
				}
			}
		}
		if enc := encodeIndex(ps); !bytes.Equal(enc, b) {
			if again, err := decodeIndex(enc); err != nil || len(again) != len(ps) {
				t.Fatalf("re-encoded index decodes to %d packs, %v", len(again), err)
			}
		}
	})
}

// FuzzParsePack: a stored pack's parser (Check's, with the trailer and
// the sealed header) never panics on damage, and a sound pack parses.
func FuzzParsePack(f *testing.F) {
	cs := testCodecs(f)
	name := PackObject(ID{5})
	for _, c := range cs {
		var buf []byte
		var es []packEntry
		for _, data := range [][]byte{[]byte("one blob"), bytes.Repeat([]byte("two "), 100)} {
			id := c.blobID(ContentHash(data))
			s := c.seal(kindBlob, BlobObject(id), data, true)
			es = append(es, packEntry{ID: id, Offset: uint32(len(buf)), Length: uint32(len(s))})
			buf = append(buf, s...)
		}
		f.Add(c.sealPack(name, buf, es))
	}
	f.Add([]byte("DMPK"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for cn, c := range cs {
			es, bad, first, err := c.parsePack(name, b)
			if err != nil {
				continue
			}
			if len(bad) > 0 != (first != nil) {
				t.Fatalf("%s: %d bad blobs, first failure %v", cn, len(bad), first)
			}
			for _, e := range es {
				if e.end() > int64(len(b)) {
					t.Fatalf("%s: entry %+v outside the %d bytes", cn, e, len(b))
				}
			}
		}
	})
}

// FuzzParsePackName: pack and index object names parse to what names
// them.
func FuzzParsePackName(f *testing.F) {
	f.Add(PackObject(ID{1, 2, 3}))
	f.Add(indexObject(ID{4}))
	f.Add("packs/00/00")
	f.Fuzz(func(t *testing.T, name string) {
		if id, err := ParsePackObject(name); err == nil && PackObject(id) != name {
			t.Fatalf("%q parses to %s, named %q", name, id, PackObject(id))
		}
		if err := parseIndexObject(name); err == nil {
			id, _ := ParseID(name[len(indexDir):])
			if indexObject(id) != name {
				t.Fatalf("%q is taken as an index object, named %q", name, indexObject(id))
			}
		}
	})
}
