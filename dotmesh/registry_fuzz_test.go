package dotmesh

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// FuzzRegistryRecords: a registry value either decodes as each kind of
// record (dot, branch, commit, user, key, grant, visibility, audit) whose encoding is stable (decoding what was encoded
// encodes the same), or is refused with ErrCorrupt naming its key.
func FuzzRegistryRecords(f *testing.F) {
	f.Add([]byte(`{"id":"0123456789abcdef0123456789abcdef","namespace":"admin","name":"app","backend":"dump"}`))
	f.Add([]byte(`{"dot":"0123456789abcdef0123456789abcdef","name":"master","head":"00112233445566778899aabbccddeeff"}`))
	f.Add([]byte(`{"id":"00112233445566778899aabbccddeeff","message":"m","time":"2026-01-02T03:04:05.123+02:00","metadata":{"k":"v"}}`))
	f.Add([]byte(`{"name":"bob","admin":true,"created":"2026-01-02T03:04:05Z"}`))
	f.Add([]byte(`{"id":"0011223344556677","user":"bob","label":"ci","read_only":true,"hash":"q83vAQ==","created":"2026-01-02T03:04:05Z"}`))
	f.Add([]byte(`{"user":"wendy","role":"write","by":"bob","created":"2026-01-02T03:04:05Z"}`))
	f.Add([]byte(`{"user":"wendy","role":"god"}`))
	f.Add([]byte(`{"visibility":"public","changed":"2026-01-02T03:04:05Z"}`))
	f.Add([]byte(`{"id":"01767322245000000000-00ff00ff","time":"2026-01-02T03:04:05Z","user":"admin","action":"commit","dot":"admin/app"}`))
	f.Add([]byte(`{"dot":{"Namespace":"admin","Name":"app"},"every":"15m","keep":{"last":4,"daily":7},"created":"2026-01-02T03:04:05Z","dot_id":"0123456789abcdef0123456789abcdef"}`))
	f.Add([]byte(`{"selector":{"Namespace":"team","Labels":[{"key":"app","op":"=","value":"shop"}]},"every":"1d"}`))
	f.Add([]byte(`{"policy":"dot:app","time":"2026-01-02T03:04:05Z","result":"committed","removed":2,"bytes_freed":100}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"time":"x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRecord[Dot](t, data)
		checkRecord[Branch](t, data)
		checkRecord[Commit](t, data)
		checkRecord[User](t, data)
		checkRecord[keyRecord](t, data)
		checkRecord[Grant](t, data)
		checkRecord[visibilityRecord](t, data)
		checkRecord[AuditRecord](t, data)
		checkRecord[Policy](t, data)
		checkRecord[ScheduleState](t, data)
	})
}

func checkRecord[T any](t *testing.T, data []byte) {
	const key = "fuzz/key"
	v, err := decode[T](KV{Key: key, Value: data})
	if err != nil {
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), key) {
			t.Fatalf("%q: %v is not ErrCorrupt naming the key", data, err)
		}
		return
	}
	once := encode(v)
	v2, err := decode[T](KV{Key: key, Value: once})
	if err != nil {
		t.Fatalf("%q: re-encoded %T %s does not decode: %v", data, v, once, err)
	}
	if twice := encode(v2); !bytes.Equal(once, twice) {
		t.Fatalf("%q: %T encodes as %s, then as %s", data, v, once, twice)
	}
}

// FuzzParseRole: a word either parses as a role whose String is that
// word, or is refused with ErrInvalidArgument.
func FuzzParseRole(f *testing.F) {
	for _, s := range []string{"none", "read", "write", "owner", "admin", "", "Read", "root"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRole(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("%q: %v is not ErrInvalidArgument", s, err)
			}
			return
		}
		if r.String() != s {
			t.Fatalf("%q parses as %v", s, r)
		}
	})
}
