package dotmesh

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// FuzzRegistryRecords: a registry value either decodes as a dot, branch
// and commit record whose encoding is stable (decoding what was encoded
// encodes the same), or is refused with ErrCorrupt naming its key.
func FuzzRegistryRecords(f *testing.F) {
	f.Add([]byte(`{"id":"0123456789abcdef0123456789abcdef","namespace":"admin","name":"app","backend":"dump"}`))
	f.Add([]byte(`{"dot":"0123456789abcdef0123456789abcdef","name":"master","head":"00112233445566778899aabbccddeeff"}`))
	f.Add([]byte(`{"id":"00112233445566778899aabbccddeeff","message":"m","time":"2026-01-02T03:04:05.123+02:00","metadata":{"k":"v"}}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"time":"x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRecord[Dot](t, data)
		checkRecord[Branch](t, data)
		checkRecord[Commit](t, data)
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
