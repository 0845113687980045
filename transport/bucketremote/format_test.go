package bucketremote_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/bucket/repo"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/transport/bucketremote"
	"github.com/dotmesh-io/dotmesh/transport/neutral"
)

func sampleTree() []bucketremote.TreeEntry {
	mt := time.Unix(1700000000, 123456789)
	h := func(b byte) [32]byte { return [32]byte{b, 1, 2, 3} }
	return []bucketremote.TreeEntry{
		{Entry: neutral.Entry{Kind: neutral.KindDir, Path: "db", Mode: 0o750, MTime: mt}},
		{Entry: neutral.Entry{Kind: neutral.KindFile, Path: "db/base", Mode: 0o600, MTime: mt, Size: 300}, Chunks: []bucketremote.Chunk{{Hash: h(1), Length: 100}, {Hash: h(2), Length: 200}}},
		{Entry: neutral.Entry{Kind: neutral.KindFile, Path: "db/empty", Mode: 0o644, MTime: time.Unix(-5, 0)}},
		{Entry: neutral.Entry{Kind: neutral.KindSymlink, Path: "db/link", Mode: 0o777, MTime: mt, Target: "../x"}},
		{Entry: neutral.Entry{Kind: neutral.KindDir, Path: "dc", Mode: 0o755, MTime: mt}},
	}
}

func encodeTree(t testing.TB, entries []bucketremote.TreeEntry) []byte {
	var buf bytes.Buffer
	enc := bucketremote.NewTreeEncoder(&buf)
	for _, e := range entries {
		require.NoError(t, enc.Add(e))
	}
	require.NoError(t, enc.Close())
	return buf.Bytes()
}

