package cdc

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

// The chunk sizes of the dump backend (see backend/dump/chunk.go).
var (
	fileParams = Params{Min: 256 << 10, Max: 4 << 20, AvgBits: 18}
	metaParams = Params{Min: 16 << 10, Max: 1 << 20, AvgBits: 16}
	tinyParams = Params{Min: 64, Max: 1024, AvgBits: 7}
)

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

// chunks cuts all of r, checking offsets, and returns the chunks' data
// (copied).
func chunks(t testing.TB, r io.Reader, p Params, buf []byte) [][]byte {
	t.Helper()
	c := New(r, p)
	var out [][]byte
	var off int64
	for {
		ch, err := c.Next(buf)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if ch.Start != off || ch.Length != len(ch.Data) || ch.Length == 0 {
			t.Fatalf("chunk %d: start %d length %d data %d, expected start %d", len(out), ch.Start, ch.Length, len(ch.Data), off)
		}
		off += int64(ch.Length)
		out = append(out, bytes.Clone(ch.Data))
	}
}

func sizes(cs [][]byte) []int {
	s := make([]int, len(cs))
	for i, c := range cs {
		s[i] = len(c)
	}
	return s
}

func checkBounds(t testing.TB, cs [][]byte, p Params) {
	t.Helper()
	for i, c := range cs {
		if len(c) > p.Max || (len(c) < p.Min && i != len(cs)-1) {
			t.Fatalf("chunk %d of %d has %d bytes, outside [%d, %d]", i, len(cs), len(c), p.Min, p.Max)
		}
	}
}

// TestGearTable pins the table: it must never change (see gear.go).
func TestGearTable(t *testing.T) {
	h := sha256.New()
	for _, g := range gear {
		binary.Write(h, binary.BigEndian, g)
	}
	got := hex.EncodeToString(h.Sum(nil))[:16]
	if want := "d062e8e5d310f692"; got != want {
		t.Errorf("gear table changed: fingerprint %s, want %s (gear[0] %#x)", got, want, gear[0])
	}
	// The procedure is plain SplitMix64: its first outputs from seed 0.
	if g := makeGear(0); g[0] != 0xe220a8397b1dcdaf || g[1] != 0x6e789e6aa1b965f4 {
		t.Errorf("makeGear is not SplitMix64: %#x %#x", g[0], g[1])
	}
	seen := map[uint64]bool{}
	for _, g := range gear {
		seen[g] = true
	}
	if len(seen) != 256 {
		t.Errorf("gear table has %d distinct values", len(seen))
	}
}

// Boundaries must be the same in every run and version: pin them.
func TestDeterministic(t *testing.T) {
	data := randomBytes(42, 16<<20)
	for _, tc := range []struct {
		p    Params
		want string
	}{{fileParams, "5c721f3a831fd19b"}, {metaParams, "bc97806ec3b83f47"}} {
		a := sizes(chunks(t, bytes.NewReader(data), tc.p, nil))
		b := sizes(chunks(t, iotest.HalfReader(bytes.NewReader(data)), tc.p, make([]byte, 0, tc.p.Max)))
		if len(a) != len(b) {
			t.Fatalf("%d chunks, then %d", len(a), len(b))
		}
		h := sha256.New()
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("chunk %d: %d bytes, then %d", i, a[i], b[i])
			}
			binary.Write(h, binary.BigEndian, uint32(a[i]))
		}
		if got := hex.EncodeToString(h.Sum(nil))[:16]; got != tc.want {
			t.Errorf("%+v: boundaries changed: %d chunks, fingerprint %s, want %s", tc.p, len(a), got, tc.want)
		}
	}
}

func TestBoundsAndAverage(t *testing.T) {
	for _, tc := range []struct {
		p    Params
		size int
	}{{fileParams, 64 << 20}, {metaParams, 16 << 20}, {tinyParams, 1 << 20}, {Params{Min: 1, Max: 64, AvgBits: 3}, 64 << 10}} {
		data := randomBytes(uint64(tc.size), tc.size)
		cs := chunks(t, bytes.NewReader(data), tc.p, nil)
		checkBounds(t, cs, tc.p)
		if !bytes.Equal(bytes.Join(cs, nil), data) {
			t.Fatalf("%+v: chunks do not add up to the input", tc.p)
		}
		want := float64(tc.p.Min + 1<<tc.p.AvgBits)
		avg := float64(len(data)) / float64(len(cs))
		if avg < 0.75*want || avg > 1.25*want {
			t.Errorf("%+v: average chunk %.0f bytes, want %.0f ± 25%%", tc.p, avg, want)
		}
		t.Logf("%+v: %d chunks, average %.0f (nominal %.0f)", tc.p, len(cs), avg, want)
	}
}

// Constant input has no content to cut on: every chunk is max.
func TestMaxOnUniformInput(t *testing.T) {
	data := make([]byte, 10<<20+5)
	cs := chunks(t, bytes.NewReader(data), fileParams, nil)
	for i, c := range cs[:len(cs)-1] {
		if len(c) != fileParams.Max {
			t.Fatalf("chunk %d: %d bytes", i, len(c))
		}
	}
	if last := len(cs[len(cs)-1]); last != len(data)%fileParams.Max {
		t.Fatalf("last chunk %d bytes", last)
	}
}

func TestSmallInputs(t *testing.T) {
	for _, n := range []int{0, 1, 63, 64, 65, 1000, 256 << 10} {
		data := randomBytes(uint64(n), n)
		cs := chunks(t, bytes.NewReader(data), fileParams, nil)
		if n == 0 && len(cs) != 0 || n > 0 && (len(cs) != 1 || !bytes.Equal(cs[0], data)) {
			t.Fatalf("%d bytes: %d chunks", n, len(cs))
		}
	}
}

