package bboltstore

import (
	"bytes"
	"errors"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// FuzzDecodeKV: a stored record either decodes and encodes back to the
// same bytes (a value that does not alias the record), or, when shorter
// than its header, is ErrCorrupt (it panicked before: a damaged registry
// crashed the node).
func FuzzDecodeKV(f *testing.F) {
	f.Add(encodeRecord(7, 3, []byte("value")))
	f.Add(encodeRecord(1, 0, nil))
	f.Add([]byte("short"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, rec []byte) {
		kv, err := decodeKV("k", rec)
		if len(rec) < recordHeader {
			if !errors.Is(err, dotmesh.ErrCorrupt) {
				t.Fatalf("%d-byte record: %v, want ErrCorrupt", len(rec), err)
			}
			if recordRev(rec) != 0 || recordLease(rec) != 0 {
				t.Fatal("a short record has a revision or lease")
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if kv.Key != "k" || kv.Revision != recordRev(rec) || kv.Lease != recordLease(rec) {
			t.Fatalf("decoded %+v", kv)
		}
		if again := encodeRecord(kv.Revision, kv.Lease, kv.Value); !bytes.Equal(again, rec) {
			t.Fatalf("%x decodes to %+v, which encodes to %x", rec, kv, again)
		}
		if len(kv.Value) > 0 {
			orig := rec[recordHeader]
			kv.Value[0] ^= 0xff
			if rec[recordHeader] != orig {
				t.Fatal("the value aliases the record (bbolt memory is only valid inside a transaction)")
			}
		}
	})
}
