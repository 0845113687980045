package client

import (
	"bytes"
	"encoding/json"
	"maps"
	"strings"
	"testing"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func decodeKept(b []byte, keep func(string) bool) (dotmesh.CommitInfo, error) {
	var ci dotmesh.CommitInfo
	err := jsonv2.Unmarshal(b, &ci, jsonv2.WithUnmarshalers(jsonv2.UnmarshalFromFunc(
		func(dec *jsontext.Decoder, ci *dotmesh.CommitInfo) error { return decodeInfoKeys(dec, ci, keep) })))
	return ci, err
}

func consistencyKey(k string) bool { return strings.HasPrefix(k, dotmesh.InfoConsistency) }

func TestDecodeInfoKeys(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want dotmesh.CommitInfo
		bad  bool
	}{
		{in: `{"bytes":"10","consistency":"crash","consistency.hook":"pg","files":3}`, want: dotmesh.CommitInfo{"consistency": "crash", "consistency.hook": "pg"}},
		{in: `{"consistency.spread_ms":12,"x":{"deep":[1,2]}}`, want: dotmesh.CommitInfo{"consistency.spread_ms": "12"}},
		{in: `{"files":"1"}`, want: nil},
		{in: `null`, want: nil},
		{in: `{"consistency":true}`, bad: true},
		{in: `{"consistency":{"a":"b"}}`, bad: true},
		{in: `["consistency"]`, bad: true},
		{in: `{"consistency":"a"`, bad: true},
	} {
		got, err := decodeKept([]byte(tc.in), consistencyKey)
		if tc.bad {
			if err == nil {
				t.Errorf("%s: decoded as %v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || !maps.Equal(got, tc.want) {
			t.Errorf("%s: %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

// Whatever the bytes, an answer or an error, never a panic; where the
// full decode of CommitInfo accepts an object of strings, the kept keys
// are exactly its keys that keep accepts, with the same values.
func FuzzDecodeInfoKeys(f *testing.F) {
	f.Add([]byte(`{"bytes":"10","consistency":"crash","consistency.hook":"pg"}`))
	f.Add([]byte(`{"consistency.spread_ms":12,"x":{"deep":[1,2]}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeKept(b, consistencyKey)
		var plain map[string]string
		if json.Unmarshal(b, &plain) != nil || !jsontext.Value(b).IsValid() || bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
			return
		}
		if err != nil {
			t.Fatalf("%q: %v; the full decode gives %v", b, err, plain)
		}
		want := dotmesh.CommitInfo{}
		for k, v := range plain {
			if consistencyKey(k) {
				want[k] = v
			}
		}
		if len(want) == 0 {
			want = nil
		}
		if !maps.Equal(got, want) {
			t.Fatalf("%q: kept %v, want %v", b, got, want)
		}
	})
}
