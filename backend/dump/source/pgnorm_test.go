package source

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/dump/source/sourcetest"
)

// refNormalize is the plain definition of the normalizer's output.
func refNormalize(in string) (string, bool) {
	var out strings.Builder
	var rows []string
	inCopy := false
	lines := strings.SplitAfter(in, "\n")
	if last := lines[len(lines)-1]; last != "" {
		return "", false // a partial last line
	}
	for _, l := range lines[:len(lines)-1] {
		switch {
		case inCopy && l == "\\.\n":
			slices.SortFunc(rows, func(a, b string) int { return compareRows([]byte(a), []byte(b)) })
			for _, r := range rows {
				out.WriteString(r)
			}
			out.WriteString(l)
			rows, inCopy = nil, false
		case inCopy:
			rows = append(rows, l)
		case strings.HasPrefix(l, "\\restrict ") || strings.HasPrefix(l, "\\unrestrict "):
		default:
			if strings.HasPrefix(l, "COPY ") && strings.HasSuffix(l, "FROM stdin;\n") {
				inCopy = true
			}
			out.WriteString(l)
		}
	}
	return out.String(), !inCopy
}

// rewindBuffer is a Rewinder in memory that counts its rewinds.
type rewindBuffer struct {
	bytes.Buffer
	rewinds   int
	maxRewind int64 // the last rewind's offset
}

func (r *rewindBuffer) Rewind(off int64, _ []byte) error {
	if off > int64(r.Len()) {
		return fmt.Errorf("rewind to %d past the end %d", off, r.Len())
	}
	r.Truncate(int(off))
	r.rewinds++
	r.maxRewind = off
	return nil
}

func (r *rewindBuffer) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(r.Bytes()).ReadAt(p, off)
}

// stepReader returns in in reads of the given sizes.
type stepReader struct {
	in    string
	sizes []int
	i     int
}

func (r *stepReader) Read(p []byte) (int, error) {
	if len(r.in) == 0 {
		return 0, io.EOF
	}
	k := min(len(r.in), len(p), max(1, r.sizes[r.i%len(r.sizes)]))
	r.i++
	copy(p, r.in[:k])
	r.in = r.in[k:]
	return k, nil
}

// normalize runs in through a normalizer in writes of the given sizes,
// or through ReadFrom in reads of those sizes when sizes[0] is odd.
func normalize(t testing.TB, in string, w io.Writer, sizes []int) (string, error) {
	n := newPGNormalizer(w)
	if len(sizes) > 0 && sizes[0]%2 == 1 {
		if _, err := n.ReadFrom(&stepReader{in: in, sizes: sizes}); err != nil {
			return "", err
		}
		return "", n.Close()
	}
	for i := 0; len(in) > 0; i++ {
		k := len(in)
		if len(sizes) > 0 {
			k = min(k, max(1, sizes[i%len(sizes)]))
		}
		if _, err := n.Write([]byte(in[:k])); err != nil {
			return "", err
		}
		in = in[k:]
	}
	return "", n.Close()
}

func checkNormalizer(t testing.TB, in string, sizes []int) {
	want, ok := refNormalize(in)
	defer func(old [2]int) { lateReach = old }(lateReach)
	// Without a rewinder; with one, late rows placed from near and far
	// (reaching into rows, past the start of the block).
	for i, reach := range [][2]int{lateReach, lateReach, {1, 9}, {0, 0}} {
		rewind := i > 0
		lateReach = reach
		var got string
		var err error
		if rewind {
			var rb rewindBuffer
			_, err = normalize(t, in, &rb, sizes)
			got = rb.String()
		} else {
			var b bytes.Buffer
			_, err = normalize(t, in, &b, sizes)
			got = b.String()
		}
		if (err == nil) != ok {
			t.Fatalf("rewind=%v reach %v: error %v, reference complete=%v, input %q", rewind, reach, err, ok, in)
		}
		if ok && got != want {
			t.Fatalf("rewind=%v reach %v: input %q\n got %q\nwant %q", rewind, reach, in, got, want)
		}
	}
}

