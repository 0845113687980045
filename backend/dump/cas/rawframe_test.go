package cas

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/dotmesh-io/dotmesh/internal/seal"
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

// TestWriteRaw: a chunk staged in pieces (WriteRaw) reads back as its
// bytes after the batch is committed and the store reopened, beside
// objects staged whole, in a plain store and a sealed one (which seals
// the frame whole).
func TestWriteRaw(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, sealed := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "sealed"}[sealed], func(t *testing.T) {
			if sealed {
				testSealing = newSealing(t, seal.CipherAES256GCM)
				defer func() { testSealing = nil }()
			}
			dir := t.TempDir()
			s := openStore(t, dir)
			b, err := s.NewBatch()
			if err != nil {
				t.Fatal(err)
			}
			var sc RawScratch
			var want [][]byte
			for i, n := range []int{1, 128 << 10, 128<<10 + 1, 1 << 20, 3<<20 + 17, MaxObjectSize, 5} {
				plain := make([]byte, n)
				for j := range plain {
					plain[j] = byte(r.Uint32())
				}
				h := Sum(plain)
				if ok, err := b.Claim(h); !ok || err != nil {
					t.Fatalf("claim: %v %v", ok, err)
				}
				if i%2 == 0 {
					err = b.WriteRaw(h, plain, &sc)
				} else {
					err = b.WriteCompressed(h, RawFrame(plain, nil), len(plain))
				}
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, plain)
			}
			if err := b.Commit(); err != nil {
				t.Fatal(err)
			}
			s.Close()
			s = openStore(t, dir)
			defer s.Close()
			for _, plain := range want {
				got, err := s.Get(Sum(plain), nil)
				if err != nil || !bytes.Equal(got, plain) {
					t.Fatalf("%d bytes: %d read back, %v", len(plain), len(got), err)
				}
			}
		})
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
