package docker

import (
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// FuzzParseRequest: whatever Docker (or anyone on the socket) sends, the
// parser does not panic, errors are one line, and an accepted name is a
// valid volume name that round-trips.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		`{"Name":"app.web","ID":"abc"}`, `{"Name":"team/app@feature.db","Opts":{"backend":"zfs"}}`,
		`{"Name":"app.__root__"}`, `{}`, `null`, ``, `{"Name":`, `{"Name":"a"} x`, `{"Name":"../x"}`,
		`{"Name":"a","Opts":{"x":"y"}}`, `[]`, `"str"`, `{"Name":"a\u0000b","ID":"\u0000"}`,
	} {
		for _, op := range []string{"Create", "Mount", "Get", "List"} {
			f.Add(op, []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, op string, body []byte) {
		p, err := parseRequest(op, body)
		if err != nil {
			if msg := oneLine(err.Error()); msg == "" || strings.Contains(msg, "\n") {
				t.Fatalf("bad error message %q", msg)
			}
			return
		}
		if !needsName[op] {
			return
		}
		v, err := dotmesh.ParseVolumeName(p.Volume.String())
		if err != nil || v != p.Volume {
			t.Fatalf("accepted %q, which does not round-trip: %v", p.Name, err)
		}
		if (op == "Mount" || op == "Unmount") && (p.ID == "" || strings.ContainsRune(p.ID, 0)) {
			t.Fatalf("accepted a bad mount id %q", p.ID)
		}
	})
}
