package dotmesh_test

import (
	"errors"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// FuzzParseKeepGrid: a grid either parses into one that keeps something
// and prints back to itself, or is refused with ErrInvalidArgument.
func FuzzParseKeepGrid(f *testing.F) {
	for _, s := range []string{"last=4,hourly=24,daily=7,weekly=4,monthly=12", "yearly=1", "last=0", "daily=x", "", "last=1,last=1", " daily = 3 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		g, err := dotmesh.ParseKeepGrid(s)
		if err != nil {
			if !errors.Is(err, dotmesh.ErrInvalidArgument) {
				t.Fatalf("ParseKeepGrid(%q): %v is not ErrInvalidArgument", s, err)
			}
			return
		}
		if g.IsZero() || g.Validate() != nil {
			t.Fatalf("ParseKeepGrid(%q) = %+v, which keeps nothing or is out of range", s, g)
		}
		back, err := dotmesh.ParseKeepGrid(g.String())
		if err != nil || back != g {
			t.Fatalf("%q prints as %q, which reads back as %+v, %v", s, g.String(), back, err)
		}
	})
}

// FuzzParseEvery: a period either parses within 1s..366d and prints back
// to itself, or is refused with ErrInvalidArgument.
func FuzzParseEvery(f *testing.F) {
	for _, s := range []string{"15m", "1h30m", "2s", "1d", "2w", "0s", "-1h", "367d", "1e9h", "d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := dotmesh.ParseEvery(s)
		if err != nil {
			if !errors.Is(err, dotmesh.ErrInvalidArgument) {
				t.Fatalf("ParseEvery(%q): %v is not ErrInvalidArgument", s, err)
			}
			return
		}
		if d := time.Duration(v); d < dotmesh.MinEvery || d > dotmesh.MaxEvery {
			t.Fatalf("ParseEvery(%q) = %v, out of range", s, d)
		}
		if back, err := dotmesh.ParseEvery(v.String()); err != nil || back != v {
			t.Fatalf("%q prints as %q, which reads back as %v, %v", s, v.String(), back, err)
		}
	})
}
