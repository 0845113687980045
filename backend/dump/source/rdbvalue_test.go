package source

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

// seedEntries are the keys of a real normalised dump (rowdiff's
// testdata): strings, a list, a hash, sets as listpack and intset, a
// sorted set.
func seedEntries(t testing.TB) []RDBEntry {
	data, err := os.ReadFile("rowdiff/testdata/redis1.rdb")
	if err != nil {
		t.Fatal(err)
	}
	var out []RDBEntry
	if err := ScanRDB(bytes.NewReader(data), func(e RDBEntry) error { out = append(out, e); return nil }, func([]byte) error { return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRDBValue(t *testing.T) {
	got := map[string]string{}
	for _, e := range seedEntries(t) {
		kind, elems, err := RDBValue(e.Type, e.Value)
		if err != nil {
			t.Fatalf("key %s (type %d): %v", e.Key, e.Type, err)
		}
		if kind == RedisSet { // members in the encoding's order
			slices.SortFunc(elems, bytes.Compare)
		}
		got[fmt.Sprintf("%d/%s", e.DB, e.Key)] = fmt.Sprintf("%s %q", kind, elems)
	}
	want := map[string]string{
		"0/a":     `string ["1"]`,
		"0/s":     `string ["hello"]`,
		"0/queue": `list ["a" "b" "c"]`,
		"0/h":     `hash ["f1" "v1" "f2" "v2"]`,
		"0/s2":    `set ["x" "y" "z"]`,
		"0/si":    `set ["1" "2" "3"]`,
		"0/z":     `zset ["one" "1" "two" "2.5"]`,
		"0/temp":  `string ["t"]`,
		"3/other": `string ["db3"]`,
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: got %s, want %s", k, got[k], w)
		}
	}
	if _, _, err := RDBValue(15, []byte{0}); err == nil || !strings.Contains(err.Error(), "type 15") {
		t.Errorf("a stream: %v", err)
	}
}

// FuzzRDBValue: decoding any value never panics nor hangs.
func FuzzRDBValue(f *testing.F) {
	for _, e := range seedEntries(f) {
		f.Add(e.Type, e.Value)
	}
	f.Fuzz(func(t *testing.T, typ byte, value []byte) {
		RDBValue(typ, value)
	})
}
