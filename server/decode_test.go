package server

import (
	"errors"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// FuzzDecodeRequest checks the strict decoder never panics, and that it
// either accepts a single JSON object or fails with a one-line
// ErrInvalidArgument.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"message":"m","metadata":{"a":"b"}}`, `{"branch":"x"}`, `{}`, ``, `null`, `[]`,
		`{"message":1}`, `{"x":1}`, `{"message":"m"} {}`, `{"message":"m"}}`, "{\"message\":\"\xff\"}",
		`{"metadata":{"a":null}}`, `{"message":"a\nb"}`, ` {"branch":"a"}  `, `{"Message":"m"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var req api.CommitRequest
		err := decodeJSON(data, &req)
		if err == nil {
			if s := strings.TrimSpace(string(data)); !strings.HasPrefix(s, "{") || !strings.HasSuffix(s, "}") {
				t.Fatalf("accepted %q, which is not one JSON object", data)
			}
			return
		}
		if !errors.Is(err, dotmesh.ErrInvalidArgument) {
			t.Fatalf("%q: error %v does not wrap ErrInvalidArgument", data, err)
		}
		if msg := err.Error(); strings.ContainsAny(msg, "\r\n") || len(msg) > 300 {
			t.Fatalf("%q: message %q is not one short line", data, msg)
		}
	})
}