func TestPGNormalizerOrders(t *testing.T) {
	defer func(old, every int) { pgSlabSize, sampleEvery = old, every }(pgSlabSize, sampleEvery)
	rng := rand.New(rand.NewPCG(3, 4))
	for iter := 0; iter < 300; iter++ {
		pgSlabSize = []int{8, 64, 1 << 10, 2 << 20}[iter%4]
		sampleEvery = []int{1, 2, 7, 1024}[iter%3]
		var b strings.Builder
		b.WriteString("-- head\n\\restrict k\n")
		for blk := 0; blk < 1+rng.IntN(3); blk++ {
			fmt.Fprintf(&b, "CREATE TABLE t%d;\nCOPY public.t%d (a, b) FROM stdin;\n", blk, blk)
			nrows := rng.IntN(200)
			keys := make([]int, nrows)
			for i := range keys {
				keys[i] = i * 3
			}
			switch rng.IntN(4) { // in order; a few moved; moved to the end; shuffled
			case 1:
				for j := 0; j < 3 && nrows > 1; j++ {
					a, c := rng.IntN(nrows), rng.IntN(nrows)
					keys[a], keys[c] = keys[c], keys[a]
				}
			case 2:
				if nrows > 0 {
					k := rng.IntN(nrows)
					keys = append(keys[k:], keys[:k]...)
				}
			case 3:
				rng.Shuffle(nrows, func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
			}
			for _, k := range keys {
				fmt.Fprintf(&b, "%d\tvalue %s\n", k, strings.Repeat("x", rng.IntN(30)))
				if rng.IntN(20) == 0 {
					fmt.Fprintf(&b, "%d\tdup\n", k) // duplicates and equal keys
					fmt.Fprintf(&b, "%d\tdup\n", k)
				}
			}
			b.WriteString("\\.\n\n")
		}
		b.WriteString("\\unrestrict k\n" + pgTrailer + "\n")
		sizes := []int{1 + rng.IntN(7), 1 + rng.IntN(100), 32 << 10}
		checkNormalizer(t, b.String(), sizes)
	}
}

// TestPGNormalizerRewindsLittle: rows moved to the end of the table (what
// UPDATE does) rewind the output only to where the first of them goes.
func TestPGNormalizerRewindsLittle(t *testing.T) {
	var b strings.Builder
	b.WriteString("COPY public.t (a) FROM stdin;\n")
	for i := 100; i < 1000; i++ {
		if i != 950 { // updated: at the end of the table now
			fmt.Fprintf(&b, "%d\n", i)
		}
	}
	b.WriteString("950\n\\.\n" + pgTrailer + "\n")
	in := b.String()
	var rb rewindBuffer
	if _, err := normalize(t, in, &rb, []int{4096}); err != nil {
		t.Fatal(err)
	}
	want, _ := refNormalize(in)
	if rb.String() != want || rb.rewinds != 1 {
		t.Fatalf("rewinds %d, output equal %v", rb.rewinds, rb.String() == want)
	}
	if max := int64(len(in)); rb.maxRewind < max-int64(len(in))/10 {
		t.Fatalf("rewound to %d of %d: further than the moved row's place", rb.maxRewind, max)
	}
}

// TestPGNormalizerPlacesLateRows: rows an update moved a few rows on
// (within their page) are put in place as they come: the block streams
// to its end, holding no row, one short rewind per late row.
func TestPGNormalizerPlacesLateRows(t *testing.T) {
	var b strings.Builder
	b.WriteString("COPY public.t (a, b) FROM stdin;\n")
	late := 0
	for page := 0; page < 2000; page++ {
		var moved []int
		for i := page * 60; i < page*60+60; i++ {
			if i%97 == 0 {
				moved = append(moved, i)
				continue
			}
			fmt.Fprintf(&b, "%d\t%s\n", i, strings.Repeat("x", 90))
		}
		for _, i := range moved { // the new version, at the page's end
			fmt.Fprintf(&b, "%d\t%s\n", i, strings.Repeat("y", 90))
			late++
		}
	}
	b.WriteString("\\.\n" + pgTrailer + "\n")
	in := b.String()
	var rb rewindBuffer
	n := newPGNormalizer(&rb)
	for p := in; len(p) > 0; {
		k := min(len(p), 8192)
		if _, err := n.Write([]byte(p[:k])); err != nil {
			t.Fatal(err)
		}
		if len(n.rows) != 0 {
			t.Fatalf("%d rows held", len(n.rows))
		}
		p = p[k:]
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	want, _ := refNormalize(in)
	if rb.String() != want {
		t.Fatal("output not sorted")
	}
	// A late row that is the first of its page's rows goes only as far
	// back as the row before it: no rewind when it is the last streamed.
	if rb.rewinds > late || rb.rewinds < late*9/10 {
		t.Fatalf("%d rewinds for %d late rows", rb.rewinds, late)
	}
}

// TestPGNormalizerStreamsWithoutHolding: a block in order goes out as it
// comes and holds no memory: one slab, reused, and no rows.
func TestPGNormalizerStreamsWithoutHolding(t *testing.T) {
	defer func(old int) { pgSlabSize = old }(pgSlabSize)
	pgSlabSize = 4 << 10
	var rb rewindBuffer
	n := newPGNormalizer(&rb)
	n.Write([]byte("COPY public.t (a, b) FROM stdin;\n"))
	for i := 0; i < 20000; i++ {
		if _, err := n.Write([]byte(fmt.Sprintf("%d\tsome value\n", i))); err != nil {
			t.Fatal(err)
		}
		if len(n.slabs) != 1 || len(n.rows) != 0 {
			t.Fatalf("after %d rows in order: %d slabs, %d rows held", i+1, len(n.slabs), len(n.rows))
		}
	}
	n.Write([]byte("5\tmoved\n\\.\n" + pgTrailer + "\n"))
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if rb.rewinds != 1 || !strings.Contains(rb.String(), "5\tmoved\n5\tsome value\n6\t") {
		t.Fatalf("%d rewinds; the moved row is not in its place", rb.rewinds)
	}
}

func FuzzPGNormalizer(f *testing.F) {
	f.Add("COPY x FROM stdin;\nb\na\n\\.\n"+pgTrailer+"\n", uint8(3), uint8(16))
	f.Add("\\restrict a\nCOPY x FROM stdin;\n1\n10\n2\n\\.\nCOPY y FROM stdin;\n\\.\n", uint8(1), uint8(8))
	f.Add("COPY x FROM stdin;\n3\n1\n2", uint8(5), uint8(9))
	f.Fuzz(func(t *testing.T, in string, step, slab uint8) {
		defer func(old, every int) { pgSlabSize, sampleEvery = old, every }(pgSlabSize, sampleEvery)
		pgSlabSize = 1 + int(slab)
		sampleEvery = 1 + int(step%4)
		checkNormalizer(t, in, []int{1 + int(step), 1 + int(step)/3})
	})
}

// countingRewinder is a Rewinder that keeps nothing: rows must arrive in
// order (it cannot read back).
type countingRewinder struct{ n int64 }

func (c *countingRewinder) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }
func (c *countingRewinder) Rewind(off int64, _ []byte) error {
	return fmt.Errorf("rewind to %d: rows out of order", off)
}
func (c *countingRewinder) ReadAt([]byte, int64) (int, error) { return 0, io.EOF }

// BenchmarkPGNormalizer: the normalizer's work per byte of a pgbench
// dump (rows in key order), read as the spool hands it over.
func BenchmarkPGNormalizer(b *testing.B) {
	var dump bytes.Buffer
	dump.WriteString("-- Dumped from database version 15.14\n\nCOPY public.pgbench_accounts (aid, bid, abalance, filler) FROM stdin;\n")
	dump.Write(sourcetest.PgbenchRows(300000))
	dump.WriteString("\\.\n\n" + pgTrailer + "\n")
	b.SetBytes(int64(dump.Len()))
	for b.Loop() {
		var out countingRewinder
		n := newPGNormalizer(&out)
		if _, err := n.ReadFrom(bytes.NewReader(dump.Bytes())); err != nil {
			b.Fatal(err)
		}
		if err := n.Close(); err != nil || out.n != int64(dump.Len()) {
			b.Fatalf("%v, %d bytes out of %d", err, out.n, dump.Len())
		}
	}
}
