package dotmesh

import (
	"testing"
)

// decodedRecords decodes a record again when its revision changed, never
// keeps one without a revision, forgets keys no longer listed, and hands
// out copies.
func TestDecodedRecords(t *testing.T) {
	var c decodedRecords[Dot]
	kv := func(key, name string, rev int64) KV {
		return KV{Key: key, Value: encode(&Dot{Name: name}), Revision: rev}
	}
	got, err := c.decode([]KV{kv("dots/a", "a", 1), kv("dots/b", "b", 0)})
	if err != nil || got[0].Name != "a" || got[1].Name != "b" || len(c.m) != 1 {
		t.Fatalf("first: %+v %v, kept %d", got, err, len(c.m))
	}
	got[0].Name = "changed by a caller"
	// Same revision, other bytes: the kept record (a revision names one value).
	got, err = c.decode([]KV{kv("dots/a", "other", 1), kv("dots/b", "b2", 0)})
	if err != nil || got[0].Name != "a" || got[1].Name != "b2" {
		t.Fatalf("same revision: %+v %v", got, err)
	}
	got, err = c.decode([]KV{kv("dots/a", "a3", 3)})
	if err != nil || len(got) != 1 || got[0].Name != "a3" || len(c.m) != 1 {
		t.Fatalf("new revision: %+v %v, kept %d", got, err, len(c.m))
	}
	if _, err := c.decode([]KV{{Key: "dots/c", Value: []byte("{"), Revision: 4}}); err == nil {
		t.Fatal("a corrupt record decoded")
	}
	if got, err := c.decode(nil); err != nil || len(got) != 0 || len(c.m) != 0 {
		t.Fatalf("nothing listed: %+v %v, kept %d", got, err, len(c.m))
	}
}
