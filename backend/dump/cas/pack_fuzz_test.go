package cas

import (
	"bytes"
	"testing"
)

// FuzzDecodeIndex: any bytes either fail to decode or give entries that
// lie inside the pack, sorted, within the limits, and encode back to the
// same bytes.
func FuzzDecodeIndex(f *testing.F) {
	f.Add(encodeIndex([]entry{{h: Sum([]byte("a")), off: 44, n: 10}, {h: Sum([]byte("b")), off: 90, n: 5}}), int64(200))
	f.Add(encodeIndex(nil), int64(8))
	f.Add([]byte(indexMagic), int64(0))
	f.Fuzz(func(t *testing.T, b []byte, packSize int64) {
		es, err := decodeIndex(b, packSize)
		if err != nil {
			return
		}
		for i, e := range es {
			if e.off < int64(len(packMagic)+recordHeader) || e.off+int64(e.n) > packSize || e.n > MaxStoredSize {
				t.Fatalf("entry %d out of bounds: %+v in %d", i, e, packSize)
			}
		}
		if again := encodeIndex(es); !bytes.Equal(again, b) {
			t.Fatal("decoded index does not encode back to its bytes")
		}
	})
}

// FuzzScanPack: scanning any bytes as a pack finds only records that lie
// inside it, each hash once.
func FuzzScanPack(f *testing.F) {
	var pk bytes.Buffer
	pk.WriteString(packMagic)
	for _, s := range []string{"one", "two", "one"} {
		pk.Write(recordHead(Sum([]byte(s)), len(s)))
		pk.WriteString(s)
	}
	f.Add(pk.Bytes())
	f.Add([]byte(packMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := scanPack(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		seen := map[Hash]bool{}
		for _, e := range es {
			if e.off < int64(len(packMagic)+recordHeader) || e.off+int64(e.n) > int64(len(b)) || seen[e.h] {
				t.Fatalf("bad entry %+v in %d bytes", e, len(b))
			}
			seen[e.h] = true
		}
	})
}
