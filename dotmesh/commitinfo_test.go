package dotmesh

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCommitInfoDecodesStringsAndNumbers(t *testing.T) {
	var c Commit
	in := `{"id":"x","info":{"bytes":3,"big":12345678901234567890,"tool":"pg_dump 15","files":"2","neg":-1}}`
	if err := json.Unmarshal([]byte(in), &c); err != nil {
		t.Fatal(err)
	}
	want := CommitInfo{"bytes": "3", "big": "12345678901234567890", "tool": "pg_dump 15", "files": "2", "neg": "-1"}
	if !reflect.DeepEqual(c.Info, want) {
		t.Fatalf("info %#v", c.Info)
	}
	// What goes out stays strings, as the API and the registry carry it.
	out, err := json.Marshal(c.Info)
	if err != nil || !strings.Contains(string(out), `"bytes":"3"`) {
		t.Fatalf("marshal: %s %v", out, err)
	}
	for _, bad := range []string{`{"info":{"a":true}}`, `{"info":{"a":[1]}}`, `{"info":[]}`} {
		if err := json.Unmarshal([]byte(bad), &c); err == nil {
			t.Errorf("%s decoded", bad)
		}
	}
	if err := json.Unmarshal([]byte(`{"info":null}`), &c); err != nil || c.Info != nil {
		t.Errorf("null info: %#v %v", c.Info, err)
	}
}

// FuzzCommitInfo: whatever decodes re-encodes as strings that decode to
// the same info.
func FuzzCommitInfo(f *testing.F) {
	for _, s := range []string{`{"a":"1"}`, `{"a":1,"b":"x"}`, `{"a":1e3}`, `null`, `{"a":true}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var ci CommitInfo
		if err := json.Unmarshal([]byte(s), &ci); err != nil {
			return
		}
		b, err := json.Marshal(ci)
		if err != nil {
			t.Fatal(err)
		}
		var back CommitInfo
		if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, ci) {
			t.Fatalf("%s -> %s -> %#v (%v)", s, b, back, err)
		}
	})
}

// FuzzPlainCommitInfo: the fast read of a CommitInfo agrees with the JSON
// decoder on everything it accepts, and accepts what encode writes.
func FuzzPlainCommitInfo(f *testing.F) {
	for _, s := range []string{`{"a":"1"}`, `{}`, `{"a":"1","b":"x"}`, `{"a":"1","a":"2"}`, `{"a":"\u00e9"}`, `{"a":"1",}`, `{"a":1}`, `{"a":"1"} `, "{\"a\":\"\xff\"}", `null`} {
		f.Add(s, "k", "v")
	}
	f.Fuzz(func(t *testing.T, s, k, v string) {
		if got, ok := plainCommitInfo([]byte(s)); ok {
			var want map[string]string
			if err := json.Unmarshal([]byte(s), &want); err != nil || !reflect.DeepEqual(CommitInfo(want), got) {
				t.Fatalf("%q: fast read %#v, decoder %#v (%v)", s, got, want, err)
			}
		}
		rec := encode(CommitInfo{k: v, "added_bytes": "1"})
		got, ok := plainCommitInfo(rec)
		var want map[string]string
		if err := json.Unmarshal(rec, &want); err != nil {
			t.Fatal(err)
		}
		if ok && !reflect.DeepEqual(CommitInfo(want), got) {
			t.Fatalf("%s: fast read %#v, decoder %#v", rec, got, want)
		}
		if !ok && !strings.ContainsAny(string(rec), "\\") && utf8.ValidString(k+v) {
			t.Fatalf("%s: the fast read refused what encode writes", rec)
		}
	})
}
