package cli

import (
	"bytes"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"text/tabwriter"
)

// tabwriterTable is what the tables were written with before writeAligned.
func tabwriterTable(header []string, rows [][]string) string {
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	if header != nil {
		fmt.Fprintln(tw, strings.Join(header, "\t"))
	}
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
	return b.String()
}

// writeAligned writes what tabwriter wrote, byte for byte, for tables
// whose lines have the same number of cells (empty, wide, multi-byte
// cells; with and without a header); other tables it leaves alone.
func TestWriteAlignedIsTabwriter(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	words := []string{"", "a", "master", "1.2 MiB", "yes", "héllo", "日本語", "  DOT", "* app", "x y"}
	for i := 0; i < 2000; i++ {
		n := 1 + rng.Intn(6)
		cells := func() []string {
			r := make([]string, n)
			for j := range r {
				r[j] = words[rng.Intn(len(words))]
			}
			return r
		}
		var header []string
		if rng.Intn(2) == 0 {
			header = cells()
		}
		rows := make([][]string, rng.Intn(5))
		for k := range rows {
			rows[k] = cells()
		}
		var b bytes.Buffer
		ok, err := writeAligned(&b, header, rows)
		if !ok || err != nil {
			t.Fatalf("%q %q: not written (%v)", header, rows, err)
		}
		if want := tabwriterTable(header, rows); b.String() != want {
			t.Fatalf("%q %q:\n%q, tabwriter:\n%q", header, rows, b.String(), want)
		}
	}
	var b bytes.Buffer
	if ok, _ := writeAligned(&b, []string{"A", "B"}, [][]string{{"x"}}); ok || b.Len() > 0 {
		t.Fatal("a table of uneven lines was written")
	}
}
