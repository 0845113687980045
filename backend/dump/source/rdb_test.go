package source

import (
	"bytes"
	"testing"
)

func TestRedisCRC64(t *testing.T) {
	if got := redisCRC64([]byte("123456789")); got != 0xe9c6d914c4b8d9ca {
		t.Fatalf("crc64 = %#x", got)
	}
}

// FuzzParseRDB: the RDB parser never panics or over-allocates, and what
// it accepts survives a normalize/parse round trip unchanged.
func FuzzParseRDB(f *testing.F) {
	f.Add([]byte("REDIS0010\xfa\x09redis-ver\x067.0.15\xfe\x00\xfb\x01\x00\x00\x01k\x01v\xff\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Add([]byte("REDIS0010\xfe\x00\xfc\x00\x00\x00\x00\x00\x00\x00\x01\x04\x01h\x01\x01a\x01b\xff"))
	f.Add([]byte("REDIS0010\x00\x01k\xc3\x03\x05\x01ab\xe0\x00\x01\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rdb, err := parseRDB(bytes.NewReader(data))
		if err != nil {
			return
		}
		var a bytes.Buffer
		if err := rdb.writeNormalized(&a); err != nil {
			t.Fatal(err)
		}
		again, err := parseRDB(bytes.NewReader(a.Bytes()))
		if err != nil {
			t.Fatalf("normalized RDB does not parse: %v", err)
		}
		var b bytes.Buffer
		again.writeNormalized(&b)
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Fatal("normalizing is not idempotent")
		}
	})
}
