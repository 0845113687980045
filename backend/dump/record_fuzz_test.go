package dump

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/dump/cas"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// FuzzParseRecord: a commit record either parses into one with a valid
// manifest hash whose JSON parses back the same, or is ErrCorrupt naming
// what was read; the synced-state hash parses only as its own canonical
// form.
func FuzzParseRecord(f *testing.F) {
	good, _ := json.Marshal(commitRecord{Version: recordVersion, Manifest: cas.Sum([]byte("m")).String(), Files: 2, Bytes: 10})
	f.Add(good)
	f.Add([]byte(`{"version":2,"manifest":"00"}`))
	f.Add([]byte(`{"version":1,"manifest":"../x"}`))
	f.Add([]byte(strings.Repeat(" ", maxRecordSize+1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := parseRecord(data, "commit x")
		if err != nil {
			if !errors.Is(err, dotmesh.ErrCorrupt) || !strings.Contains(err.Error(), "commit x") {
				t.Fatalf("%q: %v is not ErrCorrupt naming the commit", data, err)
			}
		} else {
			root, err := r.root()
			if err != nil || root.String() != r.Manifest {
				t.Fatalf("%q: accepted manifest %q: %v", data, r.Manifest, err)
			}
			again, _ := json.Marshal(r)
			r2, err := parseRecord(again, "commit x")
			if err != nil || *r2 != *r {
				t.Fatalf("%q: round trip %+v, %v", data, r2, err)
			}
		}
		// The synced state file holds one hash (readSynced trims it).
		if h, err := cas.ParseHash(strings.TrimSpace(string(data))); err == nil && h.String() != strings.TrimSpace(string(data)) {
			t.Fatalf("%q: parsed as hash %s", data, h)
		}
	})
}
