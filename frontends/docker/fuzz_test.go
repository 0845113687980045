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

// FuzzDecodeState: a stored record or an older version's state file, any
// bytes: no panic, and errors are one line.
func FuzzDecodeState(f *testing.F) {
	for _, s := range []string{`{"created":"2026-01-02T03:04:05Z","delete_on_remove":true}`, `{}`, `null`, ``, `{`,
		`{"app":{"created":"2026-01-02T03:04:05Z"}}`, `{"app":1}`, `[]`, `{"created":"x"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := decodeCreated("v", b); err != nil && strings.Contains(err.Error(), "\n") {
			t.Fatalf("error of more than one line: %q", err)
		}
		if _, err := parseLegacyState(b); err != nil && strings.Contains(err.Error(), "\n") {
			t.Fatalf("error of more than one line: %q", err)
		}
	})
}