func decodeTree(b []byte) ([]bucketremote.TreeEntry, error) {
	d, err := bucketremote.NewTreeDecoder(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	var out []bucketremote.TreeEntry
	for {
		e, err := d.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
}

func TestTreeRoundTrip(t *testing.T) {
	in := sampleTree()
	b := encodeTree(t, in)
	out, err := decodeTree(b)
	require.NoError(t, err)
	require.Len(t, out, len(in))
	for i := range in {
		require.Equal(t, in[i].Kind, out[i].Kind)
		require.Equal(t, in[i].Path, out[i].Path)
		require.Equal(t, in[i].Mode, out[i].Mode)
		require.True(t, in[i].MTime.Equal(out[i].MTime))
		require.Equal(t, in[i].Size, out[i].Size)
		require.Equal(t, in[i].Target, out[i].Target)
		require.Equal(t, len(in[i].Chunks), len(out[i].Chunks))
		for k := range in[i].Chunks {
			require.Equal(t, in[i].Chunks[k], out[i].Chunks[k])
		}
	}
	// Paths share prefixes: "db/base" stores "base" after "db".
	require.NotContains(t, string(b), "db/base")
}

// Every cut of a tree encoding, and every changed version byte, is an
// error wrapping ErrCorrupt; so are entries that break the rules.
func TestTreeDecodeDamaged(t *testing.T) {
	b := encodeTree(t, sampleTree())
	for n := 0; n < len(b); n++ {
		_, err := decodeTree(b[:n])
		require.ErrorIs(t, err, dotmesh.ErrCorrupt, "cut at %d", n)
	}
	_, err := decodeTree(append(bytes.Clone(b), 0))
	require.ErrorIs(t, err, dotmesh.ErrCorrupt, "bytes after the end")
	v2 := bytes.Clone(b)
	v2[3] = 2
	_, err = decodeTree(v2)
	require.ErrorIs(t, err, dotmesh.ErrCorrupt)
	require.Contains(t, err.Error(), "version 2")

	var buf bytes.Buffer
	enc := bucketremote.NewTreeEncoder(&buf)
	for _, bad := range []bucketremote.TreeEntry{
		{Entry: neutral.Entry{Kind: neutral.KindFile, Path: "../escape"}},
		{Entry: neutral.Entry{Kind: neutral.KindFile, Path: "/abs"}},
		{Entry: neutral.Entry{Kind: neutral.KindFile, Path: "a//b"}},
		{Entry: neutral.Entry{Kind: neutral.KindFile, Path: "f", Size: 5}},
		{Entry: neutral.Entry{Kind: neutral.KindFile, Path: "f", Size: 5}, Chunks: []bucketremote.Chunk{{Length: 4}}},
		{Entry: neutral.Entry{Kind: neutral.KindDir, Path: "d", Mode: 0o4755}},
		{Entry: neutral.Entry{Kind: neutral.KindSymlink, Path: "l"}},
		{Entry: neutral.Entry{Kind: 'x', Path: "x"}},
	} {
		require.ErrorIs(t, enc.Add(bad), dotmesh.ErrCorrupt, "%+v", bad)
	}
}

// A tree's encoding deduplicates: an unchanged run of entries encodes
// to the same bytes whatever comes before it (but the previous path).
func TestTreeEncodingLocal(t *testing.T) {
	tr := sampleTree()
	a := encodeTree(t, tr)
	extra := bucketremote.TreeEntry{Entry: neutral.Entry{Kind: neutral.KindDir, Path: "a", Mode: 0o755}}
	b := encodeTree(t, append([]bucketremote.TreeEntry{extra}, tr...))
	// Everything but the magic and the end (entry count) is shared.
	require.True(t, bytes.Contains(b, a[4:len(a)-2]))
}

func TestCommitRecordRoundTrip(t *testing.T) {
	rec := &bucketremote.CommitRecord{
		Commit: dotmesh.Commit{ID: dotmesh.NewCommitID(), Parent: dotmesh.NewCommitID(), Author: "a", Message: "m", Time: time.Now().UTC(), Metadata: map[string]string{"k": "v"}, Pruned: true},
		Tree:   []repo.ID{{1}, {2}},
		Files:  3, Dirs: 1, Bytes: 100, Chunks: 4, TreeBytes: 80,
	}
	got, err := bucketremote.DecodeCommitRecord(bucketremote.EncodeCommitRecord(rec))
	require.NoError(t, err)
	rec.Version = 1
	require.Equal(t, rec.Tree, got.Tree)
	require.Equal(t, rec.Commit.ID, got.Commit.ID)
	require.True(t, got.Commit.Pruned)
	require.Equal(t, rec.Files, got.Files)

	for _, bad := range []string{
		``, `[]`, `{"v":2}`,
		`{"v":1,"commit":{"id":"nothex"},"tree":["` + strings.Repeat("0", 64) + `"]}`,
		`{"v":1,"commit":{"id":"` + string(rec.Commit.ID) + `"},"tree":[]}`,
		`{"v":1,"commit":{"id":"` + string(rec.Commit.ID) + `"},"tree":["xyz"]}`,
		`{"v":1,"commit":{"id":"` + string(rec.Commit.ID) + `","metadata":{"a b":"c"}},"tree":["` + strings.Repeat("0", 64) + `"]}`,
		`{"v":1,"commit":{"id":"` + string(rec.Commit.ID) + `"},"tree":["` + strings.Repeat("0", 64) + `"],"files":-1}`,
	} {
		_, err := bucketremote.DecodeCommitRecord([]byte(bad))
		require.ErrorIs(t, err, dotmesh.ErrCorrupt, bad)
	}
}

func TestRefNames(t *testing.T) {
	dot := dotmesh.DotName{Namespace: "ns", Name: "app"}
	rn, err := bucketremote.ParseRefName(bucketremote.BranchRefName(dot, "dev"))
	require.NoError(t, err)
	require.Equal(t, bucketremote.RefName{Dot: dot, Branch: "dev"}, rn)
	rn, err = bucketremote.ParseRefName(bucketremote.TagsRefName(dot))
	require.NoError(t, err)
	require.Equal(t, bucketremote.RefName{Dot: dot}, rn)
	d, id, err := bucketremote.ParseCommitName(bucketremote.CommitName(dotmesh.DotName{Name: "app"}, "0123456789abcdef0123456789abcdef"))
	require.NoError(t, err)
	require.Equal(t, dotmesh.DotName{Namespace: dotmesh.DefaultNamespace, Name: "app"}, d)
	require.Equal(t, dotmesh.CommitID("0123456789abcdef0123456789abcdef"), id)
	for _, bad := range []string{"ns/app", "ns/app/x/dev", "ns/app/b", "ns/app/b/bad.name", "n s/app/tags", "ns/app/tags/x"} {
		_, err := bucketremote.ParseRefName(bad)
		require.ErrorIs(t, err, dotmesh.ErrCorrupt, bad)
	}
	for _, bad := range []string{"ns/app", "ns/app/xyz", "ns/a.b/0123456789abcdef0123456789abcdef"} {
		_, _, err := bucketremote.ParseCommitName(bad)
		require.ErrorIs(t, err, dotmesh.ErrCorrupt, bad)
	}
}

func TestRefBodies(t *testing.T) {
	id := dotmesh.NewCommitID()
	br, err := bucketremote.DecodeBranchRef([]byte(`{"v":1,"head":"` + string(id) + `"}`))
	require.NoError(t, err)
	require.Equal(t, id, br.Head)
	for _, bad := range []string{`{"v":1}`, `{"v":2,"head":"` + string(id) + `"}`, `x`} {
		_, err := bucketremote.DecodeBranchRef([]byte(bad))
		require.ErrorIs(t, err, dotmesh.ErrCorrupt, bad)
	}
	tr, err := bucketremote.DecodeTagsRef([]byte(`{"v":1,"tags":[{"name":"v1","commit":"` + string(id) + `"}]}`))
	require.NoError(t, err)
	require.Len(t, tr.Tags, 1)
	for _, bad := range []string{
		`{"v":1,"tags":[{"name":"v1","commit":"` + string(id) + `"},{"name":"v1","commit":"` + string(id) + `"}]}`,
		`{"v":1,"tags":[{"name":"a b","commit":"` + string(id) + `"}]}`,
		`{"v":1,"tags":[{"name":"v1","commit":"x"}]}`,
		`{"v":0}`,
	} {
		_, err := bucketremote.DecodeTagsRef([]byte(bad))
		require.ErrorIs(t, err, dotmesh.ErrCorrupt, bad)
	}
}

// Every decoder of what a bucket returns gets a fuzz target: bad input
// is an error wrapping ErrCorrupt, never a panic.

func FuzzTreeDecoder(f *testing.F) {
	f.Add(encodeTree(f, sampleTree()))
	f.Add(encodeTree(f, nil))
	f.Add([]byte("DMT\x01e\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := decodeTree(b)
		if err != nil {
			if !errors.Is(err, dotmesh.ErrCorrupt) {
				t.Fatalf("error not wrapping ErrCorrupt: %v", err)
			}
			return
		}
		// What decodes encodes and decodes to the same entries.
		again, err := decodeTree(encodeTree(t, out))
		if err != nil || len(again) != len(out) {
			t.Fatalf("re-encoding: %d entries, %v; want %d", len(again), err, len(out))
		}
		for i := range out {
			if again[i].Path != out[i].Path || again[i].Size != out[i].Size || len(again[i].Chunks) != len(out[i].Chunks) || !again[i].MTime.Equal(out[i].MTime) {
				t.Fatalf("entry %d re-encodes as %+v, want %+v", i, again[i], out[i])
			}
		}
	})
}

func FuzzDecodeCommitRecord(f *testing.F) {
	f.Add(bucketremote.EncodeCommitRecord(&bucketremote.CommitRecord{Commit: dotmesh.Commit{ID: "0123456789abcdef0123456789abcdef"}, Tree: []repo.ID{{1}}}))
	f.Add([]byte(`{"v":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := bucketremote.DecodeCommitRecord(b)
		if err != nil {
			if !errors.Is(err, dotmesh.ErrCorrupt) {
				t.Fatalf("error not wrapping ErrCorrupt: %v", err)
			}
			return
		}
		if _, err := bucketremote.DecodeCommitRecord(bucketremote.EncodeCommitRecord(rec)); err != nil {
			t.Fatalf("a decoded record does not decode again: %v", err)
		}
	})
}

func FuzzDecodeRefs(f *testing.F) {
	f.Add([]byte(`{"v":1,"head":"0123456789abcdef0123456789abcdef"}`))
	f.Add([]byte(`{"v":1,"tags":[{"name":"v1","commit":"0123456789abcdef0123456789abcdef"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := bucketremote.DecodeBranchRef(b); err != nil && !errors.Is(err, dotmesh.ErrCorrupt) {
			t.Fatalf("branch ref: error not wrapping ErrCorrupt: %v", err)
		}
		if _, err := bucketremote.DecodeTagsRef(b); err != nil && !errors.Is(err, dotmesh.ErrCorrupt) {
			t.Fatalf("tags ref: error not wrapping ErrCorrupt: %v", err)
		}
	})
}

func FuzzParseNames(f *testing.F) {
	f.Add("ns/app/b/master")
	f.Add("ns/app/tags")
	f.Add("ns/app/0123456789abcdef0123456789abcdef")
	f.Fuzz(func(t *testing.T, s string) {
		if rn, err := bucketremote.ParseRefName(s); err == nil {
			back := bucketremote.TagsRefName(rn.Dot)
			if rn.Branch != "" {
				back = bucketremote.BranchRefName(rn.Dot, rn.Branch)
			}
			if back != s {
				t.Fatalf("%q parses to a ref named %q", s, back)
			}
		} else if !errors.Is(err, dotmesh.ErrCorrupt) {
			t.Fatalf("error not wrapping ErrCorrupt: %v", err)
		}
		if d, id, err := bucketremote.ParseCommitName(s); err == nil {
			if back := bucketremote.CommitName(d, id); back != s {
				t.Fatalf("%q parses to a commit named %q", s, back)
			}
		} else if !errors.Is(err, dotmesh.ErrCorrupt) {
			t.Fatalf("error not wrapping ErrCorrupt: %v", err)
		}
	})
}
