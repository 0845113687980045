package delta

import (
	"bytes"
	"errors"
	"math/rand"
	"testing"
)

func random(seed int64, n int) []byte {
	p := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(p)
	return p
}

func roundTrip(t testing.TB, base, target []byte) []byte {
	t.Helper()
	d := Encode(nil, base, target)
	got, err := Apply(nil, base, d, len(target))
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if !bytes.Equal(got, target) {
		t.Fatalf("round trip differs (%d bytes, want %d)", len(got), len(target))
	}
	if n, err := Size(d); err != nil || n != uint64(len(target)) {
		t.Fatalf("Size = %d, %v; want %d", n, err, len(target))
	}
	return d
}

func TestDeltaSizes(t *testing.T) {
	base := random(1, 1<<20)
	overwrite := func(off, n int) []byte {
		t := append([]byte(nil), base...)
		copy(t[off:], random(int64(off), n))
		return t
	}
	cases := []struct {
		name   string
		base   []byte
		target []byte
		max    int // bytes the delta may take
	}{
		{"equal", base, base, 16},
		{"overwrite", base, overwrite(123457, 100000), 100000 + 32},
		{"two overwrites", base, overwrite(77, 5000)[:0:0], 0},
		{"insertion", base, append(append(append([]byte(nil), base[:300001]...), random(5, 777)...), base[300001:]...), 777 + 32},
		{"deletion", base, append(append([]byte(nil), base[:300001]...), base[400003:]...), 32},
		{"suffix of base", base, base[513:], 16},
		{"prefix of base", base, base[:65537], 16},
		{"unrelated", base, random(9, 1000), 1000 + 8},
		{"empty target", base, nil, 1},
		{"empty base", nil, random(3, 100), 100 + 4},
		{"tiny", base[:10], base[:10], 16},
		{"zeros", make([]byte, 1<<20), make([]byte, 1<<19), 16},
	}
	cases[2].target = overwrite(77, 5000)
	copy(cases[2].target[900001:], random(6, 3000))
	cases[2].max = 8000 + 64
	for _, c := range cases {
		d := roundTrip(t, c.base, c.target)
		if len(d) > c.max {
			t.Errorf("%s: delta is %d bytes, want at most %d", c.name, len(d), c.max)
		}
	}
	// A target shifted against a base made of two concatenated chunks.
	two := append(append([]byte(nil), random(11, 300000)...), random(12, 400000)...)
	target := append(random(13, 50), two[1000:650000]...)
	if d := roundTrip(t, two, target); len(d) > 50+32 {
		t.Errorf("shifted: delta is %d bytes", len(d))
	}
}

func TestApplyRejects(t *testing.T) {
	base := []byte("0123456789abcdef")
	cases := map[string][]byte{
		"empty":           nil,
		"bad size":        {0xff},
		"too big":         {0x80, 0x80, 0x80, 0x80, 0x01},
		"copy out":        {4, 4<<1 | 1, 14},
		"copy huge off":   {4, 4<<1 | 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"insert short":    {4, 4 << 1, 'a', 'b'},
		"zero op":         {4, 1, 0},
		"too long":        {2, 4 << 1, 'a', 'b', 'c', 'd'},
		"too short":       {4, 2 << 1, 'a', 'b'},
		"no copy offset":  {4, 4<<1 | 1},
		"truncated op":    {4, 0x80},
		"op past the end": {4, 2 << 1, 'a', 'b', 3<<1 | 1, 0},
	}
	for name, d := range cases {
		if _, err := Apply(nil, base, d, 1<<20); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	ok := []byte{4, 2<<1 | 1, 14, 2 << 1, 'x', 'y'}
	if got, err := Apply(nil, base, ok, 4); err != nil || string(got) != "efxy" {
		t.Fatalf("valid delta: %q, %v", got, err)
	}
	if _, err := Apply(nil, base, ok, 3); !errors.Is(err, ErrInvalid) {
		t.Fatalf("over max: %v", err)
	}
}

func BenchmarkEncode(b *testing.B) {
	base := random(1, 1<<20)
	target := append([]byte(nil), base...)
	copy(target[333333:], random(2, 256<<10))
	b.SetBytes(int64(len(target)))
	var d []byte
	for i := 0; i < b.N; i++ {
		d = Encode(d[:0], base, target)
	}
}

func BenchmarkEncodeUnrelated(b *testing.B) {
	base, target := random(1, 1<<20), random(2, 1<<20)
	b.SetBytes(int64(len(target)))
	var d []byte
	for i := 0; i < b.N; i++ {
		d = Encode(d[:0], base, target)
	}
}

// FuzzApply: hostile deltas fail cleanly, and never make more than max.
func FuzzApply(f *testing.F) {
	base := random(1, 4096)
	target := append(append([]byte(nil), base[100:2000]...), random(2, 300)...)
	f.Add(base[:64], Encode(nil, base, target), 4096)
	f.Add(base[:0], []byte{4, 2<<1 | 1, 14, 2 << 1, 'x', 'y'}, 10)
	f.Fuzz(func(t *testing.T, base, d []byte, max int) {
		if max < 0 || max > 1<<20 {
			max = 1 << 20
		}
		out, err := Apply(nil, base, d, max)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not ErrInvalid: %v", err)
			}
			return
		}
		if len(out) > max || cap(out) > max {
			t.Fatalf("result of %d bytes (cap %d) over max %d", len(out), cap(out), max)
		}
	})
}

// FuzzRoundTrip: any target encodes against any base and decodes back.
func FuzzRoundTrip(f *testing.F) {
	base := random(1, 4096)
	f.Add(base, append(append([]byte(nil), base[100:2000]...), random(2, 300)...))
	f.Add([]byte{}, []byte("abc"))
	f.Add(bytes.Repeat([]byte("ab"), 100), bytes.Repeat([]byte("ab"), 90))
	f.Fuzz(func(t *testing.T, base, target []byte) {
		roundTrip(t, base, target)
		// Base and target each spliced with the other.
		if len(base) > 0 && len(target) > 0 {
			mixed := append(append([]byte(nil), target[:len(target)/2]...), base[len(base)/3:]...)
			roundTrip(t, base, mixed)
		}
	})
}

func BenchmarkIndex(b *testing.B) {
	base := random(1, 1<<20)
	b.SetBytes(int64(len(base)))
	for i := 0; i < b.N; i++ {
		newIndex(base)
	}
}