// chunkSet returns the hashes of the chunks of data.
func chunkSet(t *testing.T, data []byte, p Params) map[[32]byte]bool {
	m := map[[32]byte]bool{}
	for _, c := range chunks(t, bytes.NewReader(data), p, nil) {
		m[sha256.Sum256(c)] = true
	}
	return m
}

// An insertion or deletion only changes the chunks around it.
func TestShiftResistance(t *testing.T) {
	for _, p := range []Params{fileParams, metaParams} {
		data := randomBytes(7, 32<<20)
		mid := len(data)/2 + 12345
		edits := map[string][]byte{
			"insert 9":   append(append(append([]byte{}, data[:mid]...), "inserted!"...), data[mid:]...),
			"delete 1":   append(append([]byte{}, data[:mid]...), data[mid+1:]...),
			"delete 100": append(append([]byte{}, data[:mid]...), data[mid+100:]...),
			"insert 64K": append(append(append([]byte{}, data[:mid]...), randomBytes(8, 64<<10)...), data[mid:]...),
		}
		a := chunkSet(t, data, p)
		for name, edited := range edits {
			b := chunkSet(t, edited, p)
			common := 0
			for k := range b {
				if a[k] {
					common++
				}
			}
			// One or two chunks hold the edit (three with a large one).
			if common < len(a)-3 {
				t.Errorf("%+v, %s: only %d of %d chunks survive", p, name, common, len(a))
			}
		}
	}
}

// Reusing one buffer for every chunk is the intended use.
func TestReusedBuffer(t *testing.T) {
	data := randomBytes(3, 20<<20)
	want := chunks(t, bytes.NewReader(data), fileParams, nil)
	buf := make([]byte, 0, fileParams.Max)
	c := New(bytes.NewReader(data), fileParams)
	for i := 0; ; i++ {
		ch, err := c.Next(buf)
		if err == io.EOF {
			if i != len(want) {
				t.Fatalf("%d chunks, want %d", i, len(want))
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if &ch.Data[0] != &buf[:1][0] {
			t.Fatalf("chunk %d not in the buffer", i)
		}
		if !bytes.Equal(ch.Data, want[i]) {
			t.Fatalf("chunk %d differs", i)
		}
	}
	// Reset starts over, with other params too.
	c.Reset(bytes.NewReader(data), metaParams)
	if ch, err := c.Next(nil); err != nil || ch.Start != 0 || ch.Length > metaParams.Max {
		t.Fatalf("after Reset: %d bytes at %d, %v", ch.Length, ch.Start, err)
	}
}

type zeroReader struct{ io.Reader }

func (z *zeroReader) Read(p []byte) (int, error) {
	if rand.IntN(3) == 0 {
		return 0, nil
	}
	return z.Reader.Read(p)
}

func TestShortReads(t *testing.T) {
	data := randomBytes(5, 3<<20)
	want := sizes(chunks(t, bytes.NewReader(data), metaParams, nil))
	for name, r := range map[string]io.Reader{
		"one byte": iotest.OneByteReader(bytes.NewReader(data)),
		"half":     iotest.HalfReader(bytes.NewReader(data)),
		"data+EOF": iotest.DataErrReader(bytes.NewReader(data)),
		"empty":    &zeroReader{iotest.HalfReader(bytes.NewReader(data))},
	} {
		got := chunks(t, r, metaParams, nil)
		if !bytes.Equal(bytes.Join(got, nil), data) {
			t.Fatalf("%s: chunks do not add up", name)
		}
		if s := sizes(got); len(s) != len(want) {
			t.Fatalf("%s: %d chunks, want %d", name, len(s), len(want))
		}
	}
}

func TestReadError(t *testing.T) {
	boom := errors.New("boom")
	data := randomBytes(6, 1<<20)
	c := New(io.MultiReader(bytes.NewReader(data), iotest.ErrReader(boom)), metaParams)
	var err error
	for err == nil {
		_, err = c.Next(nil)
	}
	if err != boom {
		t.Fatalf("got %v, want boom", err)
	}
	c = New(iotest.ErrReader(boom), metaParams)
	if _, err := c.Next(nil); err != boom {
		t.Fatalf("got %v", err)
	}
}

func TestValidate(t *testing.T) {
	for _, p := range []Params{{}, {Min: 10, Max: 5, AvgBits: 4}, {Min: 1, Max: 5, AvgBits: 1}, {Min: 1, Max: 5, AvgBits: 41}} {
		if p.Validate() == nil {
			t.Errorf("%+v accepted", p)
		}
	}
}

func FuzzChunker(f *testing.F) {
	f.Add([]byte("hello"), uint16(16), uint16(64), uint8(3))
	f.Add(randomBytes(1, 4096), uint16(64), uint16(1024), uint8(7))
	f.Add(make([]byte, 3000), uint16(1), uint16(100), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, lo, hi uint16, bits uint8) {
		p := Params{Min: int(lo), Max: int(hi), AvgBits: int(bits)}
		if p.Validate() != nil {
			return
		}
		cs := chunks(t, iotest.HalfReader(bytes.NewReader(data)), p, nil)
		checkBounds(t, cs, p)
		if !bytes.Equal(bytes.Join(cs, nil), data) {
			t.Fatal("chunks do not add up to the input")
		}
		// Boundaries do not depend on how the reader splits the input.
		if s := sizes(chunks(t, bytes.NewReader(data), p, make([]byte, 0, 7))); len(s) != len(cs) {
			t.Fatalf("%d chunks, then %d", len(cs), len(s))
		}
	})
}
