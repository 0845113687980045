package server

import (
	"net/url"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// FuzzAuditQuery: whatever query string GET /v1/audit gets, what
// parseAuditQuery accepts names a valid dot and a bounded page.
func FuzzAuditQuery(f *testing.F) {
	f.Add("dot=alice/app&before=0001&limit=10")
	f.Add("dot=app")
	f.Add("dot=../x&limit=-1")
	f.Add("limit=1001&before=" + string(make([]byte, 70)))
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		aq, err := parseAuditQuery(dotmesh.Principal{User: "alice"}, q)
		if err != nil {
			return
		}
		if aq.Dot != nil && aq.Dot.Validate() != nil {
			t.Fatalf("%q: accepted dot %v", raw, aq.Dot)
		}
		if aq.Limit < 0 || aq.Limit > maxAuditPage || len(aq.Before) > 64 {
			t.Fatalf("%q: accepted %+v", raw, aq)
		}
	})
}
