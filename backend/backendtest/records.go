package backendtest

import (
	"bytes"
	"errors"
	"strings"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// recordTests check dotmesh.RecordKeeper, which every backend implements
// so that a lost registry can be rebuilt from its data.
var recordTests = []backendTest{
	{"KeepReplaceRemove", testRecordsKeep},
	{"InvalidKeys", testRecordsInvalid},
}

func (f *fixture) keeper() dotmesh.RecordKeeper {
	f.t.Helper()
	rk, ok := f.be.(dotmesh.RecordKeeper)
	if !ok {
		f.t.Fatalf("backend %s does not implement dotmesh.RecordKeeper: a lost registry could not be rebuilt from it", f.be.Name())
	}
	return rk
}

func (f *fixture) assertRecords(dot dotmesh.DotID, want map[string][]byte) {
	f.t.Helper()
	all, err := f.keeper().Records(f.ctx)
	f.fatalIf(err, "Records")
	got := all[dot]
	if len(got) != len(want) {
		f.t.Fatalf("Records of %s: %d records, want %d (%v)", dot, len(got), len(want), keysOf(got))
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || !bytes.Equal(g, v) {
			f.t.Fatalf("record %s of %s: got %d bytes %.40q, want %d bytes %.40q", k, dot, len(g), g, len(v), v)
		}
	}
}

func keysOf(m map[string][]byte) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return sortedNames(ks)
}

func testRecordsKeep(f *fixture) {
	b := f.newBranch()
	c := f.commit(b)
	rk := f.keeper()
	// Opaque bytes: control characters, non-UTF-8, and one record larger
	// than a zfs property holds.
	big := []byte(strings.Repeat("message line\n\t\x00\xff", 2000))
	recs := map[string][]byte{
		"dot":                    []byte(`{"id":"x","future_field":{"a":1}}`),
		"branch." + b.Branch:     []byte(`{"name":"master","head":"` + string(c.ID) + `"}`),
		"commit." + string(c.ID): big,
		"branch.Upper-Case_1":    {},
	}
	f.fatalIf(rk.KeepRecords(f.ctx, b.Dot, recs), "KeepRecords")
	f.assertRecords(b.Dot, recs)

	// Replace a large record with a small one and remove another.
	small := []byte(`{"short":true}`)
	f.fatalIf(rk.KeepRecords(f.ctx, b.Dot, map[string][]byte{"commit." + string(c.ID): small, "branch.Upper-Case_1": nil}), "KeepRecords (replace, remove)")
	delete(recs, "branch.Upper-Case_1")
	recs["commit."+string(c.ID)] = small
	f.assertRecords(b.Dot, recs)

	// Another dot's records stay apart.
	other := f.newBranch()
	f.fatalIf(rk.KeepRecords(f.ctx, other.Dot, map[string][]byte{"dot": []byte("other")}), "KeepRecords (other dot)")
	f.assertRecords(other.Dot, map[string][]byte{"dot": []byte("other")})
	f.assertRecords(b.Dot, recs)

	// Removing everything, and removing what is gone, is no error.
	gone := map[string][]byte{}
	for k := range recs {
		gone[k] = nil
	}
	f.fatalIf(rk.KeepRecords(f.ctx, b.Dot, gone), "KeepRecords (remove all)")
	f.fatalIf(rk.KeepRecords(f.ctx, b.Dot, gone), "KeepRecords (remove again)")
	f.assertRecords(b.Dot, nil)
	f.fatalIf(rk.KeepRecords(f.ctx, dotmesh.NewDotID(), map[string][]byte{"dot": nil}), "KeepRecords (remove from a dot without storage)")
}

func testRecordsInvalid(f *fixture) {
	b := f.newBranch()
	rk := f.keeper()
	for _, k := range []string{"", "..", "a/b", "../x", "a b", strings.Repeat("k", 101)} {
		err := rk.KeepRecords(f.ctx, b.Dot, map[string][]byte{k: []byte("x")})
		if !errors.Is(err, dotmesh.ErrInvalidName) {
			f.t.Errorf("KeepRecords key %q: %v, want ErrInvalidName", k, err)
		}
	}
	err := rk.KeepRecords(f.ctx, "../x", map[string][]byte{"dot": []byte("x")})
	if !errors.Is(err, dotmesh.ErrInvalidName) {
		f.t.Errorf("KeepRecords of dot ../x: %v, want ErrInvalidName", err)
	}
	f.assertRecords(b.Dot, nil)
}
