package dump

import (
	"bytes"
	"errors"
	"reflect"
	"sort"
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/dump/cas"
)

func sampleManifest() *Manifest {
	h1, h2 := cas.Sum([]byte("one")), cas.Sum([]byte("two"))
	return &Manifest{Entries: []Entry{
		{Path: "a", Type: TypeDir, Mode: 0o755, UID: 1000, GID: 1000, MTime: 1700000000123456789, Dev: 2049, Inode: 12, CTime: 1700000000000000001},
		{Path: "a/b", Type: TypeDir, Mode: 0o700, MTime: 1},
		{Path: "a/b/f", Type: TypeFile, Mode: 0o4755, Size: 3 + 3, Chunks: []Chunk{{h1, 3}, {h2, 3}}, MTime: -5},
		{Path: "a/empty", Type: TypeFile, Mode: 0o600},
		{Path: "a.b", Type: TypeSymlink, Mode: 0o777, Target: "/etc/passwd"},
		{Path: "z", Type: TypeSymlink, Mode: 0o777, Target: "a/b/../../z"},
	}}
}

func TestManifestRoundTrip(t *testing.T) {
	m := sampleManifest()
	enc := m.Encode()
	got, err := DecodeManifest(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, got) {
		t.Fatalf("round trip differs:\n%+v\n%+v", m, got)
	}
	if !bytes.Equal(enc, got.Encode()) {
		t.Fatal("encoding is not deterministic")
	}
	empty, err := DecodeManifest((&Manifest{}).Encode())
	if err != nil || len(empty.Entries) != 0 {
		t.Fatalf("empty manifest: %v", err)
	}
}

func TestPathOrderMatchesWalk(t *testing.T) {
	paths := []string{"a.b", "a/b", "a", "a/b/c", "a-", "b", "a/b.c", "a/b/c/d"}
	sort.Slice(paths, func(i, j int) bool { return lessPath(paths[i], paths[j]) })
	want := []string{"a", "a/b", "a/b/c", "a/b/c/d", "a/b.c", "a-", "a.b", "b"}
	if !reflect.DeepEqual(paths, want) {
		t.Fatalf("got %v, want %v", paths, want)
	}
}

func TestManifestRejectsHostileInput(t *testing.T) {
	h := cas.Sum([]byte("x"))
	cases := map[string][]Entry{
		"dotdot":          {{Path: "..", Type: TypeDir}},
		"escape":          {{Path: "a", Type: TypeDir}, {Path: "a/../../x", Type: TypeFile}},
		"absolute":        {{Path: "/etc", Type: TypeDir}},
		"double slash":    {{Path: "a", Type: TypeDir}, {Path: "a//b", Type: TypeFile}},
		"trailing slash":  {{Path: "a/", Type: TypeDir}},
		"dot":             {{Path: ".", Type: TypeDir}},
		"no parent":       {{Path: "a/b", Type: TypeFile}},
		"through symlink": {{Path: "a", Type: TypeSymlink, Target: "/etc"}, {Path: "a/passwd", Type: TypeFile}},
		"through file":    {{Path: "a", Type: TypeFile}, {Path: "a/b", Type: TypeFile}},
		"duplicate":       {{Path: "a", Type: TypeFile}, {Path: "a", Type: TypeFile}},
		"out of order":    {{Path: "b", Type: TypeFile}, {Path: "a", Type: TypeFile}},
		"size mismatch":   {{Path: "f", Type: TypeFile, Size: 10, Chunks: []Chunk{{h, 3}}}},
		"empty chunk":     {{Path: "f", Type: TypeFile, Chunks: []Chunk{{h, 0}}}},
		"empty target":    {{Path: "l", Type: TypeSymlink}},
		"nul in name":     {{Path: "a\x00b", Type: TypeFile}},
		"bad type":        {{Path: "x", Type: 9}},
		"mode too big":    {{Path: "x", Type: TypeDir, Mode: 0o10000}},
	}
	for name, entries := range cases {
		_, err := DecodeManifest((&Manifest{Entries: entries}).Encode())
		if !errors.Is(err, errManifest) {
			t.Errorf("%s: accepted or wrong error: %v", name, err)
		}
	}
	good := sampleManifest().Encode()
	for _, n := range []int{0, 3, len(good) / 2, len(good) - 1} {
		if _, err := DecodeManifest(good[:n]); err == nil {
			t.Errorf("truncated to %d bytes: accepted", n)
		}
	}
	if _, err := DecodeManifest(append(good, 0)); err == nil {
		t.Error("trailing garbage accepted")
	}
}

func TestRootObjectRoundTrip(t *testing.T) {
	pieces := []Chunk{{cas.Sum([]byte("a")), 10}, {cas.Sum([]byte("b")), 20}}
	got, err := decodeRoot(encodeRoot(pieces))
	if err != nil || !reflect.DeepEqual(got, pieces) {
		t.Fatalf("%v %v", got, err)
	}
}

// FuzzDecodeManifest: any input either fails cleanly or decodes to a
// manifest that re-encodes to the same bytes and has only safe paths.
func FuzzDecodeManifest(f *testing.F) {
	f.Add(sampleManifest().Encode())
	f.Add((&Manifest{}).Encode())
	f.Add([]byte(manifestMagic + "\xff\xff\xff\xff\x0f"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeManifest(data)
		if err != nil {
			if !errors.Is(err, errManifest) {
				t.Fatalf("error does not wrap errManifest: %v", err)
			}
			return
		}
		if !bytes.Equal(m.Encode(), data) {
			t.Fatal("decoded manifest re-encodes differently")
		}
		for _, e := range m.Entries {
			if checkPath(e.Path) != nil {
				t.Fatalf("unsafe path %q accepted", e.Path)
			}
		}
	})
}
