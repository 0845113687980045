package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
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

// decodeLogCommit decodes b as decodeCommit does for a log (Info keeping
// the consistency keys).
func decodeLogCommit(b []byte) (dotmesh.Commit, error) {
	ik := infoKeys{keep: consistencyKey}
	var c dotmesh.Commit
	dec := jsontext.NewDecoder(bytes.NewReader(b))
	if err := ik.decodeCommit(dec, &c); err != nil {
		return c, err
	}
	_, err := dec.ReadToken()
	if err == nil {
		return c, errors.New("more after the commit")
	}
	if err != io.EOF {
		return c, err
	}
	return c, nil
}

// fullLogCommit is what the JSON v2 decoder makes of b, with the Info
// keys a log keeps, and whether it accepts b.
func fullLogCommit(b []byte) (dotmesh.Commit, bool) {
	var c dotmesh.Commit
	if jsonv2.Unmarshal(b, &c) != nil {
		return c, false
	}
	var kept dotmesh.CommitInfo
	for k, v := range c.Info {
		if consistencyKey(k) {
			if kept == nil {
				kept = dotmesh.CommitInfo{}
			}
			kept[k] = v
		}
	}
	c.Info = kept
	return c, true
}

func sameCommit(a, b dotmesh.Commit) bool {
	return a.ID == b.ID && a.Dot == b.Dot && a.Branch == b.Branch && a.Parent == b.Parent &&
		a.Author == b.Author && a.Time.Equal(b.Time) && a.Message == b.Message && a.Pruned == b.Pruned &&
		maps.Equal(a.Metadata, b.Metadata) && maps.Equal(a.Info, b.Info) && (a.Metadata == nil) == (b.Metadata == nil)
}

func TestDecodeCommit(t *testing.T) {
	for _, tc := range []struct {
		in  string
		bad bool
	}{
		{in: `{"id":"676dc47715d9454b5b66a1dbe4e2a70d","dot":"cdbeff6c","branch":"master","parent":"0052f375","author":"admin","time":"2026-12-05T17:05:22.971971138Z","message":"9999","info":{"added_bytes":"0","consistency":"file-by-file","dirs":"0"}}`},
		{in: `{"id":"a","metadata":{"k":"v"},"pruned":true,"message":"two\nlines \u00e9","extra":[1,{"x":null}]}`},
		{in: `{"\u0069d":"escaped name","auth\u006fr":"b"}`},
		{in: `{"id":null,"metadata":null,"info":null}`},
		{in: `null`},
		{in: `{"id":1}`, bad: true},
		{in: `{"time":"yesterday"}`, bad: true},
		{in: `{"pruned":"yes"}`, bad: true},
		{in: `{"info":{"consistency":true}}`, bad: true},
		{in: `{"id":"a","id":"b"}`, bad: true},
		{in: `["id"]`, bad: true},
		{in: `{"id":"a"`, bad: true},
	} {
		got, err := decodeLogCommit([]byte(tc.in))
		want, ok := fullLogCommit([]byte(tc.in))
		if tc.bad {
			if err == nil {
				t.Errorf("%s: decoded as %+v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || !ok || !sameCommit(got, want) {
			t.Errorf("%s: %+v, %v; the decoder gives %+v (accepted: %v)", tc.in, got, err, want, ok)
		}
	}
}

// Whatever the bytes, a commit or an error, never a panic; where the
// JSON v2 decoder accepts a commit, decodeCommit makes the same one
// (Info: the kept keys).
func FuzzDecodeCommit(f *testing.F) {
	f.Add([]byte(`{"id":"676dc477","dot":"cdbeff6c","branch":"master","parent":"0052f375","author":"admin","time":"2026-12-05T17:05:22.971971138Z","message":"9999","info":{"added_bytes":"0","consistency":"file-by-file"}}`))
	f.Add([]byte(`{"id":"a","metadata":{"k":"v"},"pruned":true,"info":{"consistency.spread_ms":12}}`))
	f.Add([]byte(`{"\u0069d":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeLogCommit(b)
		want, ok := fullLogCommit(b)
		if !ok {
			return
		}
		if err != nil {
			if strings.Contains(err.Error(), `commit field "info"`) {
				return // Info's own decoding, which FuzzDecodeInfoKeys compares
			}
			t.Fatalf("%q: %v; the decoder gives %+v", b, err, want)
		}
		if !sameCommit(got, want) {
			t.Fatalf("%q: %+v; the decoder gives %+v", b, got, want)
		}
	})
}
