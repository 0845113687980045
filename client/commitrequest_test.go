package client

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/dotmesh-io/dotmesh/api"
)

// FuzzCommitBody: a commit's request is encoded byte for byte as
// encoding/json encodes it, whichever path encodes it.
func FuzzCommitBody(f *testing.F) {
	f.Add("", "seed data", true, "")
	f.Add("feature", "é and ü", false, "")
	f.Add("", "a\nb \"q\" <x> & \u2028 \xff \ufffd \\", false, "")
	f.Add("b", "m", true, "k")
	f.Fuzz(func(t *testing.T, branch, message string, allowEmpty bool, metaKey string) {
		req := api.CommitRequest{Branch: branch, Message: message, AllowEmpty: allowEmpty}
		if metaKey != "" {
			req.Metadata = map[string]string{metaKey: message}
		}
		got, err := commitBody{req}.encodeRequest()
		want, werr := json.Marshal(req)
		if err != nil || werr != nil || string(got) != string(want) {
			t.Fatalf("%+v: encoded %s (%v), encoding/json %s (%v)", req, got, err, want, werr)
		}
	})
}

// TestCommitBodyPlain: a commit with -m and no metadata takes the path
// that does not use encoding/json.
func TestCommitBodyPlain(t *testing.T) {
	for _, s := range []string{"", "seed data", "é ü 日本", "a/b-c_d.e"} {
		if !plainJSON(s) {
			t.Errorf("%q is not plain", s)
		}
	}
	for _, s := range []string{"a\n", `"`, `\`, "<", ">", "&", "\u2028", "\u2029", "\xff", "\ufffd", "\x7f\x00"} {
		if plainJSON(s) {
			t.Errorf("%q is plain", s)
		}
	}
}

// TestCommitBodyKnowsEveryField: the hand encoding writes the fields of
// api.CommitRequest it knows; a field added there must be added to it
// (or the new field would be dropped from every plain commit).
func TestCommitBodyKnowsEveryField(t *testing.T) {
	known := map[string]bool{"Branch": true, "Message": true, "Metadata": true, "AllowEmpty": true}
	rt := reflect.TypeFor[api.CommitRequest]()
	for i := range rt.NumField() {
		if f := rt.Field(i); !known[f.Name] {
			t.Errorf("api.CommitRequest has a field %s that commitBody.encodeRequest does not write", f.Name)
		}
	}
	if rt.NumField() != len(known) {
		t.Errorf("api.CommitRequest has %d fields, commitBody knows %d", rt.NumField(), len(known))
	}
}
