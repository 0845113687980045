package client

import (
	"encoding/json"
	"reflect"
	"testing"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// decodeTable decodes b as ListDotsTable decodes an answer.
func decodeTable(b []byte) ([]dotmesh.DotStatus, error) {
	var out []dotmesh.DotStatus
	err := jsonv2.Unmarshal(b, &out, skipTableFields)
	return out, err
}

// fullTable is the JSON v2 decoder's reading of b, without heads and
// branch names, and whether it accepts b.
func fullTable(b []byte) ([]dotmesh.DotStatus, bool) {
	var out []dotmesh.DotStatus
	if jsonv2.Unmarshal(b, &out) != nil {
		return nil, false
	}
	for i := range out {
		out[i].Head, out[i].Branches = nil, nil
	}
	return out, true
}

func TestDecodeTableStatus(t *testing.T) {
	st := []dotmesh.DotStatus{{
		Dot:      &dotmesh.Dot{ID: "d1", Namespace: "admin", Name: "app", Current: "master", Labels: map[string]string{"a": "b"}},
		Branch:   &dotmesh.Branch{Name: "master", Head: "c1"},
		Usage:    dotmesh.Usage{Size: 10, Dirty: true},
		Commits:  3,
		Branches: []string{"master", "x"},
		Head:     &dotmesh.Commit{ID: "c1", Info: dotmesh.CommitInfo{"files": "1"}},
		Mounts:   []dotmesh.Mount{{Consumer: "docker"}},
		Error:    "",
	}, {Dot: &dotmesh.Dot{Name: "other"}, Error: "usage: gone"}}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range [][]byte{b, []byte(`[null,{"dot":null,"new":[1,2]}]`), []byte(`null`)} {
		got, err := decodeTable(in)
		want, ok := fullTable(in)
		if err != nil || !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %+v, %v; the decoder gives %+v (accepted: %v)", in, got, err, want, ok)
		}
	}
	if len(st) == 0 {
		t.Fatal("no case")
	}
	for _, bad := range []string{`[{"commits":"x"}]`, `[{"dot":[]}]`, `[[]]`, `[{"usage":{}`, `[{"error":1}]`} {
		if got, err := decodeTable([]byte(bad)); err == nil {
			t.Errorf("%s: decoded as %+v, want an error", bad, got)
		}
	}
}

// Whatever the bytes, statuses or an error, never a panic; where the
// JSON v2 decoder accepts the answer, the table's decoding gives the same
// statuses without heads and branch names.
func FuzzDecodeTableStatus(f *testing.F) {
	f.Add([]byte(`[{"dot":{"id":"d","namespace":"admin","name":"a"},"branch":{"name":"master"},"usage":{"size":1},"commits":2,"branches":["master"],"head":{"id":"c"},"mounts":[],"error":""}]`))
	f.Add([]byte(`[null,{"x":1}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeTable(b)
		want, ok := fullTable(b)
		if !ok {
			return
		}
		if err != nil {
			t.Fatalf("%q: %v; the decoder gives %+v", b, err, want)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: %+v; the decoder gives %+v", b, got, want)
		}
	})
}
