package cas

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// A raw frame decodes, through the store's decoder and its hash check,
// to the bytes it holds, at block boundaries too.
func TestRawFrame(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 255, 256, 128 << 10, 128<<10 + 1, 3<<20 + 17, MaxObjectSize} {
		plain := make([]byte, n)
		for i := range plain {
			plain[i] = byte(r.Uint32())
		}
		got, err := s.Decode(Sum(plain), RawFrame(plain, nil), nil)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("%d bytes: %d decoded, %v", n, len(got), err)
		}
	}
}

func FuzzRawFrame(f *testing.F) {
	s, err := Open(f.TempDir(), Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	f.Add([]byte("x"))
	f.Add(bytes.Repeat([]byte{7}, 128<<10+3))
	f.Fuzz(func(t *testing.T, plain []byte) {
		if len(plain) == 0 {
			return // chunks are never empty
		}
		got, err := s.Decode(Sum(plain), RawFrame(plain, []byte("scratch")), nil)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("%d bytes: %d decoded, %v", len(plain), len(got), err)
		}
	})
}
