package client

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/dotmesh-io/dotmesh/api"
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

// decodeDotList decodes b as ListDotsTableIncoming decodes an answer.
func decodeDotList(b []byte) (api.DotList, bool, error) {
	var a dotListAnswer
	err := a.decodeAnswer(bytes.NewReader(b))
	return api.DotList{Dots: a.dots, Incoming: a.incoming}, a.combined, err
}

func TestDecodeDotList(t *testing.T) {
	st := []dotmesh.DotStatus{{Dot: &dotmesh.Dot{ID: "d1", Namespace: "admin", Name: "app", Current: "master"}, Commits: 3, Head: &dotmesh.Commit{ID: "c1"}}}
	in := []dotmesh.IncomingTransfer{{Namespace: "alice", Name: "app", Branch: "master", Bytes: 7, Commits: 1}}
	plain, _ := json.Marshal(st)
	both, _ := json.Marshal(api.DotList{Dots: st, Incoming: in})
	wantDots := []dotmesh.DotStatus{{Dot: st[0].Dot, Commits: 3}} // no head in a table
	if got, combined, err := decodeDotList(plain); err != nil || combined || !reflect.DeepEqual(got.Dots, wantDots) || got.Incoming != nil {
		t.Errorf("an older node's array: %+v, combined %v, %v", got, combined, err)
	}
	if got, combined, err := decodeDotList(both); err != nil || !combined || !reflect.DeepEqual(got, api.DotList{Dots: wantDots, Incoming: in}) {
		t.Errorf("a dot list: %+v, combined %v, %v", got, combined, err)
	}
	rows := []api.DotRow{{Namespace: "admin", Name: "app", Branch: "master", Size: 5, Dirty: true, Commits: 3,
		Labels: map[string]string{"a": "b"}, Mounts: []dotmesh.Mount{{Consumer: "docker"}}}, {Name: "x", Error: "gone"}}
	table, _ := json.Marshal(api.DotTable{Rows: rows, Incoming: in})
	wantRows := []dotmesh.DotStatus{
		{Dot: &dotmesh.Dot{Namespace: "admin", Name: "app", Labels: map[string]string{"a": "b"}}, Branch: &dotmesh.Branch{Name: "master"},
			Usage: dotmesh.Usage{Size: 5, Dirty: true}, Commits: 3, Mounts: []dotmesh.Mount{{Consumer: "docker"}}},
		{Dot: &dotmesh.Dot{Name: "x"}, Branch: &dotmesh.Branch{}, Error: "gone"},
	}
	if got, combined, err := decodeDotList(table); err != nil || !combined || !reflect.DeepEqual(got, api.DotList{Dots: wantRows, Incoming: in}) {
		t.Errorf("a dot table: %+v, combined %v, %v", got, combined, err)
	}
	for _, bad := range []string{``, `[`, `[] []`, `{} x`, `{"dots":{}}`, `{"incoming":[1]}`, `"x"`, `[{"commits":"x"}]`,
		`{"rows":[{"size":"1"}]}`, `{"rows":{}}`, `{"rows":[],"dots":[]}`, `{"dots":[],"rows":[]}`} {
		if got, _, err := decodeDotList([]byte(bad)); err == nil {
			t.Errorf("%q: decoded as %+v, want an error", bad, got)
		}
	}
}

// Whatever the bytes, a list or an error, never a panic; where the JSON
// v2 decoder accepts the answer as a DotTable or DotList (not both), or,
// starting with '[', as an older node's array, the same dots, without
// heads and branch names.
func FuzzDecodeDotList(f *testing.F) {
	f.Add([]byte(`{"dots":[{"dot":{"id":"d","namespace":"admin","name":"a"},"commits":2,"head":{"id":"c"}}],"incoming":[{"namespace":"alice","name":"a","bytes":3}]}`))
	f.Add([]byte(`{"rows":[{"ns":"admin","name":"a","branch":"master","size":3,"dirty":true,"commits":2,"labels":{"k":"v"},"mounts":[{"consumer":"docker"}],"error":"e"}],"incoming":[]}`))
	f.Add([]byte(`[{"dot":{"name":"a"},"branches":["x"]}]`))
	for _, rows := range []string{`null`, `[]`, `[null]`, `[{"size":1.5}]`, `[{"ns":"\u0041"}]`, `[{"commits":1e2}]`,
		`[{"size":-0}]`, `[{"dirty":null,"ns":null}]`, `[{"size":99999999999999999999}]`, `[{"branch":1}]`, `[{"dirty":"x"}]`} {
		f.Add([]byte(`{"rows":` + rows + `}`))
	}
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, combined, err := decodeDotList(b)
		t0 := bytes.TrimLeft(b, " \t\r\n")
		array := len(t0) > 0 && t0[0] == '['
		var want api.DotList
		var werr error
		if array {
			werr = jsonv2.Unmarshal(b, &want.Dots)
		} else {
			var both struct {
				Dots     *[]dotmesh.DotStatus       `json:"dots"`
				Rows     *[]api.DotRow              `json:"rows"`
				Incoming []dotmesh.IncomingTransfer `json:"incoming"`
			}
			if werr = jsonv2.Unmarshal(b, &both); werr == nil {
				want.Incoming = both.Incoming
				switch {
				case both.Dots != nil && both.Rows != nil:
					if err == nil {
						t.Fatalf("%q: both dots and rows decoded as %+v", b, got)
					}
					return
				case both.Dots != nil:
					want.Dots = *both.Dots
				case both.Rows != nil:
					want.Dots = rowStatuses(*both.Rows)
				}
			}
		}
		if werr != nil {
			return
		}
		for i := range want.Dots {
			want.Dots[i].Head, want.Dots[i].Branches = nil, nil
		}
		if err != nil {
			t.Fatalf("%q: %v; the decoder gives %+v", b, err, want)
		}
		if !reflect.DeepEqual(got, want) || combined == array {
			t.Fatalf("%q: %+v (combined %v); the decoder gives %+v", b, got, combined, want)
		}
	})
}
